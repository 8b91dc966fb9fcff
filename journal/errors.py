"""Journal errors."""

from __future__ import annotations

from core.errors import InvalidInput


class MotiveRequired(InvalidInput):
    """Viewing or exporting images needs a stated motive."""

    def __init__(self) -> None:
        super().__init__("a motive is required to access images", field="motive")
