"""A camera's credentials reach ffmpeg through a pipe: the recorder records a camera that requires them while no
process's command line holds the password, and a refused password is reported without it."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import msgspec
import pytest

from camsim.simulator import CameraSimulator, CameraSpec
from core.crypto import CAMERA_CREDENTIALS, SecretBox
from core.db import Database
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from dvr.repository import DvrRepository
from tests.dvr.conftest import World, authorise
from tests.dvr.harness import fast_settings, segments, start_recorder, wait_for

pytestmark = pytest.mark.integration

PASSWORD = "s3cr3t-pa55"


def _command_lines() -> list[str]:
    """Every process's command line on this machine, as `ps` shows them to any user."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return lines


async def _camera_with_credentials(pool: asyncpg.Pool, world: World, settings: Settings, url: str,
                                   password: str) -> tuple[uuid.UUID, uuid.UUID]:
    tenant_id, site_id = await world.tenant()
    camera_id = uuid.uuid4()
    sealed = SecretBox(settings.data_key.get_secret_value()).seal(
        msgspec.json.encode({"username": "rec", "password": password}), column=CAMERA_CREDENTIALS, row_id=camera_id)
    await pool.execute(
        "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, credentials_sealed, insee_code, status) "
        "VALUES ($1, $2, $3, $4, $5, $6, '95127', 'online')", camera_id, tenant_id, site_id,
        f"cam-{camera_id.hex[:8]}", url, sealed)
    async with pool.acquire() as conn:
        await authorise(conn, tenant_id, camera_id)
    return tenant_id, camera_id


async def test_the_recorder_records_a_protected_camera_without_its_password_on_any_command_line(
        settings: Settings, department_pool: asyncpg.Pool, database: Database, camera_simulator: CameraSimulator,
        world: World, tmp_path: Path) -> None:
    cam = camera_simulator.add_camera(CameraSpec("dvr-protected", "vtest", username="rec", password=PASSWORD))
    try:
        tenant_id, camera_id = await _camera_with_credentials(department_pool, world, settings, cam.main_url,
                                                              PASSWORD)
        rec = start_recorder(settings, fast_settings(tmp_path / "spool"), database,
                             FilesystemObjectStore(tmp_path / "objects"), [tenant_id])
        try:
            seen: list[str] = []

            async def recording() -> bool:
                seen.extend(line for line in _command_lines() if "ffmpeg" in line and "concat" in line)
                return len(await segments(department_pool, camera_id)) >= 2
            await wait_for(recording, 40, "two segments of the protected camera")
        finally:
            await rec.close()
    finally:
        camera_simulator.remove_camera("dvr-protected")
    assert seen, "the recorder's ffmpeg was never seen running"
    assert not [line for line in seen if PASSWORD in line or str(cam.port) in line]


async def test_a_refused_password_is_reported_without_it(
        settings: Settings, department_pool: asyncpg.Pool, database: Database, camera_simulator: CameraSimulator,
        world: World, tmp_path: Path) -> None:
    cam = camera_simulator.add_camera(CameraSpec("dvr-wrong-password", "vtest", username="rec", password=PASSWORD))
    wrong = "wr0ng-guess"
    try:
        tenant_id, camera_id = await _camera_with_credentials(department_pool, world, settings, cam.main_url, wrong)
        rec = start_recorder(settings, fast_settings(tmp_path / "spool"), database,
                             FilesystemObjectStore(tmp_path / "objects"), [tenant_id])
        try:
            async def reported() -> bool:
                async with department_pool.acquire() as conn:
                    health = await DvrRepository().health(conn, camera_id)
                return health is not None and health["state"] == "offline"
            await wait_for(reported, 40, "the camera reported offline")
        finally:
            await rec.close()
    finally:
        camera_simulator.remove_camera("dvr-wrong-password")
    async with department_pool.acquire() as conn:
        texts = [str(dict(r)) for r in await conn.fetch(
            "SELECT * FROM recording_health WHERE camera_id = $1", camera_id)]
        texts += [str(dict(r)) for r in await conn.fetch(
            "SELECT * FROM recording_gaps WHERE camera_id = $1", camera_id)]
    texts += [repr(e) for e in rec.events]
    assert any("401" in t or "Unauthorized" in t or "rtsp://" in t for t in texts), texts
    assert not [t for t in texts if wrong in t], texts
