"""The transactional outbox: rows written in the transaction of a change, published to JetStream by one relay."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from prometheus_client import Counter, Gauge

from core.bus import Bus
from core.db import Database
from core.errors import Unavailable
from core.events import Event, EventCodec
from core.logging import get_logger

log = get_logger(__name__)

RELAYED = Counter("vigie_outbox_relayed_total", "Outbox rows published and acknowledged", ["table"])
DUPLICATES = Counter("vigie_outbox_duplicates_total", "Outbox rows the server already had (republish)", ["table"])
DIRECT_OVERFLOW = Counter("vigie_outbox_direct_overflow_total",
                          "Committed rows left to the polling relay because the direct queue was full", ["table"])
LAG = Gauge("vigie_outbox_lag_seconds", "Age of the oldest unsent outbox row", ["table"])

# What a failing publish or database round trip raises; the rows stay unsent for the next attempt.
_TRANSIENT = (Unavailable, OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
              TimeoutError)
_TABLE_NAME = re.compile(r"^[a-z][a-z_]*_outbox$")


@dataclass(frozen=True)
class OutboxRow:
    """A row as its writer holds it after the commit: what the direct path publishes without reading it back."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    subject: str
    payload: bytes


class Outbox:
    """One outbox table (`<domain>_outbox`: id, tenant_id, subject, payload, created_at, sent_at, seq, relay_after),
    its writer and its relay's SQL. Nats-Msg-Id = event_id = row id, so a republish is dropped by the stream's
    duplicate window and consumers key on event_id too."""

    def __init__(self, table: str, subject_for: Callable[[Event], str]) -> None:
        if not _TABLE_NAME.match(table):
            raise ValueError(f"{table!r} is not an outbox table name")
        self.table = table
        self._subject_for = subject_for

    def row(self, event: Event) -> OutboxRow:
        return OutboxRow(event.event_id, event.tenant_id, self._subject_for(event), EventCodec.encode(event))

    async def add(
        self, conn: asyncpg.Connection, events: Sequence[Event], *, relay_after: datetime | None = None
    ) -> list[OutboxRow]:
        """Write the events in the caller's transaction, in order. With `relay_after`, the caller hands the returned
        rows to `OutboxRelay.committed` after its commit and the polling relay leaves them alone until then."""
        rows = [self.row(e) for e in events]
        if rows:
            await conn.execute(
                f"INSERT INTO {self.table} (id, tenant_id, subject, payload, relay_after) "  # noqa: S608 - checked name
                "SELECT r.id, r.tenant_id, r.subject, r.payload, coalesce($5, now()) "
                "FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[]) WITH ORDINALITY "
                "AS r(id, tenant_id, subject, payload, n) ORDER BY r.n",
                [r.id for r in rows], [r.tenant_id for r in rows], [r.subject for r in rows],
                [r.payload for r in rows], relay_after,
            )
        return rows

    async def claim_unsent(self, conn: asyncpg.Connection, limit: int) -> list[OutboxRow]:
        records = await conn.fetch(
            f"SELECT id, tenant_id, subject, payload FROM {self.table} "  # noqa: S608 - checked name
            "WHERE sent_at IS NULL AND relay_after <= now() ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
        )
        return [OutboxRow(r["id"], r["tenant_id"], r["subject"], bytes(r["payload"])) for r in records]

    async def mark_sent(self, conn: asyncpg.Connection, ids: Sequence[uuid.UUID]) -> None:
        await conn.execute(
            f"UPDATE {self.table} SET sent_at = now() WHERE id = ANY($1::uuid[]) AND sent_at IS NULL",  # noqa: S608
            list(ids),
        )

    async def lag_s(self, conn: asyncpg.Connection) -> float:
        value = await conn.fetchval(
            f"SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM {self.table} "  # noqa: S608
            "WHERE sent_at IS NULL"
        )
        return float(value or 0)


