"""Journal errors."""

from __future__ import annotations

from core.errors import InvalidInput, Unavailable


class MotiveRequired(InvalidInput):
    """Viewing or exporting images needs a stated motive."""

    def __init__(self) -> None:
        super().__init__("a motive is required to access images", field="motive")


class EvidenceKeyMissing(Unavailable):
    """No evidence key of the needed purpose exists yet: it is provisioned by `vigie evidence init-key`."""

