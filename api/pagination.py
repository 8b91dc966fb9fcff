"""Cursor pagination over time-ordered ids: the cursor is the last id of the page, opaque to clients."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

from core.errors import InvalidInput

T = TypeVar("T")

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="page size")]
Cursor = Annotated[str | None, QueryParameter(max_length=64, description="next_cursor of the previous page")]


class Page(msgspec.Struct, Generic[T], frozen=True):
    items: list[T]
    next_cursor: str | None


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("cursor is not a cursor this API issued", field="cursor") from exc


def page_of(items: Sequence[T], limit: int, key: Callable[[T], uuid.UUID]) -> Page[T]:
    """`items` holds up to limit + 1 rows: the extra one only tells whether a next page exists."""
    visible = list(items[:limit])
    next_cursor = None
    if len(items) > limit and visible:
        next_cursor = base64.urlsafe_b64encode(key(visible[-1]).bytes).decode().rstrip("=")
    return Page(items=visible, next_cursor=next_cursor)
