"""No authorisation, no recording: the recorder fleet leases only cameras whose prefectoral authorisation is current,
and stops recording one whose authorisation lapses."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest

from camsim.simulator import CameraSimulator
from core.db import Database
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from tests.dvr.conftest import World
from tests.dvr.harness import fast_settings, segments, start_recorder, wait_for

pytestmark = pytest.mark.integration


async def test_only_authorised_cameras_record_and_a_lapse_stops_recording(
        settings: Settings, department_pool: asyncpg.Pool, database: Database, camera_simulator: CameraSimulator,
        world: World, tmp_path: Path) -> None:
    tenant_id, site_id = await world.tenant()
    url = camera_simulator.camera("bikes").main_url
    authorised = await world.camera(url, tenant_id=tenant_id, site_id=site_id, name="autorisée")
    unauthorised = await world.camera(url, tenant_id=tenant_id, site_id=site_id, name="sans arrêté",
                                      authorised=False)
    expired = await world.camera(url, tenant_id=tenant_id, site_id=site_id, name="arrêté expiré")
    async with department_pool.acquire() as conn:
        await conn.execute("UPDATE camera_authorisations SET valid_from = $2, valid_until = $3 WHERE camera_id = $1",
                           expired, date.today() - timedelta(days=5 * 365), date.today() - timedelta(days=2))
    rec = start_recorder(settings, fast_settings(tmp_path / "spool"), database,
                         FilesystemObjectStore(tmp_path / "objects"), [tenant_id])
    try:
        async def recording() -> bool:
            return len(await segments(department_pool, authorised)) >= 2
        await wait_for(recording, 40, "two segments of the authorised camera")
        assert set(rec.fleet.recorders) == {authorised}
        async with department_pool.acquire() as conn:
            leased = {r["camera_id"] for r in await conn.fetch(
                "SELECT camera_id FROM recorder_leases WHERE tenant_id = $1", tenant_id)}
        assert leased == {authorised}
        assert await segments(department_pool, unauthorised) == []
        assert await segments(department_pool, expired) == []

        # The authorisation ends (yesterday was its last day): the recorder stops at its next lease round.
        async with department_pool.acquire() as conn:
            await conn.execute(
                "UPDATE camera_authorisations SET valid_from = $2, valid_until = $3 WHERE camera_id = $1",
                authorised, date.today() - timedelta(days=5 * 365), date.today() - timedelta(days=2))

        async def stopped() -> bool:
            return authorised not in rec.fleet.recorders and not rec.fleet.stopping
        await wait_for(stopped, 30, "the recorder of the lapsed camera stopped")
        count = len(await segments(department_pool, authorised))
        await asyncio.sleep(5)  # more than two segment lengths: nothing more is recorded
        assert len(await segments(department_pool, authorised)) == count
        async with department_pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM recorder_leases WHERE camera_id = $1", authorised) == 0
    finally:
        await rec.close()
