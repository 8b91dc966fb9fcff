"""Publishes detection events to JetStream (detections.<tenant>.<camera>) with a JPEG snapshot in the tenant's space.

Backends call `submit` from the event loop and never wait on the network. A NATS outage holds events in a bounded
queue and retries with backoff; when the queue is full the oldest event is dropped *and counted and logged*;
an event that cannot be encoded goes to the dead-letter stream with the reason. A snapshot that cannot be stored
does not hold back the alert: the event goes out without a snapshot key and the failure is counted.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import msgspec
from prometheus_client import Counter

from core.bus import DEAD_LETTER_PREFIX, Bus
from core.errors import Unavailable
from core.events import Event, EventCodec
from core.logging import get_logger
from core.objectstore import ObjectStore
from inference.events import DETECTIONS_STREAM, ObjectDetected, RuleTriggered, subject_for

log = get_logger(__name__)


PUBLISHED = Counter("vigie_inference_events_published_total", "Detection events published", ["type"])
OVERFLOWED = Counter("vigie_inference_events_overflowed_total", "Events dropped because the publish queue was full")
SNAPSHOT_FAILURES = Counter("vigie_inference_snapshot_failures_total", "Snapshots that could not be stored")
DEAD_LETTERED = Counter("vigie_inference_events_dead_lettered_total", "Events that could not be encoded")


class Picture(Protocol):
    """A decoded frame that can become a JPEG (PyAV frames satisfy it through Pillow)."""

    def to_image(self) -> object: ...


class EventSink(Protocol):
    """Where a backend hands its events; the production sink is DetectionPublisher."""

    def submit(self, event: Event, camera_id: uuid.UUID, picture: Picture | None = None) -> None: ...


def encode_jpeg(picture: Picture, quality: int) -> bytes:
    image = picture.to_image()
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)  # type: ignore[attr-defined]
    return buffer.getvalue()


def snapshot_key(event: Event, camera_id: uuid.UUID) -> str:
    return f"snapshots/{camera_id}/{event.occurred_at:%Y/%m/%d}/{event.event_id}.jpg"


@dataclass
class _Pending:
    event: Event
    camera_id: uuid.UUID
    picture: Picture | None


@dataclass
class PublisherCounters:
    published: int = 0
    overflowed: int = 0
    snapshot_failures: int = 0
    dead_lettered: int = 0
    retries: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class DetectionPublisher:
    """Bounded queue → snapshot → object store → JetStream, in one task."""

    def __init__(self, bus: Bus, store: ObjectStore, *, snapshot_quality: int = 80, queue_max: int = 10_000,
                 encode: Callable[[Picture, int], bytes] = encode_jpeg) -> None:
        self._bus = bus
        self._store = store
        self._quality = snapshot_quality
        self._queue: deque[_Pending] = deque()
        self._queue_max = queue_max
        self._wake = asyncio.Event()
        self._spaces: set[uuid.UUID] = set()
        self._encode = encode
        self.counters = PublisherCounters()

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def submit(self, event: Event, camera_id: uuid.UUID, picture: Picture | None = None) -> None:
        if len(self._queue) >= self._queue_max:
            dropped = self._queue.popleft()
            self.counters.overflowed += 1
            OVERFLOWED.inc()
            log.error("inference.publish_queue_overflow", dropped_event=str(dropped.event.event_id),
                      dropped_type=type(dropped.event).__name__, queue_max=self._queue_max)
        self._queue.append(_Pending(event, camera_id, picture))
        self._wake.set()

    async def prepare(self) -> None:
        # Declared by `vigie bus provision`: the worker only checks it, never rewrites it.
        await self._bus.require_streams((DETECTIONS_STREAM,))

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set, then flush what is queued (for at most a few seconds)."""
        delay = 0.2
        while True:
            if not self._queue:
                if stop.is_set():
                    return
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                continue
            batch = [self._queue.popleft() for _ in range(min(64, len(self._queue)))]
            try:
                await self._publish(batch)
                delay = 0.2
            except Unavailable as exc:
                # Put the batch back in front, in order, and retry: JetStream dedupes by event id.
                self._queue.extendleft(reversed(batch))
                self.counters.retries += 1
                log.warning("inference.publish_retry", error=str(exc), backlog=len(self._queue), delay_s=delay)
                if stop.is_set() and delay > 5:
                    log.error("inference.publish_abandoned_at_shutdown", backlog=len(self._queue))
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _publish(self, batch: list[_Pending]) -> None:
        items: list[tuple[str, Event]] = []
        for pending in batch:
            event = pending.event
            if pending.picture is not None and isinstance(event, ObjectDetected | RuleTriggered) \
                    and event.snapshot_key is None:
                key = await self._store_snapshot(pending)
                if key is not None:
                    event = msgspec.structs.replace(event, snapshot_key=key)
                    pending.event = event
                    pending.picture = None
            try:
                EventCodec.encode(event)
            except (msgspec.EncodeError, TypeError, ValueError) as exc:
                await self._dead_letter(event, f"unencodable: {exc}")
                continue
            items.append((subject_for(event), event))
        await self._bus.publish_many(items)
        for _, event in items:
            name = type(event).__name__
            self.counters.published += 1
            self.counters.by_type[name] = self.counters.by_type.get(name, 0) + 1
            PUBLISHED.labels(name).inc()

    async def _store_snapshot(self, pending: _Pending) -> str | None:
        event = pending.event
        assert pending.picture is not None
        try:
            data = await asyncio.to_thread(self._encode, pending.picture, self._quality)
            if event.tenant_id not in self._spaces:
                await self._store.ensure_tenant_space(event.tenant_id)
                self._spaces.add(event.tenant_id)
            key = snapshot_key(event, pending.camera_id)
            await self._store.put(event.tenant_id, key, data, content_type="image/jpeg")
        except Exception as exc:  # any storage or encoding failure: the alert still goes out, without a picture
            self.counters.snapshot_failures += 1
            SNAPSHOT_FAILURES.inc()
            log.warning("inference.snapshot_failed", event_id=str(event.event_id), error=repr(exc))
            return None
        return key

    async def _dead_letter(self, event: Event, reason: str) -> None:
        self.counters.dead_lettered += 1
        DEAD_LETTERED.inc()
        log.error("inference.event_dead_lettered", event_id=str(event.event_id), reason=reason)
        payload = repr(event).encode(errors="replace")
        try:
            await self._bus.publish_encoded(f"{DEAD_LETTER_PREFIX}.{DETECTIONS_STREAM.name}.inference", payload,
                                            msg_id=f"dlq-inference-{event.event_id}", reason=reason)
        except Exception as exc:  # the log line above already records the event
            log.error("inference.dead_letter_failed", event_id=str(event.event_id), error=repr(exc))
