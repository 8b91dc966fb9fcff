"""Tenancy errors."""

from __future__ import annotations

from core.errors import Conflict, InvalidInput


class DuplicateName(Conflict):
    """Another object of the same tenant already has this name."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"a {kind} named {name!r} already exists in this tenant")
        self.field = "name"


class UnknownCommune(InvalidInput):
    def __init__(self, code: str, field: str = "insee_code") -> None:
        super().__init__(f"{field} {code!r} is not a known commune (INSEE code not in the commune list)", field=field)
