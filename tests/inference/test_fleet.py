"""Several detection workers share the cameras by lease: an even split, a dead worker's cameras taken within the
lease TTL, every lease given back on a clean stop."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import asyncpg
import pytest

from core.db import Database
from inference.fleet import DetectorFleet
from inference.model import CameraConfig
from tests.inference.conftest import World, add_camera

pytestmark = pytest.mark.integration

TTL_S, POLL_S = 1.5, 0.2


class Backend:
    """Records what the fleet hands it, as the portable or DeepStream backend would receive it."""

    def __init__(self) -> None:
        self.cameras: set[uuid.UUID] = set()

    def apply(self, configs: Sequence[CameraConfig]) -> None:
        self.cameras = {c.camera_id for c in configs}


async def _until(predicate: object, timeout_s: float, what: str) -> float:
    assert callable(predicate)
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout_s, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_workers_split_the_cameras_and_take_over_a_dead_ones(database: Database,
                                                                   department_pool: asyncpg.Pool,
                                                                   world: World) -> None:
    async with department_pool.acquire() as conn:
        cameras = [await add_camera(conn, world, world.tenants[i % 2], f"fleet-{i}", f"rtsp://127.0.0.1:1/{i}")
                   for i in range(4)]
    configs = [CameraConfig(camera_id=c, tenant_id=world.camera_tenant[c], name=str(c), stream_url="rtsp://x")
               for c in cameras]
    backends = [Backend(), Backend()]
    fleets = [DetectorFleet(database, b, ttl_s=TTL_S, poll_s=POLL_S) for b in backends]
    stops = [asyncio.Event(), asyncio.Event()]
    for fleet in fleets:
        fleet.apply(configs)
    tasks = [asyncio.create_task(f.run(s)) for f, s in zip(fleets, stops, strict=True)]
    try:
        # Two workers, four cameras: two each, none analysed twice, every one analysed.
        await _until(lambda: [len(b.cameras) for b in backends] == [2, 2], 10, "an even split")
        assert backends[0].cameras | backends[1].cameras == set(cameras)
        assert not backends[0].cameras & backends[1].cameras

        # The first worker dies (no lease given back): the second takes its cameras once they expire.
        tasks[0].cancel()
        took_s = await _until(lambda: backends[1].cameras == set(cameras), 10, "the survivor taking every camera")
        assert took_s <= TTL_S + 3 * POLL_S + 1.0, took_s

        # A clean stop gives every lease back at once, and the backend is left with nothing.
        stops[1].set()
        await asyncio.wait_for(tasks[1], 10)
        assert backends[1].cameras == set()
        async with department_pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM detector_leases WHERE camera_id = ANY ($1::uuid[])",
                                       cameras) == 0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_camera_removed_from_the_configuration_is_released(database: Database,
                                                                   department_pool: asyncpg.Pool,
                                                                   world: World) -> None:
    async with department_pool.acquire() as conn:
        cameras = [await add_camera(conn, world, world.tenants[0], f"gone-{i}", f"rtsp://127.0.0.1:1/{i}")
                   for i in range(2)]
    configs = [CameraConfig(camera_id=c, tenant_id=world.camera_tenant[c], name=str(c), stream_url="rtsp://x")
               for c in cameras]
    backend = Backend()
    fleet = DetectorFleet(database, backend, ttl_s=TTL_S, poll_s=POLL_S)
    fleet.apply(configs)
    await fleet.rebalance()
    assert backend.cameras == set(cameras)
    fleet.apply(configs[:1])
    assert backend.cameras == {cameras[0]}
    await fleet.rebalance()
    async with department_pool.acquire() as conn:
        holders = await conn.fetch("SELECT camera_id FROM detector_leases WHERE holder = $1", fleet.detector_id)
    assert {r["camera_id"] for r in holders} == {cameras[0]}
    stop = asyncio.Event()
    stop.set()
    await fleet.run(stop)
