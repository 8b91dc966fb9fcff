"""The operators' live alarm queue over Server-Sent Events: the ALERTS events of the caller's tenants, each with its
stream sequence as `id:` so a reconnect resumes after `Last-Event-ID` without losing any; the caller is authorised
again at every heartbeat and the stream ends at token expiry, logout, revocation or lost habilitation; a session
holds a few streams at most."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from litestar.response import ServerSentEventMessage

from alerts.events import ALERTS_STREAM
from alerts.service import OPERATORS
from api.services import Services
from core.bus import Bus, stream_sequence
from core.errors import AuthenticationFailed, InvalidInput, PermissionDenied, RateLimited
from core.tenancy import Principal, require_role
from identity.sessions import SessionService

# Defaults of VIGIE_API__LIVE_HEARTBEAT_S and VIGIE_API__LIVE_STREAMS_PER_SESSION.
HEARTBEAT_S = 15.0
STREAMS_PER_SESSION = 3
# Events waiting for a slow client; past this the stream ends and the client resumes from its last id.
QUEUE_MAX = 1000
_MAX_SEQUENCE = 2**63 - 1


class Slot:
    """One open stream of a session."""


@dataclass
class StreamSlots:
    """Open live streams per session in this process. A slot is freed when its stream ends, or when a stream that
    never started is collected (weak references)."""

    limit: int = STREAMS_PER_SESSION
    _open: dict[uuid.UUID, weakref.WeakSet[Slot]] = field(default_factory=dict)

    def take(self, session_id: uuid.UUID) -> Slot:
        held = self._open.setdefault(session_id, weakref.WeakSet())
        if len(held) >= self.limit:
            raise RateLimited(f"this session already holds {self.limit} live queue streams: close one first",
                              retry_after_s=5)
        slot = Slot()
        held.add(slot)
        return slot

    def release(self, session_id: uuid.UUID, slot: Slot) -> None:
        held = self._open.get(session_id)
        if held is not None:
            held.discard(slot)
            if not held:
                del self._open[session_id]

    def held(self, session_id: uuid.UUID) -> int:
        return len(self._open.get(session_id, ()))


def parse_last_event_id(value: str | None) -> int | None:
    """The stream sequence a reconnecting client saw last (the SSE `Last-Event-ID` header)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 19 or int(value) > _MAX_SEQUENCE:
        raise InvalidInput("Last-Event-ID must be the id of an event of this stream (a sequence number)",
                           field="Last-Event-ID")
    return int(value)


def token_expiry(token: str) -> float | None:
    """The `exp` of an access token the authentication middleware has already verified; only schedules the
    stream's end (the principal itself comes from SessionService.resolve)."""
    try:
        payload = token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    return float(exp) if isinstance(exp, int | float) else None


@dataclass(frozen=True)
class _Event:
    tenant_id: uuid.UUID
    kind: str
    sequence: int
    data: str


@dataclass
class LiveQueue:
    """One client's stream: follows ALERTS (from `after_sequence` when resuming) and sends what its principal may
    see, until the principal is no longer valid."""

    bus: Bus
    sessions: SessionService
    token: str
    principal: Principal
    heartbeat_s: float
    after_sequence: int
    _queue: asyncio.Queue[_Event] = field(default_factory=lambda: asyncio.Queue(maxsize=QUEUE_MAX))
    _overflowed: bool = False

    async def _on_message(self, msg: Any) -> None:
        parts = str(msg.subject).split(".")
        try:
            tenant = uuid.UUID(parts[1])
        except (IndexError, ValueError):
            return
        if self._queue.full():
            self._overflowed = True
            return
        self._queue.put_nowait(_Event(tenant, parts[2] if len(parts) > 2 else "event", stream_sequence(msg),
                                      bytes(msg.data).decode()))

    async def _still_allowed(self) -> str | None:
        """None while the caller may watch the queue; otherwise why the stream ends."""
        expires = token_expiry(self.token)
        if expires is not None and time.time() >= expires:
            return "the access token expired"
        try:
            principal = await self.sessions.resolve(self.token)
            require_role(principal, OPERATORS, "watch the live alarm queue")
        except (AuthenticationFailed, PermissionDenied) as exc:
            return exc.detail
        # The scope may have changed (a commune left live supervision): the new one filters from now on.
        self.principal = principal
        return None

    def _wait_s(self, checked_at: float) -> float:
        wait = self.heartbeat_s - (time.monotonic() - checked_at)
        expires = token_expiry(self.token)
        if expires is not None:
            wait = min(wait, expires - time.time())
        return max(wait, 0.0)

    async def events(self, on_end: Any = None) -> AsyncIterator[ServerSentEventMessage]:
        following = await self.bus.follow("alerts.>", ALERTS_STREAM.name, self._on_message,
                                          after_sequence=self.after_sequence)
        try:
            # `ready` names where the stream starts as its id: a client that drops before any event arrives
            # resumes from there, so nothing raised while it was away is lost.
            yield ServerSentEventMessage(event="ready", data="{}", id=str(self.after_sequence))
            checked_at = time.monotonic()
            while True:
                try:
                    item: _Event | None = await asyncio.wait_for(self._queue.get(), timeout=self._wait_s(checked_at))
                except TimeoutError:
                    item = None
                if self._overflowed:
                    yield _end("the client reads too slowly: reconnect with Last-Event-ID to resume")
                    return
                due = time.monotonic() - checked_at >= self.heartbeat_s
                expires = token_expiry(self.token)
                if due or (expires is not None and time.time() >= expires):
                    # Authorised again before anything more is sent, at every heartbeat.
                    reason = await self._still_allowed()
                    if reason is not None:
                        yield _end(reason)
                        return
                    checked_at = time.monotonic()
                    if item is None:
                        # A comment only: an empty data line would reach EventSource.onmessage as an empty message.
                        yield ServerSentEventMessage(comment="keep-alive", data=None)
                if item is not None and self.principal.scope.includes(item.tenant_id):
                    yield ServerSentEventMessage(event=item.kind, data=item.data, id=str(item.sequence))
        finally:
            # Safe when the server stops and the app's bus closed first: the subscription went with the connection.
            await following.stop()
            if on_end is not None:
                on_end()


# Slots of the live queue's streams, per session, in this process.
SLOTS = StreamSlots()


def live_stream(services: Services, principal: Principal, token: str,
                after_sequence: int) -> AsyncIterator[ServerSentEventMessage]:
    """A stream for this principal, holding one of its session's slots until it ends (RateLimited when none is
    left)."""
    assert services.bus is not None
    settings = services.settings.api
    SLOTS.limit = settings.live_streams_per_session
    slot = SLOTS.take(principal.session_id)
    queue = LiveQueue(services.bus, services.sessions, token, principal, heartbeat_s=settings.live_heartbeat_s,
                      after_sequence=after_sequence)
    return queue.events(on_end=lambda: SLOTS.release(principal.session_id, slot))


def _end(reason: str) -> ServerSentEventMessage:
    """The last event of a stream that the server ends: the client learns why (and a 401 on reconnecting)."""
    return ServerSentEventMessage(event="end", data=json.dumps({"reason": reason}))
