"""The recorder's view of a camera's health: recording is online, a lost camera offline, a main stream well under
the camera's profile bitrate degraded; the camera's status follows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from camsim.simulator import CameraSimulator, CameraSpec
from core.db import Database
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from tests.dvr.conftest import World
from tests.dvr.harness import fast_settings, start_recorder, wait_for

pytestmark = pytest.mark.integration


async def _health(pool: asyncpg.Pool, camera_id: object) -> tuple[str | None, str | None, str | None]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT c.status, h.state, s.state AS recorder FROM cameras c "
            "LEFT JOIN camera_health h ON h.camera_id = c.id "
            "LEFT JOIN camera_health_signals s ON s.camera_id = c.id AND s.source = 'recorder' WHERE c.id = $1",
            camera_id)
    assert row is not None
    return row["status"], row["state"], row["recorder"]


async def test_recording_offline_and_bitrate_under_the_profile_are_the_cameras_health(
        settings: Settings, department_pool: asyncpg.Pool, database: Database, camera_simulator: CameraSimulator,
        world: World, tmp_path: Path) -> None:
    cam = camera_simulator.add_camera(CameraSpec("dvr-health", "vtest"))
    tenant_id, site_id = await world.tenant()
    try:
        plain = await world.camera(cam.main_url, tenant_id=tenant_id, site_id=site_id, name="profil modeste")
        demanding = await world.camera(cam.main_url, tenant_id=tenant_id, site_id=site_id, name="profil 4K")
        async with department_pool.acquire() as conn:
            # The simulated camera sends well under 1 Mbit/s: a 50 Mbit/s profile is not met, a 16 kbit/s one is.
            await conn.execute("UPDATE cameras SET expected_bitrate_kbps = 50000 WHERE id = $1", demanding)
            await conn.execute("UPDATE cameras SET expected_bitrate_kbps = 16 WHERE id = $1", plain)
        rec = start_recorder(settings, fast_settings(tmp_path / "spool"), database,
                             FilesystemObjectStore(tmp_path / "objects"), [tenant_id])
        try:
            async def degraded() -> bool:
                return (await _health(department_pool, demanding))[1] == "degraded"
            await wait_for(degraded, 60, "the demanding camera degraded")
            assert await _health(department_pool, demanding) == ("degraded", "degraded", "degraded")
            assert await _health(department_pool, plain) == ("online", "online", "online")

            cam.kill()

            async def offline() -> bool:
                return (await _health(department_pool, plain))[1] == "offline"
            await wait_for(offline, 60, "the camera offline")
            assert (await _health(department_pool, plain))[0] == "offline"
            cam.start()

            async def back() -> bool:
                return (await _health(department_pool, plain))[1] == "online"
            await wait_for(back, 60, "the camera back online")
            await asyncio.sleep(0)
        finally:
            await rec.close()
        async with department_pool.acquire() as conn:
            states = [r["to_state"] for r in await conn.fetch(
                "SELECT to_state FROM camera_health_transitions WHERE camera_id = $1 ORDER BY at, id", plain)]
        assert states == ["online", "offline", "online"]
    finally:
        camera_simulator.remove_camera("dvr-health")
