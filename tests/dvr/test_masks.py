"""Privacy masks burnt into the recording (CSI L251-3): a masked camera's segments, and a clip cut from them, hold
uniform black inside the masks and the camera's picture outside; a mask change applies from the next segment, each
segment naming its mask version."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import asyncpg
import pytest

from camsim.simulator import CameraSimulator, CameraSpec
from core.db import Database
from core.masks import cover_filter
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from dvr.recorder import ffmpeg_command
from dvr.remux import assemble
from dvr.settings import DvrSettings
from tests.camsim_fixture import FOOTAGE_CACHE
from tests.dvr.conftest import World, authorise
from tests.dvr.harness import fast_settings, segments, start_recorder, wait_for
from tests.dvr.test_timestamps import decode_warnings
from tests.mask_check import MIN_PSNR_DB, CameraPicture, decode_rgb, judge

pytestmark = pytest.mark.integration

# An entrance (a quadrilateral that is no rectangle) and a window (a triangle).
FIRST_MASKS = [[(0.05, 0.10), (0.35, 0.05), (0.40, 0.55), (0.10, 0.60)], [(0.60, 0.15), (0.90, 0.20), (0.75, 0.45)]]
SECOND_MASKS = [[(0.50, 0.50), (0.95, 0.50), (0.95, 0.95), (0.50, 0.95)]]


def as_json(polygons: list[list[tuple[float, float]]]) -> str:
    return json.dumps([{"points": [list(p) for p in polygon]} for polygon in polygons])


async def test_masked_camera_records_masked_segments_and_clips(
        settings: Settings, department_pool: asyncpg.Pool, database: Database, camera_simulator: CameraSimulator,
        world: World, tmp_path: Path) -> None:
    cam = camera_simulator.add_camera(CameraSpec("dvr-masked", "vtest"))
    tenant_id, site_id = await world.tenant()
    camera_id = uuid.uuid4()
    async with department_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, insee_code, status, privacy_masks) "
            "VALUES ($1, $2, $3, 'masquée', $4, '95127', 'online', $5::jsonb)", camera_id, tenant_id, site_id,
            cam.main_url, as_json(FIRST_MASKS))
        await authorise(conn, tenant_id, camera_id)  # without a current authorisation nothing is recorded
        assert await conn.fetchval("SELECT privacy_masks_version FROM cameras WHERE id = $1", camera_id) == 1
    store = FilesystemObjectStore(tmp_path / "objects")
    dvr = fast_settings(tmp_path / "spool")
    try:
        rec = start_recorder(settings, dvr, database, store, [tenant_id])
        try:
            async def enough() -> bool:
                return len(await segments(department_pool, camera_id)) >= 3
            await wait_for(enough, 60, "three masked segments")
            async with department_pool.acquire() as conn:
                await conn.execute("UPDATE cameras SET privacy_masks = $2::jsonb WHERE id = $1", camera_id,
                                   as_json(SECOND_MASKS))

            async def remasked() -> bool:
                return any(s.mask_version == 2 for s in await segments(department_pool, camera_id))
            await wait_for(remasked, 30, "a segment with the new masks")
        finally:
            await rec.close()
    finally:
        camera_simulator.remove_camera("dvr-masked")

    segs = await segments(department_pool, camera_id)
    versions = [s.mask_version for s in segs]
    # Version 1 until the change, version 2 after it, never a segment without masks.
    assert versions == sorted(versions), versions
    assert set(versions) == {1, 2}, versions
    async with department_pool.acquire() as conn:
        gap_causes = await conn.fetch("SELECT cause FROM recording_gaps WHERE camera_id = $1", camera_id)
    assert [g["cause"] for g in gap_causes] in ([], ["mask_changed"])

    camera = CameraPicture(FOOTAGE_CACHE, "vtest", "main")
    first = [s for s in segs if s.mask_version == 1]
    second = [s for s in segs if s.mask_version == 2]
    for seg, polygons in ((first[1], FIRST_MASKS), (second[0], SECOND_MASKS)):
        local = tmp_path / f"{seg.id}.mp4"
        await store.download(tenant_id, seg.object_key, local, version_id=seg.version_id)
        assert await decode_warnings(local) == ""
        frames = decode_rgb(local)
        assert frames[0].shape[:2] == (576, 768), "the camera's resolution is kept"
        for frame in (frames[0], frames[len(frames) // 2], frames[-1]):
            verdict = judge(frame, polygons, camera)
            assert verdict.masked_pixels > 0
            assert verdict.leak_pixels == 0, verdict
            assert verdict.psnr_outside_db >= MIN_PSNR_DB, verdict

    workdir = tmp_path / "clip"
    workdir.mkdir()
    clip = await assemble(store, dvr, tenant_id, first[:2], first[0].start_at, first[1].end_at, workdir)
    frames = decode_rgb(clip.data_path)
    for frame in (frames[0], frames[-1]):
        verdict = judge(frame, FIRST_MASKS, camera)
        assert verdict.leak_pixels == 0, verdict
        assert verdict.psnr_outside_db >= MIN_PSNR_DB, verdict


def test_only_a_masked_camera_is_re_encoded_and_at_the_cameras_bitrate_and_gop() -> None:
    dvr = DvrSettings()
    plain = ffmpeg_command(dvr, "out_%06d.mp4", input_fd=3)
    assert plain[plain.index("-c") + 1] == "copy"
    assert "-vf" not in plain
    masks = tuple(tuple(point for point in polygon) for polygon in FIRST_MASKS)
    masked = ffmpeg_command(dvr, "out_%06d.mp4", input_fd=3, masks=masks, bitrate_kbps=2500.4)
    assert "-c" not in masked
    assert masked[masked.index("-vf") + 1] == cover_filter(masks)
    assert masked[masked.index("-c:v") + 1] == dvr.mask_encoder
    assert masked[masked.index("-b:v") + 1] == masked[masked.index("-maxrate") + 1] == "2500k"
    assert masked[masked.index("-force_key_frames") + 1] == "source"
    # Without a recorded copy to read the camera's bitrate from, the default applies.
    default = ffmpeg_command(dvr, "out_%06d.mp4", input_fd=3, masks=masks)
    assert default[default.index("-b:v") + 1] == f"{dvr.mask_default_kbps}k"
