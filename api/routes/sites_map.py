"""The sites map's configuration for the console: the tile source when one is set (none when air-gapped)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get

from api.deps import PrincipalDep
from api.map_settings import MapSettings


class MapConfig(msgspec.Struct, frozen=True, kw_only=True):
    """`tile_url` null: no tile source, the console plots the sites' coordinates on a plain grid."""

    tile_url: str | None
    attribution: str | None
    max_zoom: int


class MapController(Controller):
    path = "/map"
    tags = ["tenancy"]

    @get("/config", summary="The tile source of the sites map (null: none, the sites are plotted on a plain grid)")
    async def map_config(self, principal: PrincipalDep) -> MapConfig:
        # Any signed-in person: it names a public tile server or none, never a site.
        del principal
        settings = MapSettings()
        return MapConfig(tile_url=settings.tile_url or None, attribution=settings.attribution or None,
                         max_zoom=settings.max_zoom)


ROUTES = [MapController]
