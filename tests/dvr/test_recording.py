"""Recording from real RTSP cameras: segments indexed with their hashes, outages leave exact gap rows."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from camsim.simulator import CameraSimulator, CameraSpec
from core.db import Database
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from dvr.events import RecordingGapDetected, RecordingInterrupted, RecordingResumed
from dvr.metrics import RecorderCollector
from dvr.repository import DvrRepository
from tests.dvr.conftest import World
from tests.dvr.harness import fast_settings, object_sha256, segments, start_recorder, wait_for

pytestmark = pytest.mark.integration


async def test_camera_outage_is_a_gap_and_recording_resumes(
        settings: Settings, department_pool: asyncpg.Pool, database: Database, camera_simulator: CameraSimulator,
        world: World, tmp_path: Path) -> None:
    cam = camera_simulator.add_camera(CameraSpec("dvr-outage", "vtest"))
    tenant_id, site_id = await world.tenant()
    try:
        camera_id = await world.camera(cam.main_url, tenant_id=tenant_id, site_id=site_id)
        store = FilesystemObjectStore(tmp_path / "objects")
        dvr = fast_settings(tmp_path / "spool")
        rec = start_recorder(settings, dvr, database, store, [tenant_id])
        # What `python -m dvr` serves on /metrics, sampled through the run.
        metrics = CollectorRegistry()
        metrics.register(RecorderCollector(rec.fleet, rec.uploader))
        lag_count = REGISTRY.get_sample_value("vigie_dvr_upload_lag_seconds_count") or 0.0
        offline_seen: list[float] = []

        async def sample_offline() -> None:
            while True:
                offline_seen.append(metrics.get_sample_value("vigie_dvr_cameras_offline") or 0.0)
                await asyncio.sleep(0.1)
        sampler = asyncio.create_task(sample_offline())
        try:
            async def enough() -> bool:
                return len(await segments(department_pool, camera_id)) >= 3
            await wait_for(enough, 40, "three segments")
            killed_at = datetime.now(UTC)
            cam.kill()
            await asyncio.sleep(4)
            cam.start()
            back_at = datetime.now(UTC)

            async def resumed() -> bool:
                return any(s.start_at > back_at for s in await segments(department_pool, camera_id))
            await wait_for(resumed, 30, "a segment after the camera came back")
            assert metrics.get_sample_value("vigie_dvr_cameras_recording") == 1
            assert metrics.get_sample_value("vigie_dvr_cameras_offline") == 0
            assert (metrics.get_sample_value("vigie_dvr_segments_uploaded_total") or 0) >= 4
            assert (REGISTRY.get_sample_value("vigie_dvr_upload_lag_seconds_count") or 0) >= lag_count + 4
        finally:
            sampler.cancel()
            await rec.close()
    finally:
        camera_simulator.remove_camera("dvr-outage")

    segs = await segments(department_pool, camera_id)
    before = [s for s in segs if s.end_at <= killed_at]
    after = [s for s in segs if s.start_at >= back_at]
    assert len(before) >= 2
    # One run's segments are contiguous: no hole between consecutive segments.
    for a, b in itertools.pairwise(before):
        assert abs((b.start_at - a.end_at).total_seconds()) < 0.5
    for s in segs:
        assert await object_sha256(store, tenant_id, s) == s.sha256
        # The index knows where each segment's init section ends: HLS playback serves it apart from the fragments.
        stored = await store.get(tenant_id, s.object_key, version_id=s.version_id)
        assert s.init_size is not None
        assert stored[s.init_size + 4:s.init_size + 8] == b"moof"
    resume_s = (after[0].start_at - back_at).total_seconds()
    assert resume_s < 5.0, f"recording resumed {resume_s:.1f} s after the camera came back"

    async with department_pool.acquire() as conn:
        gaps = await DvrRepository().gaps_between(conn, camera_id, segs[0].start_at, segs[-1].end_at)
        health = await DvrRepository().health(conn, camera_id)
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.cause.value == "camera_unreachable"
    # The gap spans the outage to within one segment on either side.
    assert abs((gap.start_at - killed_at).total_seconds()) <= dvr.segment_s + 0.5
    assert abs((gap.end_at - back_at).total_seconds()) <= dvr.segment_s + 5.0
    assert gap.end_at == after[0].start_at
    kinds = [type(e) for e in rec.events]
    assert RecordingInterrupted in kinds
    # The camera-offline alert's gauge saw the outage.
    assert max(offline_seen) == 1
    assert RecordingResumed in kinds
    assert any(isinstance(e, RecordingGapDetected) and e.start_at == gap.start_at for e in rec.events)
    assert health is not None
    # Nothing stays behind in the spool once uploaded and indexed.
    assert list((tmp_path / "spool").rglob("*.mp4")) == []
