"""Leadership by a Postgres advisory lock: one copy of a process runs a singleton job, another takes over when it dies.

The lock is session-level, held on a connection of its own (never a pooled one: a pool's reset on release unlocks
every advisory lock). When the leader dies, Postgres ends its session and frees the lock; when the leader loses its
connection (a failover, a network cut), it stops the job at once, since another copy may already lead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from core.logging import get_logger

log = get_logger(__name__)

_CONNECTION_LOST = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


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
