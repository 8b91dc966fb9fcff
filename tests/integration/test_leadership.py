"""Advisory-lock leadership: one copy leads, a second takes over when the leader's session dies."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from core.leadership import leadership, run_as_leader
from core.settings import Settings

pytestmark = pytest.mark.integration


async def _terminate_sessions_holding(settings: Settings, name: str) -> int:
    admin = await asyncpg.connect(settings.database.admin_dsn.get_secret_value())
    try:
        return int(await admin.fetchval(
            "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)", f"vigie-leader:{name}"))
    finally:
        await admin.close()


async def test_one_copy_leads_and_another_takes_over_when_its_session_dies(settings: Settings) -> None:
    dsn, name = settings.database.department_dsn, "test-singleton"
    async with leadership(dsn, name, check_s=0.2) as one, leadership(dsn, name, check_s=0.2) as other:
        # Both copies try at once: either may win the lock, the other follows.
        for _ in range(100):
            if one.held.is_set() or other.held.is_set():
                break
            await asyncio.sleep(0.1)
        first, second = (one, other) if one.held.is_set() else (other, one)
        await asyncio.sleep(1.0)
        assert first.leading
        assert not second.held.is_set()
        assert await _terminate_sessions_holding(settings, name) == 1
        await asyncio.wait_for(first.lost.wait(), 5)
        await asyncio.wait_for(second.held.wait(), 5)
        assert second.leading
        assert not first.leading


async def test_the_job_runs_on_one_copy_at_a_time_and_stops_when_leadership_is_lost(settings: Settings) -> None:
    dsn, name = settings.database.department_dsn, "test-job"
    running: list[str] = []
    starts: list[str] = []
    overlaps: list[list[str]] = []
    stop = asyncio.Event()

    def job_of(copy: str):  # type: ignore[no-untyped-def]
        async def job(until: asyncio.Event) -> None:
            running.append(copy)
            starts.append(copy)
            if len(running) > 1:
                overlaps.append(list(running))
            try:
                await until.wait()
            finally:
                running.remove(copy)
        return job

    copies = [asyncio.create_task(run_as_leader(dsn, name, job_of(c), stop, check_s=0.2)) for c in ("a", "b")]
    try:
        for _ in range(50):
            if running:
                break
            await asyncio.sleep(0.1)
        assert starts == running
        assert len(running) == 1
        assert await _terminate_sessions_holding(settings, name) == 1
        for _ in range(50):
            if len(starts) == 2 and running:
                break
            await asyncio.sleep(0.1)
        # The job stopped with the lost session and runs again on whichever copy took the lock.
        assert len(starts) == 2, starts
        assert len(running) == 1, starts
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*copies), 10)
    assert overlaps == []
    assert running == []
