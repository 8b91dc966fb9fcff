"""One retention sweeper at a time: every recorder runs it, one leads (advisory lock), the others take over when it
stops; each destroyed segment has one register row naming the sweeper as its cause."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from core.db import Database
from core.leadership import Leadership
from core.objectstore import DeletionProof, FilesystemObjectStore
from dvr.retention import RetentionService
from dvr.workers import run_sweeper
from tests.dvr.conftest import World
from tests.dvr.harness import wait_for

pytestmark = pytest.mark.integration


class CountingStore(FilesystemObjectStore):
    """The shared store, seen by one sweeper: counts its deletions and slows them, widening any race."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, presign_secret=b"s" * 32, presign_base_url="http://x/media")
        self.deleted: list[str] = []

    async def delete_version(self, tenant_id: uuid.UUID, key: str, version_id: str) -> DeletionProof:
        await asyncio.sleep(0.02)
        proof = await super().delete_version(tenant_id, key, version_id)
        self.deleted.append(key)
        return proof


async def backdated_segments(pool: asyncpg.Pool, store: FilesystemObjectStore, tenant_id: uuid.UUID,
                             camera_id: uuid.UUID, count: int, *, days_ago: int = 60) -> list[uuid.UUID]:
    ids = []
    start = datetime.now(UTC) - timedelta(days=days_ago)
    async with pool.acquire() as conn:
        for n in range(count):
            data = f"segment {camera_id} {n}".encode()
            key = f"continuous/{camera_id}/{n:04d}.mp4"
            stored = await store.put(tenant_id, key, data, content_type="video/mp4")
            segment_id = uuid.uuid4()
            at = start + timedelta(seconds=10 * n)
            await conn.execute(
                "INSERT INTO recording_segments (id, tenant_id, camera_id, start_at, end_at, size_bytes, sha256, "
                "object_key, version_id, recorder_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'test')",
                segment_id, tenant_id, camera_id, at, at + timedelta(seconds=10), len(data),
                hashlib.sha256(data).hexdigest(), key, stored.version_id)
            ids.append(segment_id)
    return ids


async def register(pool: asyncpg.Pool, camera_id: uuid.UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch("SELECT recording_id, method FROM destruction_register WHERE camera_id = $1",
                                     camera_id))


async def test_two_sweepers_one_leader_one_cause_and_takeover(
        world: World, database: Database, department_pool: asyncpg.Pool, tmp_path: Path) -> None:
    tenant_id, site_id = await world.tenant()
    camera_id = await world.camera("rtsp://127.0.0.1:1/none", tenant_id=tenant_id, site_id=site_id)
    first_store, second_store = CountingStore(tmp_path / "objects"), CountingStore(tmp_path / "objects")
    first_batch = await backdated_segments(department_pool, first_store, tenant_id, camera_id, 12)

    stops = [asyncio.Event(), asyncio.Event()]
    sweepers = [
        asyncio.create_task(run_sweeper(RetentionService(db=database, store=store, batch=4), 0.2, stop,
                                        retry_s=0.2))
        for store, stop in zip((first_store, second_store), stops, strict=True)
    ]
    try:
        async def first_batch_gone() -> bool:
            return len(await register(department_pool, camera_id)) == len(first_batch)
        await wait_for(first_batch_gone, 30, "the first batch destroyed")
        await asyncio.sleep(1.0)  # several more rounds of both: the follower must still do nothing
        rows = await register(department_pool, camera_id)
        assert Counter(r["recording_id"] for r in rows) == Counter(first_batch)
        assert {r["method"] for r in rows} == {"retention_sweeper"}
        deleting = [s for s in (first_store, second_store) if s.deleted]
        assert len(deleting) == 1, "both sweepers deleted versions"
        leader = 0 if deleting[0] is first_store else 1
        follower_store = (first_store, second_store)[1 - leader]

        # The leader stops (its recorder shuts down): the follower takes the lead and sweeps what is due next.
        stops[leader].set()
        await asyncio.wait_for(sweepers[leader], 10)
        second_batch = await backdated_segments(department_pool, follower_store, tenant_id, camera_id, 5,
                                                days_ago=45)

        async def second_batch_gone() -> bool:
            return len(await register(department_pool, camera_id)) == len(first_batch) + len(second_batch)
        await wait_for(second_batch_gone, 30, "the second batch destroyed by the new leader")
        rows = await register(department_pool, camera_id)
        assert Counter(r["recording_id"] for r in rows) == Counter(first_batch + second_batch)
        assert {r["method"] for r in rows} == {"retention_sweeper"}
        assert len(follower_store.deleted) == len(second_batch)
        assert await follower_store.list_versions(tenant_id, f"continuous/{camera_id}/") == []
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*sweepers)


async def test_a_term_ends_with_its_connection(database: Database) -> None:
    """A leader whose connection dies loses the lead (Postgres drops the lock) and knows it; the lock is free."""
    name = f"test.{uuid.uuid4()}"
    first, second = Leadership(database, name), Leadership(database, name)
    async with first.term() as term:
        assert term is not None
        assert await term.still_leading()
        async with second.term() as refused:
            assert refused is None
        term._conn.terminate()
        assert not await term.still_leading()
        # The server ends the dead session (and frees its lock) a moment after the socket closes.
        for _ in range(50):
            async with second.term() as taken:
                if taken is not None:
                    assert await taken.still_leading()
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the lock of a dead connection was never freed")
    # Released at the end of the term: the lock is free again, and the pool is not left holding it.
    async with first.term() as again:
        assert again is not None

