"""An alert's snapshot through the API: a motive, a journal line, the dispatched-to rule for officers, 404 outside
scope, 409 when the detector stored none."""

from __future__ import annotations

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

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"


@pytest.fixture(scope="module")
async def store(app: Litestar, tmp_path_factory: pytest.TempPathFactory) -> FilesystemObjectStore:
    """The store the detector writes snapshots to; the alert service was built with the app's, replaced here."""
    created = FilesystemObjectStore(Path(tmp_path_factory.mktemp("snapshots")), presign_secret=b"test-presign",
                                    presign_base_url="http://testserver.local/media")
    app.state.services.store = created
    app.state.services.alerts.store = created
    return created


async def _alert(department_pool: asyncpg.Pool, seeded: SeedResult, *, tenant: str, camera: str,
                 snapshot_key: str | None, dispatched_to: str | None = None) -> uuid.UUID:
    alert_id = new_id()
    now = datetime.now(UTC)
    async with department_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO alerts (id, tenant_id, camera_id, site_id, insee_code, rule_type, severity, priority, "
            "source_event_id, first_seen_at, last_seen_at, sla_claim_due_at, snapshot_key, state) "
            "SELECT $1, tenant_id, id, site_id, insee_code, 'intrusion', 3, 30, $2, $3, $3, $3, $4, $5 "
            "FROM cameras WHERE id = $6", alert_id, new_id(), now - timedelta(seconds=5), snapshot_key,
            "dispatched" if dispatched_to else "new", seeded.cameras[camera])
        if dispatched_to is not None:
            await conn.execute(
                "INSERT INTO dispatches (id, tenant_id, alert_id, force_id, force_kind, urgency, ttl_s) "
                "SELECT $1, $2, $3, id, kind, 'urgent', 300 FROM forces WHERE id = $4",
                new_id(), seeded.tenants[tenant], alert_id, seeded.forces[dispatched_to])
    return alert_id


async def _journaled(department_pool: asyncpg.Pool, alert_id: uuid.UUID) -> list[asyncpg.Record]:
    async with department_pool.acquire() as conn:
        return await conn.fetch(
            "SELECT motive, actor_role, camera_id, range_start FROM access_journal "
            "WHERE action = 'media.snapshot' AND target_id = $1", str(alert_id))


async def test_an_operator_opens_the_snapshot_with_a_motive_and_it_is_journaled(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
    department_pool: asyncpg.Pool, store: FilesystemObjectStore,
) -> None:
    tenant, camera = seeded.tenants["cergy"], seeded.cameras["c4"]
    key = f"snapshots/{camera}/2026/12/03/{uuid.uuid4()}.jpg"
    await store.ensure_tenant_space(tenant)
    await store.put(tenant, key, JPEG, content_type="image/jpeg")
    alert_id = await _alert(department_pool, seeded, tenant="cergy", camera="c4", snapshot_key=key)
    operator = actors["operateur1@valdoise.demo"]

    no_motive = await client.post(f"/alerts/{alert_id}/snapshot/view", json={}, headers=operator.headers)
    assert no_motive.status_code == 400
    blank = await client.post(f"/alerts/{alert_id}/snapshot/view", json={"motive": "   "}, headers=operator.headers)
    assert blank.status_code in (400, 422), blank.text
    assert await _journaled(department_pool, alert_id) == []

    response = await client.post(f"/alerts/{alert_id}/snapshot/view", json={"motive": "levée de doute sur alerte"},
                                 headers=operator.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/jpeg")
    assert response.headers["cache-control"] == "private, no-store"
    assert response.content == JPEG
    lines = await _journaled(department_pool, alert_id)
    assert [(r["motive"], r["actor_role"], r["camera_id"]) for r in lines] == [
        ("levée de doute sur alerte", "operator", camera)]
    assert lines[0]["range_start"] is not None


async def test_no_snapshot_is_409_and_a_lost_one_journals_nothing(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
    department_pool: asyncpg.Pool, store: FilesystemObjectStore,
) -> None:
    operator = actors["operateur1@valdoise.demo"]
    motive = {"motive": "levée de doute"}
    none = await _alert(department_pool, seeded, tenant="cergy", camera="c4", snapshot_key=None)
    response = await client.post(f"/alerts/{none}/snapshot/view", json=motive, headers=operator.headers)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    lost = await _alert(department_pool, seeded, tenant="cergy", camera="c4",
                        snapshot_key=f"snapshots/{seeded.cameras['c4']}/gone.jpg")
    response = await client.post(f"/alerts/{lost}/snapshot/view", json=motive, headers=operator.headers)
    assert response.status_code == 409, response.text
    assert "no longer stored" in response.json()["detail"]
    assert await _journaled(department_pool, none) == []
    assert await _journaled(department_pool, lost) == []


async def test_officers_reach_the_snapshot_only_once_the_alert_was_sent_to_their_force(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
    department_pool: asyncpg.Pool, store: FilesystemObjectStore,
) -> None:
    tenant, camera = seeded.tenants["marines"], seeded.cameras["c7"]
    key = f"snapshots/{camera}/2026/12/03/{uuid.uuid4()}.jpg"
    await store.ensure_tenant_space(tenant)
    await store.put(tenant, key, JPEG, content_type="image/jpeg")
    sent = await _alert(department_pool, seeded, tenant="marines", camera="c7", snapshot_key=key,
                        dispatched_to="gn_marines")
    unsent = await _alert(department_pool, seeded, tenant="marines", camera="c7", snapshot_key=key)
    motive = {"motive": "intervention en cours"}
    gendarme, municipal = actors["gendarme@marines.demo"], actors["pm@marines.demo"]
    assert (await client.post(f"/alerts/{sent}/snapshot/view", json=motive,
                              headers=municipal.headers)).status_code == 404
    assert (await client.post(f"/alerts/{unsent}/snapshot/view", json=motive,
                              headers=gendarme.headers)).status_code == 404
    allowed = await client.post(f"/alerts/{sent}/snapshot/view", json=motive, headers=gendarme.headers)
    assert allowed.status_code == 200, allowed.text
    assert allowed.content == JPEG
    assert len(await _journaled(department_pool, sent)) == 1
    assert await _journaled(department_pool, unsent) == []


async def test_outside_scope_is_404_and_roles_without_images_are_403(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
    department_pool: asyncpg.Pool, store: FilesystemObjectStore,
) -> None:
    tenant, camera = seeded.tenants["cergy"], seeded.cameras["c4"]
    key = f"snapshots/{camera}/2026/12/03/{uuid.uuid4()}.jpg"
    await store.put(tenant, key, JPEG, content_type="image/jpeg")
    alert_id = await _alert(department_pool, seeded, tenant="cergy", camera="c4", snapshot_key=key)
    motive = {"motive": "curiosité"}
    # A mayor (tenant admin) administers cameras but never views images, even of their own commune.
    assert (await client.post(f"/alerts/{alert_id}/snapshot/view", json=motive,
                              headers=actors["maire@cergy.demo"].headers)).status_code == 403
    assert (await client.post(f"/alerts/{uuid.uuid4()}/snapshot/view", json=motive,
                              headers=actors["operateur1@valdoise.demo"].headers)).status_code == 404
    assert await _journaled(department_pool, alert_id) == []
