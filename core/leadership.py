"""Leadership of a department singleton: a session advisory lock on a connection of its own, held while leading."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from core.db import Database
from core.logging import get_logger

log = get_logger(__name__)

_DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


_CONNECTION_LOST = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)

class Term:
    """One term of leadership: valid while the connection that holds the lock is alive. Postgres releases a session
    advisory lock when its connection ends, so a leader whose connection died may already have a successor."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.lost = False

    async def still_leading(self) -> bool:
        if self.lost:
            return False
        try:
            await self._conn.fetchval("SELECT 1")
        except _DATABASE_ERRORS:
            self.lost = True
        return not self.lost


class Leadership:
    """At most one leader per `name` across every process on the database; the others follow and retry.

    The lock is a session lock (`pg_try_advisory_lock`) on a department connection taken out of the pool for the
    whole term and unlocked before it goes back: the pool's reset only rolls back, it does not release locks.
    """

    def __init__(self, db: Database, name: str, *, retry_s: float = 5.0) -> None:
        self.db = db
        self.name = name
        self.retry_s = retry_s

    @asynccontextmanager
    async def term(self) -> AsyncIterator[Term | None]:
        """A term if this process takes the lead now, None if another holds it."""
        async with self.db.cross_tenant("leadership") as conn:
            key = await conn.fetchval("SELECT hashtextextended($1, 0)", f"vigie.leadership:{self.name}")
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                yield None
                return
            term = Term(conn)
            log.info("leadership.taken", name=self.name)
            try:
                yield term
            finally:
                try:
                    await conn.execute("SELECT pg_advisory_unlock($1)", key)
                except _DATABASE_ERRORS:
                    # A dead connection took its lock with it; a live one must not go back to the pool holding it.
                    with contextlib.suppress(*_DATABASE_ERRORS):
                        conn.terminate()
                log.info("leadership.released", name=self.name)

    async def run(self, stop: asyncio.Event, work: Callable[[Term], Awaitable[None]], *, interval_s: float) -> None:
        """Until `stop`: while leading, call `work(term)` every `interval_s`; while following, try again every
        `retry_s`. A lost connection ends the term; errors of the work are the work's to log."""
        while not stop.is_set():
            try:
                async with self.term() as term:
                    while term is not None and not stop.is_set() and await term.still_leading():
                        await work(term)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except _DATABASE_ERRORS as exc:
                log.warning("leadership.failed", name=self.name, error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.retry_s)


# The same lock for jobs that hold only a DSN (the billing run, the cluster's singletons): a context manager.
@dataclass
class Lead:
    """What `leadership` yields: `held` is set while this copy leads, `lost` once it led and stopped leading."""

    name: str
    held: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def leading(self) -> bool:
        return self.held.is_set() and not self.lost.is_set()


async def _try_lock(dsn: str, name: str) -> asyncpg.Connection | None:
    conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=5)
    try:
        if await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", f"vigie-leader:{name}"):
            return conn
    except BaseException:
        await conn.close()
        raise
    await conn.close()
    return None


@asynccontextmanager
async def leadership(dsn: str, name: str, *, check_s: float = 1.0) -> AsyncIterator[Lead]:
    """Try for the lock named `name` every `check_s` until held (`lead.held`), then check the connection every
    `check_s`; on its loss `lead.lost` is set and trying stops. Leaving the block releases the lock."""
    lead = Lead(name)

    async def keep() -> None:
        conn: asyncpg.Connection | None = None
        try:
            while conn is None:
                with contextlib.suppress(*_CONNECTION_LOST):
                    conn = await _try_lock(dsn, name)
                if conn is None:
                    await asyncio.sleep(check_s)
            lead.held.set()
            log.info("leadership.acquired", name=name)
            while True:
                await asyncio.sleep(check_s)
                try:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=max(check_s, 2.0))
                except _CONNECTION_LOST as exc:
                    log.warning("leadership.lost", name=name, error=repr(exc))
                    lead.lost.set()
                    return
        finally:
            if conn is not None:
                with contextlib.suppress(*_CONNECTION_LOST):
                    await asyncio.wait_for(conn.close(), timeout=2.0)

    keeper = asyncio.create_task(keep())
    try:
        yield lead
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def run_as_leader(dsn: str, name: str, job: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event,
                        *, check_s: float = 1.0) -> None:
    """Run `job(until)` only while this copy leads, until `stop`: `until` is set when `stop` is or leadership is
    lost; a lost leadership is sought again."""
    while not stop.is_set():
        async with leadership(dsn, name, check_s=check_s) as lead:
            waits: list[asyncio.Future[bool]] = [asyncio.ensure_future(lead.held.wait()),
                                                 asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            if stop.is_set():
                return
            until = asyncio.Event()

            async def relay(source: asyncio.Event, target: asyncio.Event = until) -> None:
                await source.wait()
                target.set()

            watchers: list[asyncio.Task[None]] = [asyncio.create_task(relay(stop)),
                                                  asyncio.create_task(relay(lead.lost))]
            try:
                await job(until)
            finally:
                for watcher in watchers:
                    watcher.cancel()
