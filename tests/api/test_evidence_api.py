"""Evidence through the API: playback needs a motive, is journaled, and its signed link serves the recording."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.ids import new_id
from core.objectstore import FilesystemObjectStore
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
