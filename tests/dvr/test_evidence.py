"""Evidence on real recordings: alert clips, retention sweeps with proof, requisitions with legal holds,
signed exports, journaled playback, and tenant isolation."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from camsim.simulator import CameraSimulator
from core.crypto import SecretBox
from core.db import Database
from core.errors import NotFound
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from core.tenancy import Role
from dvr.errors import NotRecorded, RetentionAboveCap
from dvr.export import verify_package
from dvr.model import LegalFrame, Segment, Tier
from dvr.retention import RetentionService
from dvr.service import EvidenceService
from journal.errors import MotiveRequired
from tests.dvr.conftest import World
from tests.dvr.harness import fast_settings, segments, start_recorder, wait_for

pytestmark = pytest.mark.integration


@dataclass
class Recorded:
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    store: FilesystemObjectStore
    segments: list[Segment]
    service: EvidenceService


@pytest.fixture(scope="module")
async def recorded(settings: Settings, department_pool: asyncpg.Pool, database: Database,
                   camera_simulator: CameraSimulator, world: World,
                   tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """About ten seconds of the shared 'bikes' camera, recorded once for every test of this module."""
    root = tmp_path_factory.mktemp("evidence")
    tenant_id, site_id = await world.tenant()
    camera_id = await world.camera(camera_simulator.camera("bikes").main_url, tenant_id=tenant_id, site_id=site_id,
                                   name="Parvis gare")
    store = FilesystemObjectStore(root / "objects", presign_secret=b"s" * 32, presign_base_url="http://x/media")
    dvr = fast_settings(root / "spool")
    rec = start_recorder(settings, dvr, database, store, [tenant_id])
    try:
        async def enough() -> bool:
            return len(await segments(department_pool, camera_id)) >= 5
        await wait_for(enough, 60, "five segments")
    finally:
        await rec.close()
    service = EvidenceService(db=database, store=store, settings=dvr,
                              secret_box=SecretBox(settings.data_key.get_secret_value()))
    return Recorded(tenant_id, camera_id, store, await segments(department_pool, camera_id), service)


async def test_alert_clip_is_remuxed_from_the_segments_and_idempotent(recorded: Recorded) -> None:
    segs = recorded.segments
    at = segs[1].end_at
    alert_id = uuid.uuid4()
    clip = await recorded.service.clip_for_alert(recorded.tenant_id, alert_id, recorded.camera_id, at,
                                                 pre_s=2.0, post_s=2.0)
    again = await recorded.service.clip_for_alert(recorded.tenant_id, alert_id, recorded.camera_id, at,
                                                  pre_s=2.0, post_s=2.0)
    assert again.id == clip.id
    assert clip.start_at >= segs[0].start_at
    assert clip.end_at <= segs[-1].end_at
    data = await recorded.store.get(recorded.tenant_id, clip.object_key, version_id=clip.version_id)
    assert data[4:8] == b"ftyp"  # an MP4, remuxed, not a copy of one segment
    sizes = {s.size_bytes for s in segs}
    assert len(data) not in sizes


async def test_clip_outside_recorded_intervals_is_refused(recorded: Recorded) -> None:
    long_ago = recorded.segments[0].start_at - timedelta(hours=3)
    with pytest.raises(NotRecorded):
        await recorded.service.clip_for_alert(recorded.tenant_id, uuid.uuid4(), recorded.camera_id, long_ago)


async def test_playback_needs_a_motive_and_is_journaled(recorded: Recorded, world: World,
                                                        database: Database) -> None:
    principal = world.principal(tenants={recorded.tenant_id})
    start, end = recorded.segments[0].start_at, recorded.segments[-1].end_at
    with pytest.raises(MotiveRequired):
        await recorded.service.playback(principal, recorded.camera_id, start, end, motive="  ")
    playback = await recorded.service.playback(principal, recorded.camera_id, start, end,
                                               motive="vérification d'un signalement")
    assert [i.sha256 for i in playback.items] == [s.sha256 for s in recorded.segments]
    assert all(i.url.startswith("http://x/media/") for i in playback.items)
    async with database.for_tenants([recorded.tenant_id]) as conn:
        rows = await conn.fetch("SELECT action, motive, camera_id FROM access_journal WHERE camera_id = $1",
                                recorded.camera_id)
    assert [(r["action"], r["motive"]) for r in rows] == [("media.playback", "vérification d'un signalement")]


async def test_foreign_tenant_sees_no_camera(recorded: Recorded, world: World) -> None:
    stranger = world.principal(tenants={world.tenant_id})
    now = datetime.now(UTC)
    with pytest.raises(NotFound):
        await recorded.service.playback(stranger, recorded.camera_id, now - timedelta(minutes=5), now,
                                        motive="curiosité")
    with pytest.raises(NotFound):
        await recorded.service.register_requisition(
            stranger, procedure_number="2026/999", legal_frame=LegalFrame.FLAGRANCE, opj_name="OPJ X",
            opj_service="Commissariat", camera_ids=[recorded.camera_id], start=now - timedelta(minutes=5), end=now,
            received_at=now)


async def test_retention_request_above_the_cap_is_refused(recorded: Recorded, world: World) -> None:
    admin = world.principal(role=Role.TENANT_ADMIN, tenants={recorded.tenant_id})
    with pytest.raises(RetentionAboveCap):
        await recorded.service.set_retention(admin, recorded.tenant_id, Tier.CONTINUOUS, 31)


async def test_requisition_holds_export_and_retention_with_proof(
        recorded: Recorded, world: World, department_pool: asyncpg.Pool, database: Database,
        tmp_path: Path) -> None:
    segs = recorded.segments
    held_segs, free_segs = segs[:2], segs[2:]
    principal = world.principal(tenants={recorded.tenant_id})
    req = await recorded.service.register_requisition(
        principal, procedure_number="PV 2026/00042", legal_frame=LegalFrame.ENQUETE_PRELIMINAIRE,
        opj_name="Lt. Martin", opj_service="Commissariat de Cergy", camera_ids=[recorded.camera_id],
        start=held_segs[0].start_at, end=held_segs[-1].end_at - timedelta(milliseconds=1),
        received_at=datetime.now(UTC))
    for s in held_segs:
        assert (await recorded.store.stat(recorded.tenant_id, s.object_key, version_id=s.version_id)).legal_hold
    assert not (await recorded.store.stat(recorded.tenant_id, free_segs[-1].object_key,
                                          version_id=free_segs[-1].version_id)).legal_hold

    # Signed export of the requisition verifies offline against the published key.
    result = await recorded.service.create_export(principal, req.id, motive="réquisition judiciaire")
    package = await recorded.store.get(recorded.tenant_id, result.object_key, version_id=result.version_id)
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    public = load_pem_public_key(await recorded.service.signing_public_key())
    verified = verify_package(package, public)  # type: ignore[arg-type]
    assert verified.manifest["requisition"]["procedure_number"] == "PV 2026/00042"
    assert verified.manifest["exported_by"]["name"] == "Agent Test"
    sources = verified.manifest["files"][0]["source_segments"]
    assert [s["sha256"] for s in sources] == [s.sha256 for s in held_segs]
    await recorded.service.record_transmission(principal, result.id, transmitted_at=datetime.now(UTC),
                                               recipient="Parquet de Pontoise")

    # Forty days later: the sweeper destroys everything not held, registering each recording.
    sweeper = RetentionService(db=database, store=recorded.store)
    later = datetime.now(UTC) + timedelta(days=40)
    async with department_pool.acquire() as conn:
        holds = await conn.fetch("SELECT recording_type, recording_id FROM legal_holds WHERE requisition_id = $1",
                                 req.id)
    # The segments of the interval and any alert clip overlapping it are held.
    assert {r["recording_id"] for r in holds if r["recording_type"] == "segment"} == {s.id for s in held_segs}
    report = await sweeper.sweep(now=later)
    assert report.held_skipped == len(holds)
    assert report.destroyed >= len(free_segs)
    async with database.for_tenants([recorded.tenant_id]) as conn:
        register = await conn.fetch("SELECT recording_id, sha256, method, retention_days FROM destruction_register "
                                    "WHERE camera_id = $1", recorded.camera_id)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM destruction_register WHERE camera_id = $1", recorded.camera_id)
    destroyed = {r["recording_id"]: r for r in register}
    for s in free_segs:
        assert destroyed[s.id]["sha256"] == s.sha256
        assert destroyed[s.id]["method"] == "retention_sweeper"
        assert destroyed[s.id]["retention_days"] == 30
    remaining = await recorded.store.list_versions(recorded.tenant_id, f"continuous/{recorded.camera_id}/")
    assert sorted(v.version_id for v in remaining) == sorted(s.version_id or "" for s in held_segs)

    # Release: the held recordings fall back under retention and go at the next sweep, with their proof.
    await recorded.service.release_requisition(principal, req.id, reason="classement sans suite")
    await asyncio.sleep(0)
    report = await sweeper.sweep(now=later)
    assert report.held_skipped == 0
    assert await recorded.store.list_versions(recorded.tenant_id, f"continuous/{recorded.camera_id}/") == []
    async with department_pool.acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM destruction_register WHERE camera_id = $1",
                                    recorded.camera_id)
        transmitted = await conn.fetchval("SELECT recipient FROM export_transmissions WHERE export_id = $1",
                                          result.id)
    assert count >= len(segs)
    assert transmitted == "Parquet de Pontoise"
