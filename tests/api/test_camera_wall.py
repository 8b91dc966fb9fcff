"""The camera wall: cameras by commune and site, each with the condition the recorders and the detector report
(online, offline, recording gaps, tamper, unknown), its last frame time and the H.265 flag; filters by tenant,
commune and condition; each role sees its own scope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.ids import new_id
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration


async def _health(conn: asyncpg.Connection, camera: uuid.UUID, state: str, last_end: datetime | None,
                  codec: str = "h264", detail: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO recording_health (tenant_id, camera_id, state, since, last_segment_end, codec, detail) "
        "SELECT tenant_id, id, $2, $3, $4, $5, $6 FROM cameras WHERE id = $1 "
        "ON CONFLICT (camera_id) DO UPDATE SET state = excluded.state, since = excluded.since, "
        "last_segment_end = excluded.last_segment_end, codec = excluded.codec, detail = excluded.detail",
        camera, state, datetime.now(UTC) - timedelta(minutes=30), last_end, codec, detail)


@pytest.fixture(scope="module")
async def reported(seeded: SeedResult, department_pool: asyncpg.Pool) -> datetime:
    """What recorders and the detector would have written: one camera in each condition."""
    now = datetime.now(UTC)
    cams = seeded.cameras
    async with department_pool.acquire() as conn:
        await conn.execute("DELETE FROM recording_health WHERE camera_id = $1", cams["c3"])
        await _health(conn, cams["c1"], "recording", now - timedelta(seconds=2))
        await _health(conn, cams["c2"], "offline", now - timedelta(minutes=3), detail="connection refused")
        await _health(conn, cams["c4"], "recording", now - timedelta(seconds=3))
        await conn.execute(
            "INSERT INTO recording_gaps (id, tenant_id, camera_id, start_at, end_at, cause) "
            "SELECT $1, tenant_id, id, $2, $3, 'stream_stalled' FROM cameras WHERE id = $4",
            new_id(), now - timedelta(minutes=12), now - timedelta(minutes=10), cams["c4"])
        await _health(conn, cams["c5"], "recording", now - timedelta(seconds=1))
        await conn.execute(
            "INSERT INTO alerts (id, tenant_id, camera_id, site_id, insee_code, rule_type, severity, priority, "
            "source_event_id, first_seen_at, last_seen_at, sla_claim_due_at) "
            "SELECT $1, tenant_id, id, site_id, insee_code, 'camera_tamper', 2, 20, $2, $3, $3, $3 "
            "FROM cameras WHERE id = $4", new_id(), new_id(), now - timedelta(seconds=30), cams["c5"])
        await _health(conn, cams["c6"], "recording", now - timedelta(minutes=5))  # says recording, wrote nothing
        await _health(conn, cams["c7"], "recording", now - timedelta(seconds=2), codec="hevc")
    return now


def _tiles(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {cam["camera_id"]: {**cam, "commune": commune["insee_code"], "site": site["name"]}
            for commune in body["communes"] for site in commune["sites"] for cam in site["cameras"]}


async def test_the_wall_shows_each_camera_condition_by_commune_and_site(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, reported: datetime,
) -> None:
    response = await client.get("/camera-wall", headers=actors["operateur1@valdoise.demo"].headers)
    assert response.status_code == 200, response.text
    body = response.json()
    tiles = _tiles(body)
    # Magny records only (no live supervision): its camera c8 is outside the CSU's scope.
    cams = {key: str(value) for key, value in seeded.cameras.items() if key != "c8"}
    assert set(cams.values()) <= set(tiles)
    assert str(seeded.cameras["c8"]) not in tiles
    condition = {key: tiles[cams[key]]["condition"] for key in cams}
    assert condition["c1"] == "online"
    assert condition["c2"] == "offline"
    assert tiles[cams["c2"]]["recording_detail"] == "connection refused"
    assert condition["c4"] == "recording_gaps"
    assert tiles[cams["c4"]]["recent_gaps"] >= 1
    assert condition["c5"] == "tamper"
    assert tiles[cams["c5"]]["tamper"] is True
    assert condition["c6"] == "recording_gaps"  # the recorder stopped writing
    assert condition["c7"] == "online"
    assert tiles[cams["c7"]]["tenant_name"] == "Marines"
    assert tiles[cams["c7"]]["live_needs_transcode"] is True
    assert tiles[cams["c1"]]["live_needs_transcode"] is False
    assert condition["c3"] == "unknown"
    last_frame = datetime.fromisoformat(tiles[cams["c1"]]["last_frame_at"])
    assert abs((last_frame - (reported - timedelta(seconds=2))).total_seconds()) < 0.01
    # Grouped: every commune once, in name order; each camera under its site; counts add up.
    names = [c["name"] for c in body["communes"]]
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    assert tiles[cams["c6"]]["commune"] == "95370"
    assert tiles[cams["c6"]]["site"] == "Mairie de Marines"
    assert sum(body["counts"].values()) == len(tiles)
    assert body["counts"]["tamper"] >= 1


async def test_filters_by_commune_tenant_and_condition(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, reported: datetime,
) -> None:
    headers = actors["operateur1@valdoise.demo"].headers
    by_commune = (await client.get("/camera-wall", params={"insee_code": "95370"}, headers=headers)).json()
    assert [c["insee_code"] for c in by_commune["communes"]] == ["95370"]
    marines = str(seeded.tenants["marines"])
    by_tenant = _tiles((await client.get("/camera-wall", params={"tenant_id": marines}, headers=headers)).json())
    assert by_tenant
    assert {t["tenant_id"] for t in by_tenant.values()} == {marines}
    offline = _tiles((await client.get("/camera-wall", params={"condition": "offline"}, headers=headers)).json())
    assert str(seeded.cameras["c2"]) in offline
    assert {t["condition"] for t in offline.values()} == {"offline"}
    bad = await client.get("/camera-wall", params={"insee_code": "Cergy"}, headers=headers)
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    unknown_condition = await client.get("/camera-wall", params={"condition": "asleep"}, headers=headers)
    assert unknown_condition.status_code == 400


async def test_each_role_sees_its_own_scope(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, reported: datetime,
) -> None:
    mayor = _tiles((await client.get("/camera-wall", headers=actors["maire@cergy.demo"].headers)).json())
    cergy = str(seeded.tenants["cergy"])
    assert mayor
    assert {t["tenant_id"] for t in mayor.values()} == {cergy}
    assert str(seeded.cameras["c6"]) not in mayor
    # Another tenant's id as a filter shows nothing rather than its cameras.
    foreign = await client.get("/camera-wall", params={"tenant_id": str(seeded.tenants["marines"])},
                               headers=actors["maire@cergy.demo"].headers)
    assert foreign.status_code == 200
    assert foreign.json()["communes"] == []
    assert (await client.get("/camera-wall", headers=actors["gendarme@marines.demo"].headers)).status_code == 403
