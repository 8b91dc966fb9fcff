"""The event contract shared by every process: versioned msgspec structs with id, tenant and aware UTC time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar

import msgspec

from core.ids import new_id

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event on the bus. Subclasses are named in the past tense.

    `event_id` is sent as Nats-Msg-Id, so a republished event is dropped by the server's duplicate window
    and by the consumers' unique keys. `schema_version` lets a consumer refuse a payload from the future.
    """

    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: uuid.UUID = msgspec.field(default_factory=new_id)
    tenant_id: uuid.UUID
    occurred_at: AwareDatetime = msgspec.field(default_factory=lambda: datetime.now(UTC))
    schema_version: int = 1

    def __post_init__(self) -> None:
        if self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")


class EventDecodeError(ValueError):
    """A payload that no consumer should retry: malformed, unknown type or a schema version from the future."""


E = TypeVar("E", bound=Event)


class EventCodec:
    """Encodes events and decodes payloads into one of a known set of event types."""

    def __init__(self, *types: type[Event]) -> None:
        if not types:
            raise ValueError("an EventCodec needs at least one event type")
        self._types = {t.__name__: t for t in types}
        union: Any = types[0] if len(types) == 1 else _union(types)
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(union)

    @staticmethod
    def encode(event: Event) -> bytes:
        return msgspec.json.encode(event)

    def decode(self, payload: bytes) -> Event:
        try:
            head = msgspec.json.decode(payload, type=dict[str, Any])
        except msgspec.DecodeError as exc:
            raise EventDecodeError(f"malformed payload: {exc}") from exc
        event_type = self._types.get(str(head.get("type")))
        if event_type is None:
            raise EventDecodeError(f"unknown event type {head.get('type')!r}")
        version = head.get("schema_version")
        if not isinstance(version, int) or version > event_type.SCHEMA_VERSION:
            raise EventDecodeError(
                f"{event_type.__name__} schema_version {version!r} is not supported "
                f"(this consumer knows up to {event_type.SCHEMA_VERSION})"
            )
        try:
            event: Event = self._decoder.decode(payload)
        except (msgspec.ValidationError, ValueError) as exc:
            raise EventDecodeError(f"invalid {event_type.__name__}: {exc}") from exc
        return event


def _union(types: tuple[type[Event], ...]) -> Any:
    from functools import reduce
    from operator import or_

    return reduce(or_, types)
