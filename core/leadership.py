"""Leadership of a department singleton: a session advisory lock on a connection of its own, held while leading."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg

from core.db import Database
from core.logging import get_logger

log = get_logger(__name__)

_DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


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
