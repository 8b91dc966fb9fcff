"""Clean timestamps: segments recorded from a simulated camera, and a clip cut from them, decode with no warning."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from camsim.simulator import CameraSimulator, CameraSpec
from core.db import Database
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from dvr.remux import assemble
from tests.dvr.conftest import World
from tests.dvr.harness import fast_settings, segments, start_recorder, wait_for

pytestmark = pytest.mark.integration


async def decode_warnings(path: Path) -> str:
    """What `ffmpeg -v warning -i FILE -f null -` prints: nothing for a file whose timestamps are clean."""
    process = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "warning", "-i", str(path), "-f", "null", "-",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode(errors="replace")
    return stderr.decode(errors="replace").strip()


async def test_recorded_segments_and_a_clip_decode_without_a_warning(
        settings: Settings, department_pool: asyncpg.Pool, database: Database, camera_simulator: CameraSimulator,
        world: World, tmp_path: Path) -> None:
    # bikes: 25 fps, its frames in two slices each (a keyframe used to reach the recorder as two access units).
    cam = camera_simulator.add_camera(CameraSpec("dvr-timestamps", "bikes"))
    tenant_id, site_id = await world.tenant()
    try:
        camera_id = await world.camera(cam.main_url, tenant_id=tenant_id, site_id=site_id)
        store = FilesystemObjectStore(tmp_path / "objects")
        dvr = fast_settings(tmp_path / "spool")
        rec = start_recorder(settings, dvr, database, store, [tenant_id])
        try:
            async def enough() -> bool:
                return len(await segments(department_pool, camera_id)) >= 4
            await wait_for(enough, 60, "four segments")
        finally:
            await rec.close()
    finally:
        camera_simulator.remove_camera("dvr-timestamps")

    segs = (await segments(department_pool, camera_id))[:4]
    for i, seg in enumerate(segs):
        local = tmp_path / f"segment-{i}.mp4"
        await store.download(tenant_id, seg.object_key, local, version_id=seg.version_id)
        assert await decode_warnings(local) == "", f"segment {i} ({seg.start_at:%T})"
    workdir = tmp_path / "clip"
    workdir.mkdir()
    clip = await assemble(store, dvr, tenant_id, segs[1:4], segs[1].start_at, segs[3].end_at, workdir)
    assert await decode_warnings(clip.data_path) == ""