class OutboxRelay:
    """Publishes an outbox's committed rows, in the order written, marking each sent only after the server's ack.

    The polling loop claims unsent rows (FOR UPDATE SKIP LOCKED, so several relays share the work), publishes them,
    awaits every PubAck, then marks them sent in the same transaction; a crash between the ack and the commit
    republishes, which the stream's duplicate window drops. A writer of this process hands over the rows it just
    committed (`committed`): the direct loop publishes them at once without reading them back and marks them sent off
    its path; the polling loop takes them over only if that never happened (the process died, NATS was down).
    """

    def __init__(self, db: Database, bus: Bus, outbox: Outbox, *, batch: int = 256, idle_s: float = 0.02,
                 direct_limit: int = 50_000) -> None:
        self._db = db
        self._bus = bus
        self._outbox = outbox
        self._batch = batch
        self._idle_s = idle_s
        self._wake = asyncio.Event()
        self._direct: deque[OutboxRow] = deque()
        self._direct_wake = asyncio.Event()
        self._direct_limit = direct_limit
        self._published: list[uuid.UUID] = []
        self._mark_wake = asyncio.Event()
        self.relayed = 0

    @property
    def _table(self) -> str:
        return self._outbox.table

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows (same process): relay now rather than at the next poll."""
        self._wake.set()

    def committed(self, rows: Sequence[OutboxRow]) -> None:
        """Rows a transaction of this process just committed, for the direct loop. Past `direct_limit` queued rows
        they are left to the polling loop (later, but nothing is lost)."""
        if len(self._direct) + len(rows) > self._direct_limit:
            DIRECT_OVERFLOW.labels(self._table).inc(len(rows))
            return
        self._direct.extend(rows)
        self._direct_wake.set()

    async def _publish(self, rows: Sequence[OutboxRow]) -> None:
        acks = await asyncio.gather(*(
            self._bus.publish_encoded(r.subject, r.payload, msg_id=str(r.id)) for r in rows))
        DUPLICATES.labels(self._table).inc(sum(1 for a in acks if a.duplicate))
        RELAYED.labels(self._table).inc(len(rows))
        self.relayed += len(rows)

    async def publish_committed(self, rows: Sequence[OutboxRow]) -> None:
        """Publish rows this process just committed; the marker loop marks them sent. On failure they stay unsent
        and the polling loop publishes them once their relay_after has passed."""
        if not rows:
            return
        try:
            await self._publish(rows)
        except _TRANSIENT as exc:
            log.warning("outbox.direct_publish_failed", table=self._table, rows=len(rows), error=repr(exc))
            return
        self._published.extend(r.id for r in rows)
        self._mark_wake.set()

    async def relay_once(self) -> int:
        """One polling round: claim, publish, await the acks, mark sent; returns the rows relayed."""
        async with self._db.cross_tenant("outbox relay") as conn, conn.transaction():
            rows = await self._outbox.claim_unsent(conn, self._batch)
            if not rows:
                return 0
            await self._publish(rows)
            await self._outbox.mark_sent(conn, [r.id for r in rows])
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """The polling loop, the direct loop and its marker, until `stop`."""
        await asyncio.gather(self._poll(stop), self._publish_direct(stop), self._mark_published(stop))

    async def _mark_published(self, stop: asyncio.Event) -> None:
        """Marks sent what the direct loop published, many rows per statement: the next publish does not wait for
        this commit. Rows left unmarked (database down, process killed) are published again by the polling loop."""
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
                async with self._db.cross_tenant("outbox relay") as conn:
                    await self._outbox.mark_sent(conn, ids)
            except _TRANSIENT as exc:
                log.warning("outbox.mark_sent_failed", table=self._table, rows=len(ids), error=repr(exc))
                if stop.is_set():
                    return
                await asyncio.sleep(0.5)

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
                except _TRANSIENT as exc:
                    # Nothing was marked sent: the rows stay for the next attempt (dedupe absorbs partial publishes).
                    log.warning("outbox.relay_retry", table=self._table, error=repr(exc), delay_s=delay)
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
        """Keeps the lag gauge: the age of the oldest unsent row (alerting on a relay that stopped relaying)."""
        while not stop.is_set():
            try:
                async with self._db.cross_tenant("outbox lag gauge") as conn:
                    LAG.labels(self._table).set(await self._outbox.lag_s(conn))
            except _TRANSIENT as exc:
                log.debug("outbox.lag_unreadable", table=self._table, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
