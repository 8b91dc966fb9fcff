"""Live video through the API: a journaled, signed, single-use ticket per viewing, for the CSU's habilitated staff."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from live.settings import LiveSettings
from live.tickets import TicketSigner
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration


def _camera(seeded: SeedResult, tenant: str) -> uuid.UUID:
    return next(cid for key, cid in seeded.cameras.items() if seeded.camera_tenants[key] == seeded.tenants[tenant])


async def test_an_operator_gets_a_journaled_single_viewing_ticket(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, department_pool: asyncpg.Pool,
) -> None:
    operator, mayor = actors["operateur1@valdoise.demo"], actors["maire@cergy.demo"]
    camera = _camera(seeded, "cergy")
    before = time.time()
    response = await client.post(f"/cameras/{camera}/live", headers=operator.headers,
                                 json={"motive": "  levée de doute, appel 17 n°4513 ", "stream": "main"})
    assert response.status_code == 201, response.text
    grant = response.json()
    assert grant["url"].endswith(f"/live/cameras/{camera}?stream=main")
    assert grant["stream"] == "main"
    expires = datetime.fromisoformat(grant["expires_at"]).timestamp()
    assert before < expires <= time.time() + 60
    # The ticket binds who, which session's viewing, which camera and stream, until when.
    claims = TicketSigner(LiveSettings().ticket_key.get_secret_value()).verify(grant["ticket"], now=time.time())
    assert (claims.cam, claims.stream.value, str(claims.jti)) == (camera, "main", grant["view_id"])
    assert claims.tid == seeded.tenants["cergy"]
    async with department_pool.acquire() as conn:
        user_id = await conn.fetchval("SELECT id FROM users WHERE email = 'operateur1@valdoise.demo'")
        view = await conn.fetchrow("SELECT * FROM live_views WHERE id = $1", claims.jti)
    assert claims.sub == user_id
    assert view["session_id"] == claims.sid
    assert (view["camera_id"], view["stream"], view["motive"]) == (camera, "main", "levée de doute, appel 17 n°4513")
    assert view["started_at"] is None
    # The journal line (the mayor reads her cameras' journal) names the viewing, its start and its motive.
    lines = (await client.get(f"/journal?camera_id={camera}", headers=mayor.headers)).json()["items"]
    line = next(entry for entry in lines if entry["action"] == "media.live" and entry["target_id"] == grant["view_id"])
    assert line["motive"] == "levée de doute, appel 17 n°4513"
    assert line["actor_role"] == "operator"
    assert line["target_type"] == "live_view"
    assert datetime.fromisoformat(line["range_start"]) == view["issued_at"]
    # And the record of viewings, which the gateway completes (started, ended), is readable by the tenant's admin.
    views = (await client.get(f"/cameras/{camera}/live/views", headers=mayor.headers)).json()["items"]
    assert views[0]["id"] == grant["view_id"]
    assert views[0]["motive"] == "levée de doute, appel 17 n°4513"


async def test_a_live_ticket_needs_a_motive(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    supervisor = actors["superviseur@valdoise.demo"]
    camera = _camera(seeded, "marines")
    for body in ({}, {"stream": "sub"}, {"motive": "   "}):
        refused = await client.post(f"/cameras/{camera}/live", headers=supervisor.headers, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "motive"
    bad_stream = await client.post(f"/cameras/{camera}/live", headers=supervisor.headers,
                                   json={"motive": "ronde", "stream": "4k"})
    assert bad_stream.status_code == 400
    assert (await client.post(f"/cameras/{camera}/live", headers=supervisor.headers,
                              json={"motive": "ronde"})).json()["stream"] == "sub"


async def test_live_video_is_for_the_csu_staff_only(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    camera = _camera(seeded, "cergy")
    body = {"motive": "curiosité", "stream": "sub"}
    for email in ("maire@cergy.demo", "policier@cergy.demo", "auditeur@valdoise.demo"):
        refused = await client.post(f"/cameras/{camera}/live", headers=actors[email].headers, json=body)
        assert refused.status_code == 403, (email, refused.text)
    admin = await client.post(f"/cameras/{camera}/live", headers=actors["admin@valdoise.demo"].headers, json=body)
    assert admin.status_code == 201
    # The record of viewings is the auditors' and admins' to read, not the officers'.
    assert (await client.get(f"/cameras/{camera}/live/views",
                             headers=actors["auditeur@valdoise.demo"].headers)).status_code == 200
    assert (await client.get(f"/cameras/{camera}/live/views",
                             headers=actors["policier@cergy.demo"].headers)).status_code == 403
    # A camera out of scope (Cergy's, for Marines' mayor) or unknown is not found.
    assert (await client.get(f"/cameras/{camera}/live/views",
                             headers=actors["maire@marines.demo"].headers)).status_code == 404
    unknown = await client.post(f"/cameras/{uuid.uuid4()}/live", headers=actors["operateur1@valdoise.demo"].headers,
                                json=body)
    assert unknown.status_code == 404


async def test_a_cameras_live_transcode_profile_is_set_through_the_camera(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    mayor = actors["maire@cergy.demo"]
    camera = _camera(seeded, "cergy")
    assert (await client.get(f"/cameras/{camera}", headers=mayor.headers)).json()["live_transcode"] is False
    try:
        changed = await client.patch(f"/cameras/{camera}", headers=mayor.headers, json={"live_transcode": True})
        assert changed.status_code == 200, changed.text
        assert changed.json()["live_transcode"] is True
        lines = (await client.get(f"/journal?camera_id={camera}", headers=mayor.headers)).json()["items"]
        assert any(line["action"] == "camera.update" and "live_transcode" in line["details"] for line in lines)
    finally:
        await client.patch(f"/cameras/{camera}", headers=mayor.headers, json={"live_transcode": False})
