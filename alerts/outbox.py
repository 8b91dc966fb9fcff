"""Outbox relay: publishes committed alert events to JetStream, marking each row sent only after the server's ack."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
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
LAG = Gauge("vigie_alerts_outbox_lag_seconds", "Age of the oldest unsent outbox row")


class OutboxRelay:
    """Claims unsent rows (FOR UPDATE SKIP LOCKED, so several relays share the work), publishes them with
    Nats-Msg-Id = row id, awaits every PubAck, then marks them sent in the same transaction. A crash between the
    ack and the commit republishes: the stream's duplicate window drops it and consumers key on event_id."""

    def __init__(self, pool: asyncpg.Pool, bus: Bus, *, batch: int = 256, idle_s: float = 0.02,
                 repo: AlertRepository | None = None) -> None:
        self._pool = pool
        self._bus = bus
        self._batch = batch
        self._idle_s = idle_s
        self._repo = repo or AlertRepository()
        self.relayed = 0

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
        delay = self._idle_s
        while not stop.is_set():
            try:
                count = await self.relay_once()
                delay = self._idle_s
                if count:
                    continue
            except (NatsTimeoutError, NoServersError, ConnectionError, OSError, asyncpg.PostgresError,
                    asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
                # Nothing was marked sent: the rows stay for the next attempt (and dedupe absorbs partial publishes).
                log.warning("alerts.relay_retry", error=repr(exc), delay_s=delay)
                delay = min(max(delay * 2, 0.2), 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def watch_lag(self, stop: asyncio.Event, every_s: float = 5.0) -> None:
        while not stop.is_set():
            try:
                async with self._pool.acquire() as raw:
                    LAG.set(await self._repo.outbox_lag_s(cast(asyncpg.Connection, raw)))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
