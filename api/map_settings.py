"""Where the console's sites map takes its tiles (VIGIE_MAP_*); none by default, the centre being air-gapped."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class MapSettings(BaseSettings):
    """A raster tile source in the usual `{z}/{x}/{y}` template; empty: the console plots the sites on a plain grid."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_MAP_", extra="ignore", hide_input_in_errors=True)

    # e.g. https://tiles.example.fr/{z}/{x}/{y}.png (a tile server inside the centre's network, or a public one).
    tile_url: str = ""
    # The tile source's credit line, shown under the map (most tile licences require one).
    attribution: str = ""
    max_zoom: int = Field(default=18, ge=1, le=22)

    @field_validator("tile_url")
    @classmethod
    def _a_tile_template(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("the tile source must be an http(s) address")
        if not all(placeholder in value for placeholder in ("{z}", "{x}", "{y}")):
            raise ValueError("the tile source must name {z}, {x} and {y}")
        return value

    @property
    def tile_origin(self) -> str:
        """The origin the console's CSP lets images come from (the tile server's), or empty without one."""
        if not self.tile_url:
            return ""
        parts = urlsplit(self.tile_url)
        return f"{parts.scheme}://{parts.netloc}"
