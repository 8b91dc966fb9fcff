"""Each role sees exactly its scope: department-wide staff the supervised tenants, finance every member tenant, a
mayor's office its commune, a municipal police officer their commune only."""

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
from core.tenancy import Scope
from identity.repository import IdentityRepository
from identity.sessions import SessionService
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


async def test_finance_scope_is_every_member_tenant(
    app_pool: asyncpg.Pool, department_pool: asyncpg.Pool, actors: dict[str, Actor], seeded: SeedResult
) -> None:
    """Finance bills every tenant of its department, supervised or not (Magny-en-Vexin is not): the session's
    `member_tenant_ids` (signin_session, migration 0075), which the API's session resolution picks for finance."""
    db, repo = Database(app_pool), IdentityRepository()
    department_id = await department_pool.fetchval("SELECT department_id FROM tenants WHERE id = $1",
                                                   seeded.tenants["departement"])
    members = frozenset(r["id"] for r in await department_pool.fetch(
        "SELECT id FROM tenants WHERE department_id = $1", department_id))
    principals = {}
    for email in ("finances@valdoise.demo", "operateur1@valdoise.demo"):
        session_id = _session_id(actors[email])
        async with db.anonymous_statement() as conn:
            record = await repo.session_record(conn, session_id)
        assert record is not None
        assert record.member_tenant_ids == members
        principals[email] = SessionService._principal(session_id, record)
    assert seeded.tenants["magny"] in members
    assert principals["finances@valdoise.demo"].scope == Scope(members, department_id=department_id)
    # Department staff keep the supervised tenants only.
    assert seeded.tenants["magny"] not in principals["operateur1@valdoise.demo"].scope.tenant_ids


def _session_id(actor: Actor) -> uuid.UUID:
    payload = actor.token.split(".")[1]
    return uuid.UUID(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"])
