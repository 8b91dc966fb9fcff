"""Evidence through the API: playback needs a motive, is journaled, and its signed link serves the recording."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.ids import new_id
from core.migrate import with_database
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def recorded(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    seeded: SeedResult,
    department_pool: asyncpg.Pool,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, object]:
    """One 10-second segment of a Cergy camera, stored and indexed as the recorder would."""
    store = FilesystemObjectStore(
        Path(tmp_path_factory.mktemp("objects")),
        presign_secret=b"test-presign",
        presign_base_url="http://testserver.local/media",
    )
    # The services were built once at start; the evidence service and the signed-link route use this store.
    services = app.state.services
    services.store = store
    services.evidence = dataclasses.replace(services.evidence, store=store)
    tenant, camera = seeded.tenants["cergy"], seeded.cameras["c4"]
    payload = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    await store.ensure_tenant_space(tenant)
    key = f"segments/{camera}/2026-11-26T10-00-00.mp4"
    stored = await store.put(tenant, key, payload, content_type="video/mp4")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    async with department_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO recording_segments (id, tenant_id, camera_id, start_at, end_at, size_bytes, sha256, "
            "object_key, version_id, recorder_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'test')",
            new_id(),
            tenant,
            camera,
            start,
            start + timedelta(seconds=10),
            len(payload),
            hashlib.sha256(payload).hexdigest(),
            key,
            stored.version_id,
        )
    return {"camera": camera, "start": start, "payload": payload}


async def test_playback_is_journaled_and_its_link_serves_the_segment(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], recorded: dict[str, object]
) -> None:
    operator, mayor = actors["operateur1@valdoise.demo"], actors["maire@cergy.demo"]
    camera, start = recorded["camera"], recorded["start"]
    assert isinstance(start, datetime)
    window = {"start": (start - timedelta(seconds=5)).isoformat(), "end": (start + timedelta(seconds=15)).isoformat()}
    no_motive = await client.post(f"/cameras/{camera}/playback", json=window, headers=operator.headers)
    assert no_motive.status_code == 400
    response = await client.post(
        f"/cameras/{camera}/playback",
        headers=operator.headers,
        json={**window, "motive": "levée de doute, appel 17 n°4512"},
    )
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert len(items) == 1
    url = items[0]["url"].removeprefix("http://testserver.local")
    served = await client.get(url)
    assert served.status_code == 200
    assert served.content == recorded["payload"]
    tampered = await client.get(url.replace("signature=", "signature=x"))
    assert tampered.status_code == 404
    lines = (await client.get(f"/journal?camera_id={camera}", headers=mayor.headers)).json()["items"]
    playback = next(line for line in lines if line["action"] == "media.playback")
    assert playback["motive"] == "levée de doute, appel 17 n°4512"
    assert playback["actor_role"] == "operator"
    assert playback["range_start"] is not None


async def test_a_mayor_cannot_play_back_and_a_camera_with_recordings_cannot_vanish(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], recorded: dict[str, object]
) -> None:
    mayor = actors["maire@cergy.demo"]
    camera = recorded["camera"]
    refused = await client.post(
        f"/cameras/{camera}/playback",
        headers=mayor.headers,
        json={"start": "2026-11-26T00:00:00Z", "end": "2026-11-26T00:01:00Z", "motive": "curiosité"},
    )
    assert refused.status_code == 403
    deleted = await client.delete(f"/cameras/{camera}", headers=mayor.headers)
    assert deleted.status_code == 409
    assert (await client.get(f"/cameras/{camera}", headers=mayor.headers)).status_code == 200


async def test_retention_above_a_month_is_refused(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    response = await client.put(
        f"/tenants/{seeded.tenants['cergy']}/retention",
        json={"tier": "event", "days": 45},
        headers=actors["maire@cergy.demo"].headers,
    )
    assert response.status_code == 422
    assert "L252-5" in response.json()["detail"]
    ok = await client.put(
        f"/tenants/{seeded.tenants['cergy']}/retention",
        json={"tier": "event", "days": 20},
        headers=actors["maire@cergy.demo"].headers,
    )
    assert ok.status_code == 204
    unknown = uuid.uuid4()
    assert (
        await client.put(
            f"/tenants/{unknown}/retention",
            json={"tier": "event", "days": 20},
            headers=actors["maire@cergy.demo"].headers,
        )
    ).status_code == 404


async def test_an_operator_goes_from_the_alert_to_its_clip_with_a_motive(
    app: Litestar, client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
    recorded: dict[str, object], department_pool: asyncpg.Pool,
) -> None:
    operator, officer = actors["operateur1@valdoise.demo"], actors["policier@cergy.demo"]
    tenant, camera = seeded.tenants["cergy"], seeded.cameras["c4"]
    store = app.state.services.store
    clip_id, attached, pending = new_id(), new_id(), new_id()
    payload = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8
    key = f"event/{camera}/{clip_id}.mp4"
    stored = await store.put(tenant, key, payload, content_type="video/mp4")
    now = datetime.now(UTC)
    async with department_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO clips (id, tenant_id, camera_id, alert_id, start_at, end_at, object_key, version_id, sha256, "
            "size_bytes, source_segments) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '[]')",
            clip_id, tenant, camera, attached, now - timedelta(seconds=20), now, key, stored.version_id,
            hashlib.sha256(payload).hexdigest(), len(payload))
        for alert_id, clip, status in ((attached, clip_id, "attached"), (pending, None, "pending")):
            await conn.execute(
                "INSERT INTO alerts (id, tenant_id, camera_id, site_id, insee_code, rule_type, severity, priority, "
                "source_event_id, first_seen_at, last_seen_at, sla_claim_due_at, clip_id, clip_status) "
                "SELECT $1, tenant_id, id, site_id, insee_code, 'intrusion', 3, 30, $2, $3, $3, $3, $4, $5 "
                "FROM cameras WHERE id = $6", alert_id, new_id(), now - timedelta(seconds=10), clip, status, camera)

    detail = (await client.get(f"/alerts/{attached}", headers=operator.headers)).json()["alert"]
    assert (detail["clip_status"], detail["clip_id"]) == ("attached", str(clip_id))
    motive = {"motive": "levée de doute sur signalement"}
    no_motive = await client.post(f"/alerts/{attached}/clip/view", json={}, headers=operator.headers)
    assert no_motive.status_code == 400
    response = await client.post(f"/alerts/{attached}/clip/view", json=motive, headers=operator.headers)
    assert response.status_code == 200, response.text
    served = await client.get(response.json()["url"].removeprefix("http://testserver.local"))
    assert served.content == payload
    assert response.json()["sha256"] == hashlib.sha256(payload).hexdigest()
    async with department_pool.acquire() as conn:
        journaled = await conn.fetch(
            "SELECT motive FROM access_journal WHERE action = 'media.clip' AND target_id = $1", str(clip_id))
    assert [r["motive"] for r in journaled] == [motive["motive"]]

    waiting = await client.post(f"/alerts/{pending}/clip/view", json=motive, headers=operator.headers)
    assert waiting.status_code == 409
    assert "still being cut" in waiting.json()["detail"]
    # An officer reaches an alert's clip only once the alert was sent to their force.
    assert (await client.post(f"/alerts/{attached}/clip/view", json=motive,
                              headers=officer.headers)).status_code == 404


async def _marines_clip(store: FilesystemObjectStore, department_pool: asyncpg.Pool, seeded: SeedResult,
                        dispatched_to: str) -> tuple[uuid.UUID, uuid.UUID, bytes]:
    """A clip of a Marines alert that an operator dispatched to one force: (alert, clip, bytes)."""
    tenant, camera = seeded.tenants["marines"], seeded.cameras["c7"]
    alert_id, clip_id = new_id(), new_id()
    payload = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 4
    await store.ensure_tenant_space(tenant)
    stored = await store.put(tenant, f"event/{camera}/{clip_id}.mp4", payload, content_type="video/mp4")
    now = datetime.now(UTC)
    async with department_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO clips (id, tenant_id, camera_id, alert_id, start_at, end_at, object_key, version_id, sha256, "
            "size_bytes, source_segments) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '[]')",
            clip_id, tenant, camera, alert_id, now - timedelta(seconds=20), now, stored.key, stored.version_id,
            stored.sha256, len(payload))
        await conn.execute(
            "INSERT INTO alerts (id, tenant_id, camera_id, site_id, insee_code, rule_type, severity, priority, "
            "source_event_id, first_seen_at, last_seen_at, sla_claim_due_at, clip_id, clip_status, state) "
            "SELECT $1, tenant_id, id, site_id, insee_code, 'intrusion', 3, 30, $2, $3, $3, $3, $4, 'attached', "
            "'dispatched' FROM cameras WHERE id = $5", alert_id, new_id(), now - timedelta(seconds=10), clip_id, camera)
        await conn.execute(
            "INSERT INTO dispatches (id, tenant_id, alert_id, force_id, force_kind, urgency, ttl_s) "
            "SELECT $1, $2, $3, id, kind, 'urgent', 300 FROM forces WHERE id = $4",
            new_id(), tenant, alert_id, seeded.forces[dispatched_to])
    return alert_id, clip_id, payload


async def test_an_officer_of_another_force_cannot_open_a_clip_by_its_id(
    app: Litestar, client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
    recorded: dict[str, object], department_pool: asyncpg.Pool,
) -> None:
    """Issue 11 item 4: POST /clips/{id}/view applies the rule of POST /alerts/{id}/clip/view. The alert went to the
    gendarmerie; Marines' municipal police covers the same commune (its scope includes the clip's row), yet the clip
    is not theirs to open."""
    gendarme, municipal = actors["gendarme@marines.demo"], actors["pm@marines.demo"]
    alert_id, clip_id, payload = await _marines_clip(app.state.services.store, department_pool, seeded, "gn_marines")
    motive = {"motive": "intervention en cours"}
    by_alert = await client.post(f"/alerts/{alert_id}/clip/view", json=motive, headers=municipal.headers)
    by_id = await client.post(f"/clips/{clip_id}/view", json=motive, headers=municipal.headers)
    assert (by_alert.status_code, by_id.status_code) == (404, 404), by_id.text
    allowed = await client.post(f"/clips/{clip_id}/view", json=motive, headers=gendarme.headers)
    assert allowed.status_code == 201, allowed.text
    served = await client.get(allowed.json()["url"].removeprefix("http://testserver.local"))
    assert served.content == payload
    async with department_pool.acquire() as conn:
        viewers = await conn.fetch(
            "SELECT actor_user_id FROM access_journal WHERE action = 'media.clip' AND target_id = $1", str(clip_id))
    assert len(viewers) == 1  # the refused attempt journaled nothing


async def test_media_links_stream_from_the_store_instead_of_loading_the_object(
    app: Litestar, client: AsyncTestClient[Litestar], actors: dict[str, Actor], recorded: dict[str, object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 11 item 10: /media reads the object in chunks (ObjectReader), never whole through `get`."""
    store = app.state.services.store

    async def whole_object(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("/media loaded a whole object into memory")

    monkeypatch.setattr(store, "get", whole_object)
    operator = actors["operateur1@valdoise.demo"]
    camera, start = recorded["camera"], recorded["start"]
    assert isinstance(start, datetime)
    window = {"start": (start - timedelta(seconds=5)).isoformat(), "end": (start + timedelta(seconds=15)).isoformat(),
              "motive": "relecture après signalement"}
    response = await client.post(f"/cameras/{camera}/playback", json=window, headers=operator.headers)
    assert response.status_code == 201, response.text
    served = await client.get(response.json()["items"][0]["url"].removeprefix("http://testserver.local"))
    assert served.status_code == 200
    assert served.content == recorded["payload"]
    assert served.headers["content-length"] == str(len(recorded["payload"]))  # type: ignore[arg-type]


async def test_an_export_is_a_job_refused_past_the_size_cap_and_its_status_readable(
    app: Litestar, client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
    recorded: dict[str, object],
) -> None:
    """Issue 11 item 10: POST .../exports queues a job (202, journaled with its motive); GET /export-jobs/{id} reads
    its status; a requisition whose recordings exceed the cap is refused up front with a clear 422."""
    supervisor, operator = actors["superviseur@valdoise.demo"], actors["operateur1@valdoise.demo"]
    start = recorded["start"]
    assert isinstance(start, datetime)
    requisition = await client.post("/requisitions", headers=supervisor.headers, json={
        "procedure_number": f"PV {uuid.uuid4().hex[:8]}", "legal_frame": "flagrance", "opj_name": "Lt. Morel",
        "opj_service": "Commissariat de Cergy", "camera_ids": [str(recorded["camera"])],
        "start": (start - timedelta(seconds=5)).isoformat(), "end": (start + timedelta(seconds=15)).isoformat(),
        "received_at": datetime.now(UTC).isoformat()})
    assert requisition.status_code == 201, requisition.text
    url = f"/requisitions/{requisition.json()['id']}/exports"
    motive = {"motive": "transmission au parquet"}
    queued = await client.post(url, json=motive, headers=supervisor.headers)
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert (job["status"], job["estimated_bytes"]) == ("queued", len(recorded["payload"]))  # type: ignore[arg-type]
    status = await client.get(f"/export-jobs/{job['id']}", headers=supervisor.headers)
    assert status.status_code == 200
    assert status.json()["status"] == "queued"
    assert (await client.get(f"/export-jobs/{job['id']}", headers=operator.headers)).status_code == 403
    exports = [x for x in (await client.get(f"/journal?tenant_id={seeded.tenants['cergy']}&limit=200",
                                            headers=supervisor.headers)).json()["items"]
               if x["action"] == "media.export" and x["target_id"] == job["id"]]
    assert [x["motive"] for x in exports] == ["transmission au parquet"]

    services = app.state.services
    original = services.evidence
    services.evidence = dataclasses.replace(
        original, settings=original.settings.model_copy(update={"export_max_bytes": 1000}))
    try:
        refused = await client.post(url, json=motive, headers=supervisor.headers)
    finally:
        services.evidence = original
    assert refused.status_code == 422, refused.text
    assert "above the" in refused.json()["detail"]
    assert "shorter intervals" in refused.json()["detail"]


async def test_the_signing_key_is_provisioned_by_a_command_never_by_the_public_route(
    client: AsyncTestClient[Litestar], settings: Settings,
) -> None:
    """Issue 11 item 16: GET /evidence/signing-key only reads the export key (503 until `vigie evidence init-key`
    provisioned it); the command creates it once."""
    admin = await asyncpg.connect(with_database(settings.database.admin_dsn.get_secret_value(),
                                                settings.database.name))
    try:
        saved = await admin.fetch("SELECT * FROM export_signing_keys")
        await admin.execute("DELETE FROM export_signing_keys")
        missing = await client.get("/evidence/signing-key")
        assert missing.status_code == 503, missing.text
        assert "vigie evidence init-key" in missing.json()["detail"]
        assert await admin.fetchval("SELECT count(*) FROM export_signing_keys") == 0  # the GET created nothing
        code, output = await asyncio.to_thread(vigie, settings, "evidence", "init-key")
        assert code == 0, output
        assert "export key ed25519:" in output
        assert "created" in output
        again = await asyncio.to_thread(vigie, settings, "evidence", "init-key")
        assert again[0] == 0
        assert "already provisioned" in again[1]
        served = await client.get("/evidence/signing-key")
        assert served.status_code == 200
        stored = await admin.fetchval("SELECT public_key FROM export_signing_keys WHERE purpose = 'export'")
        assert served.text.encode() == bytes(stored)
    finally:
        if saved:
            await admin.execute("DELETE FROM export_signing_keys")
            for row in saved:
                await admin.execute(
                    f"INSERT INTO export_signing_keys ({', '.join(row.keys())}) "
                    f"VALUES ({', '.join(f'${i}' for i in range(1, len(row) + 1))})", *row.values())
        await admin.close()


def vigie(settings: Settings, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The `vigie` command as an operator runs it, against the test database."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "vigie"), *args],
        env={**os.environ, "VIGIE_DATABASE__NAME": settings.database.name, **(env or {})},
        capture_output=True, text=True, timeout=120, check=False,
    )
    return result.returncode, result.stdout + result.stderr
