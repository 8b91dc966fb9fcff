"""Outbox relay: publishes committed alert events to JetStream, marking each row sent only after the server's ack."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from typing import cast

import asyncpg
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from prometheus_client import Counter, Gauge

from alerts.repository import AlertRepository
from core.bus import Bus
from core.logging import get_logger

log = get_logger(__name__)

RELAYED = Counter("vigie_alerts_outbox_relayed_total", "Outbox rows published and acknowledged")
DUPLICATES = Counter("vigie_alerts_outbox_duplicates_total", "Outbox rows the server already had (republish)")
DIRECT_OVERFLOW = Counter("vigie_alerts_outbox_direct_overflow_total",
                          "Committed rows left to the polling relay because the direct queue was full")
LAG = Gauge("vigie_alerts_outbox_lag_seconds", "Age of the oldest unsent outbox row")


# An outbox row as its writer holds it after the commit: (id, subject, payload).
OutboxRow = tuple[uuid.UUID, str, bytes]


class OutboxRelay:
    """Claims unsent rows (FOR UPDATE SKIP LOCKED, so several relays share the work), publishes them with
    Nats-Msg-Id = row id, awaits every PubAck, then marks them sent in the same transaction. A crash between the
    ack and the commit republishes: the stream's duplicate window drops it and consumers key on event_id.

    A writer in this process hands over the rows it just committed (`committed`): they were written with
    `relay_after` a few seconds ahead, the direct loop publishes them at once without reading them back, and the
    polling loop only takes them over if that never happened (the process died, NATS was down)."""

    def __init__(self, pool: asyncpg.Pool, bus: Bus, *, batch: int = 256, idle_s: float = 0.02,
                 repo: AlertRepository | None = None, direct_limit: int = 50_000) -> None:
        self._pool = pool
        self._bus = bus
        self._batch = batch
        self._idle_s = idle_s
        self._repo = repo or AlertRepository()
        self._wake = asyncio.Event()
        self._direct: deque[OutboxRow] = deque()
        self._direct_wake = asyncio.Event()
        self._direct_limit = direct_limit
        self._published: list[uuid.UUID] = []
        self._mark_wake = asyncio.Event()
        self.relayed = 0

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows (same process): relay now rather than at the next poll."""
        self._wake.set()

    def committed(self, rows: list[OutboxRow]) -> None:
        """Rows a transaction of this process just committed, for the direct loop. Past `direct_limit` queued rows
        they are left to the polling loop (later, but nothing is lost)."""
        if len(self._direct) + len(rows) > self._direct_limit:
            DIRECT_OVERFLOW.inc(len(rows))
            return
        self._direct.extend(rows)
        self._direct_wake.set()

    async def publish_committed(self, rows: list[OutboxRow]) -> None:
        """Publish rows a transaction of this process just committed; the marker loop marks them sent. On failure
        they stay unsent and the polling loop publishes them once their relay_after has passed."""
        if not rows:
            return
        try:
            acks = await asyncio.gather(*(
                self._bus.js.publish(subject, payload, timeout=5.0, headers={"Nats-Msg-Id": str(row_id)})
                for row_id, subject, payload in rows))
        except (NatsTimeoutError, NoServersError, ConnectionError, OSError) as exc:
            log.warning("alerts.direct_publish_failed", rows=len(rows), error=repr(exc))
            return
        DUPLICATES.inc(sum(1 for a in acks if a.duplicate))
        RELAYED.inc(len(rows))
        self.relayed += len(rows)
        self._published.extend(row_id for row_id, _, _ in rows)
        self._mark_wake.set()

    async def _mark_published(self, stop: asyncio.Event) -> None:
        """Marks sent what the direct loop published, many rows per statement and off its path: the next publish
        does not wait for this commit. Rows left unmarked (database down, process killed) are published again by
        the polling loop; the stream's duplicate window drops them."""
        while True:
            if not self._published:
                if stop.is_set():
                    return
                self._mark_wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._mark_wake.wait(), timeout=0.5)
                continue
            ids, self._published = self._published, []
            try:
                async with self._pool.acquire() as raw:
                    await self._repo.mark_sent(cast(asyncpg.Connection, raw), ids)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
                log.warning("alerts.mark_sent_failed", rows=len(ids), error=repr(exc))
                if stop.is_set():
                    return
                await asyncio.sleep(0.5)

    async def relay_once(self) -> int:
        async with self._pool.acquire() as raw, raw.transaction():
            conn = cast(asyncpg.Connection, raw)
            rows = await self._repo.unsent(conn, self._batch)
            if not rows:
                return 0
            acks = await asyncio.gather(*(
                self._bus.js.publish(r["subject"], bytes(r["payload"]), timeout=5.0,
                                     headers={"Nats-Msg-Id": str(r["id"])}) for r in rows))
            sent: list[uuid.UUID] = [r["id"] for r in rows]
            await self._repo.mark_sent(conn, sent)
        DUPLICATES.inc(sum(1 for a in acks if a.duplicate))
        RELAYED.inc(len(sent))
        self.relayed += len(sent)
        return len(sent)

    async def run(self, stop: asyncio.Event) -> None:
        """The polling loop, the direct loop and its marker, until `stop`."""
        await asyncio.gather(self._poll(stop), self._publish_direct(stop), self._mark_published(stop))

    async def _publish_direct(self, stop: asyncio.Event) -> None:
        async def forward_stop() -> None:
            await stop.wait()
            self._direct_wake.set()

        stopper = asyncio.create_task(forward_stop())
        try:
            while not stop.is_set():
                self._direct_wake.clear()
                if not self._direct:
                    await self._direct_wake.wait()
                    continue
                # What accumulated while the previous chunk was in flight goes out together, in commit order.
                chunk = [self._direct.popleft() for _ in range(min(len(self._direct), 4 * self._batch))]
                await self.publish_committed(chunk)
        finally:
            stopper.cancel()

    async def _poll(self, stop: asyncio.Event) -> None:
        async def forward_stop() -> None:
            await stop.wait()
            self._wake.set()

        stopper = asyncio.create_task(forward_stop())
        delay = self._idle_s
        try:
            while not stop.is_set():
                # Cleared before reading the outbox: a commit landing during this round wakes the next one.
                self._wake.clear()
                try:
                    count = await self.relay_once()
                    delay = self._idle_s
                    if count:
                        continue
                except (NatsTimeoutError, NoServersError, ConnectionError, OSError, asyncpg.PostgresError,
                        asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
                    # Nothing was marked sent: the rows stay for the next attempt (dedupe absorbs partial publishes).
                    log.warning("alerts.relay_retry", error=repr(exc), delay_s=delay)
                    delay = min(max(delay * 2, 0.2), 5.0)
                    # Backing off: new commits must not make a failing relay spin.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                    continue
                # Idle: the poll also picks up rows committed by other processes (the API's workflow).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            stopper.cancel()

    async def watch_lag(self, stop: asyncio.Event, every_s: float = 5.0) -> None:
        while not stop.is_set():
            try:
                async with self._pool.acquire() as raw:
                    LAG.set(await self._repo.outbox_lag_s(cast(asyncpg.Connection, raw)))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
