"""The mayor's portal API: a commune's dashboard (availability measured from recorded health, open tickets) and the
journal of accesses to its images; each scoped to the caller's tenants (another mayor gets 404, finance 403)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.ids import new_id
from core.settings import Settings
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration

PARIS = ZoneInfo("Europe/Paris")
MARINES, CERGY = "maire@marines.demo", "maire@cergy.demo"
OPERATOR, FINANCE = "operateur1@valdoise.demo", "finances@valdoise.demo"


@pytest.fixture
async def marines_camera(seeded: SeedResult, department_pool: asyncpg.Pool,
                         api_settings: Settings) -> AsyncIterator[uuid.UUID]:
    """A camera of Marines on the market square's site, with a February of known health, taken out afterwards."""
    camera = new_id()
    tenant = seeded.tenants["marines"]
    async with department_pool.acquire() as conn:
        site = await conn.fetchval("SELECT site_id FROM cameras WHERE id = $1", seeded.cameras["c7"])
        await conn.execute(
            "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, insee_code, status) "
            "SELECT $1, $2, $3, $4, 'rtsp://10.0.0.9/main', insee_code, 'online' FROM sites WHERE id = $3",
            camera, tenant, site, f"Halle-{camera.hex[:6]}")
        # Online from 10 February, offline six hours on the 11th, online until 1 March, offline since.
        for at, state in ((datetime(2026, 2, 10, tzinfo=PARIS), "online"),
                          (datetime(2026, 2, 11, tzinfo=PARIS), "offline"),
                          (datetime(2026, 2, 11, 6, tzinfo=PARIS), "online"),
                          (datetime(2026, 3, 1, tzinfo=PARIS), "offline")):
            await conn.execute("INSERT INTO camera_health_transitions (tenant_id, camera_id, to_state, at, "
                               "published_at) VALUES ($1, $2, $3, $4, now())", tenant, camera, state, at)
        await conn.execute("INSERT INTO camera_health (tenant_id, camera_id, state, since) "
                           "VALUES ($1, $2, 'offline', $3)", tenant, camera, datetime(2026, 3, 1, tzinfo=PARIS))
        await conn.execute(
            "INSERT INTO maintenance_tickets (id, tenant_id, camera_id, health_state, outage_since) "
            "VALUES ($1, $2, $3, 'offline', $4)", new_id(), tenant, camera, datetime(2026, 3, 1, tzinfo=PARIS))
    yield camera
    owner = await asyncpg.connect(api_settings.database.owner_dsn)
    try:
        await owner.execute("DELETE FROM maintenance_tickets WHERE camera_id = $1", camera)
        await owner.execute("DELETE FROM camera_health WHERE camera_id = $1", camera)
        await owner.execute("DELETE FROM cameras WHERE id = $1", camera)
    finally:
        await owner.close()


async def test_the_dashboard_measures_availability_from_recorded_health(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, marines_camera: uuid.UUID,
) -> None:
    marines = seeded.tenants["marines"]
    response = await client.get(f"/tenants/{marines}/dashboard", params={"month": "2026-02"},
                                headers=actors[MARINES].headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tenant_name"], body["first_day"], body["last_day"]) == ("Marines", "2026-02-01", "2026-02-28")
    cameras = {c["camera_id"]: c for c in body["cameras"]}
    assert {seeded.cameras["c6"], seeded.cameras["c7"]} <= {uuid.UUID(c) for c in cameras}
    assert not {seeded.cameras["c4"], seeded.cameras["c5"]} & {uuid.UUID(c) for c in cameras}
    mine = cameras[str(marines_camera)]
    # 10 to 28 February observed (19 days), six hours of it offline.
    assert mine["observed_s"] == pytest.approx(19 * 86400)
    assert mine["available_s"] == pytest.approx(19 * 86400 - 6 * 3600)
    assert mine["availability"] == 98.68
    assert (mine["health_state"], mine["open_tickets"], mine["site_name"]) == ("offline", 1, "Place du marché")
    # The seeded cameras' health began with this platform, long after February: nothing observed, nothing claimed.
    assert cameras[str(seeded.cameras["c6"])]["availability"] is None
    assert body["availability"] == 98.68


async def test_the_dashboard_refuses_other_tenants_roles_and_months(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
) -> None:
    marines = seeded.tenants["marines"]
    foreign = await client.get(f"/tenants/{marines}/dashboard", headers=actors[CERGY].headers)
    assert foreign.status_code == 404
    assert (await client.get(f"/tenants/{marines}/dashboard", headers=actors[FINANCE].headers)).status_code == 403
    assert (await client.get(f"/tenants/{marines}/dashboard", headers=actors[OPERATOR].headers)).status_code == 403
    malformed = await client.get(f"/tenants/{marines}/dashboard", params={"month": "2026-13"},
                                 headers=actors[MARINES].headers)
    assert malformed.status_code == 400
    future = await client.get(f"/tenants/{marines}/dashboard", params={"month": "2999-01"},
                              headers=actors[MARINES].headers)
    assert future.status_code == 422
    assert future.headers["content-type"].startswith("application/problem+json")
    assert future.json()["field"] == "month"
    current = await client.get(f"/tenants/{marines}/dashboard", headers=actors[MARINES].headers)
    today = datetime.now(PARIS).date()
    assert (current.json()["month"], current.json()["last_day"]) == (f"{today:%Y-%m}", today.isoformat())


async def test_the_mayor_reads_who_viewed_her_cameras_and_why(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
) -> None:
    marines, camera = seeded.tenants["marines"], seeded.cameras["c6"]
    motive = f"levée de doute, appel 17 n°{uuid.uuid4().hex[:6]}"
    viewed = await client.post(f"/cameras/{camera}/live", headers=actors[OPERATOR].headers,
                               json={"motive": motive, "stream": "sub"})
    assert viewed.status_code == 201, viewed.text
    response = await client.get(f"/tenants/{marines}/image-accesses", headers=actors[MARINES].headers)
    assert response.status_code == 200, response.text
    lines = response.json()["items"]
    line = next(item for item in lines if item["motive"] == motive)
    assert (line["action"], line["actor_name"], line["actor_role"]) == ("media.live", "Inès Opératrice", "operator")
    assert (line["camera_id"], line["camera_name"]) == (str(camera), "Porte de la mairie")
    assert all(item["action"].startswith("media.") for item in lines)
    filtered = await client.get(f"/tenants/{marines}/image-accesses", params={"camera_id": str(seeded.cameras["c7"])},
                                headers=actors[MARINES].headers)
    assert motive not in {item["motive"] for item in filtered.json()["items"]}
    # Cergy's mayor neither reads Marines' accesses nor finds them among her own.
    assert (await client.get(f"/tenants/{marines}/image-accesses", headers=actors[CERGY].headers)).status_code == 404
    own = await client.get(f"/tenants/{seeded.tenants['cergy']}/image-accesses", headers=actors[CERGY].headers)
    assert own.status_code == 200
    assert motive not in {item["motive"] for item in own.json()["items"]}
    assert (await client.get(f"/tenants/{marines}/image-accesses", headers=actors[FINANCE].headers)).status_code == 403
    backwards = await client.get(f"/tenants/{marines}/image-accesses", headers=actors[MARINES].headers,
                                 params={"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"})
    assert (backwards.status_code, backwards.json()["field"]) == (422, "until")
