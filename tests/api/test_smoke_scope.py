"""Each role sees exactly its scope: department-wide staff the supervised tenants, a mayor's office its commune,
a municipal police officer their commune only."""

from __future__ import annotations

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
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


async def test_force_scopes(department_pool: asyncpg.Pool, seeded: SeedResult) -> None:
    """A police municipale: its commune only. A state force: its communes and the department's own sites."""
    repo = IdentityRepository()
    async with department_pool.acquire() as conn:
        municipal = set(await repo.force_tenants(conn, seeded.forces["pm_marines"]))  # type: ignore[arg-type]
        gendarmerie = set(await repo.force_tenants(conn, seeded.forces["gn_marines"]))  # type: ignore[arg-type]
    assert municipal == {seeded.tenants["marines"]}
    assert gendarmerie == {seeded.tenants["marines"], seeded.tenants["magny"], seeded.tenants["departement"]}
