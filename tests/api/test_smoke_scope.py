"""Each role sees exactly its scope: department-wide staff the supervised tenants, a mayor's office its commune,
a municipal police officer their commune only."""

from __future__ import annotations

import base64
import json
import uuid

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.db import Database
from identity.repository import IdentityRepository
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration


async def _camera_tenants(client: AsyncTestClient[Litestar], actor: Actor) -> set[str]:
    response = await client.get("/cameras?limit=200", headers=actor.headers)
    assert response.status_code == 200, response.text
    return {c["tenant_id"] for c in response.json()["items"]}


async def test_operator_sees_supervised_tenants_only(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    seen = await _camera_tenants(client, actors["operateur1@valdoise.demo"])
    supervised = {str(seeded.tenants[k]) for k in ("departement", "cergy", "marines")}
    assert seen == supervised  # Magny-en-Vexin has no live supervision


async def test_tenant_admin_sees_own_commune_only(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    assert await _camera_tenants(client, actors["maire@cergy.demo"]) == {str(seeded.tenants["cergy"])}


async def test_municipal_police_scope_is_their_commune(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    officer = actors["pm@marines.demo"]
    response = await client.get("/cameras", headers=officer.headers)
    assert response.status_code == 403  # officers do not administer cameras
    me = await client.get("/me", headers=officer.headers)
    assert me.status_code == 200
    assert [m["tenant_id"] for m in me.json()["memberships"]] == [str(seeded.tenants["marines"])]


async def test_force_scopes(app_pool: asyncpg.Pool, actors: dict[str, Actor], seeded: SeedResult) -> None:
    """A police municipale: its commune only. A state force: its communes and the department's own sites. Read as
    the API reads them: the sign-in function that resolves a session (signin_session), on the runtime role."""
    db, repo = Database(app_pool), IdentityRepository()
    scopes = {}
    for email in ("pm@marines.demo", "gendarme@marines.demo"):
        async with db.anonymous_statement() as conn:
            record = await repo.session_record(conn, _session_id(actors[email]))
        assert record is not None
        scopes[email] = record.force_tenant_ids
    assert scopes["pm@marines.demo"] == {seeded.tenants["marines"]}
    assert scopes["gendarme@marines.demo"] == {
        seeded.tenants["marines"], seeded.tenants["magny"], seeded.tenants["departement"]
    }


def _session_id(actor: Actor) -> uuid.UUID:
    payload = actor.token.split(".")[1]
    return uuid.UUID(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"])
