"""Sign-in flows: second factor, refresh rotation with reuse detection, throttling, habilitation, key rotation."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import pyotp
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from cli.seed import SeedResult
from core.crypto import SecretBox
from core.settings import AuthSettings, Settings
from identity.keys import rotate_signing_key
from identity.repository import IdentityRepository
from tests.api.conftest import Actor, sign_in
from tests.api.people import invite_and_enrol

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


async def create_user(
    client: AsyncTestClient[Litestar],
    admin: Actor,
    seeded: SeedResult,
    *,
    role: str,
    tenant: str = "departement",
    force: str | None = None,
    expires_on: date | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": f"{role}-{uuid.uuid4().hex[:8]}@valdoise.demo",
        "display_name": f"Test {role}",
        "membership": {
            "tenant_id": str(seeded.tenants[tenant]),
            "role": role,
            "force_id": str(seeded.forces[force]) if force else None,
        },
    }
    if role in ("operator", "supervisor"):
        body["habilitation"] = {
            "agrement_number": "AGR-TEST",
            "enquiry_date": "2025-01-10",
            "expires_on": (expires_on or date.today() + timedelta(days=365)).isoformat(),
        }
    return await invite_and_enrol(client, admin, body, PASSWORD)


async def test_operator_needs_the_second_factor_and_a_code_works_once(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    created = await create_user(client, actors["admin@valdoise.demo"], seeded, role="operator")
    secret = created["totp_secret"]
    first = await client.post("/auth/login", json={"email": created["email"], "password": PASSWORD})
    assert first.json()["status"] == "second_factor_required"
    assert "access_token" not in first.json()
    wrong = await client.post("/auth/login/totp", json={"challenge": first.json()["challenge"], "code": "000000"})
    assert wrong.status_code == 401
    # The enrolment spent the current step's code: the next step's is the first unused one the server accepts.
    code = pyotp.TOTP(secret).at(time.time() + 30)
    ok = await client.post("/auth/login/totp", json={"challenge": first.json()["challenge"], "code": code})
    assert ok.status_code == 200, ok.text
    assert ok.json()["role"] == "operator"
    again = await client.post("/auth/login", json={"email": created["email"], "password": PASSWORD})
    replay = await client.post("/auth/login/totp", json={"challenge": again.json()["challenge"], "code": code})
    assert replay.status_code == 401  # the same code cannot open a second session


async def test_refresh_rotates_and_reuse_revokes_the_session(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    created = await create_user(
        client, actors["admin@valdoise.demo"], seeded, role="officer", tenant="marines", force="pm_marines"
    )
    first = await sign_in(client, created["email"], PASSWORD)
    second = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    new_headers = {"authorization": f"Bearer {second.json()['access_token']}"}
    assert (await client.get("/me", headers=new_headers)).status_code == 200
    reuse = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert (await client.get("/me", headers=new_headers)).status_code == 401
    stolen_chain = await client.post("/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert stolen_chain.status_code == 401


async def test_failures_on_one_account_are_throttled(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    created = await create_user(
        client, actors["admin@valdoise.demo"], seeded, role="officer", tenant="marines", force="pm_marines"
    )
    statuses = []
    for _ in range(30):
        response = await client.post("/auth/login", json={"email": created["email"], "password": "guess"})
        statuses.append(response.status_code)
    evaluated = statuses.count(401)
    assert evaluated <= 7, statuses  # 5 free attempts, then exponential delays: most guesses are never evaluated
    assert statuses.count(429) >= 20
    locked = await client.post("/auth/login", json={"email": created["email"], "password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    unlock = await client.post(f"/users/{created['user']['id']}/unlock", headers=actors["admin@valdoise.demo"].headers)
    assert unlock.status_code == 204
    assert (await client.post("/auth/login", json={"email": created["email"], "password": PASSWORD})).status_code == 200


async def test_unknown_account_and_wrong_password_look_the_same(client: AsyncTestClient[Litestar]) -> None:
    unknown = await client.post("/auth/login", json={"email": "nobody@nowhere.test", "password": "x"})
    wrong = await client.post("/auth/login", json={"email": "auditeur@valdoise.demo", "password": "x"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]


async def test_per_ip_rate_limit(api_settings: Settings, seeded: SeedResult, department_pool: asyncpg.Pool) -> None:
    limited = api_settings.model_copy(update={"auth": AuthSettings(access_ttl_s=3600, login_rate_per_ip_per_minute=5)})
    async with department_pool.acquire() as conn:
        await conn.execute("DELETE FROM ip_login_attempts")
    async with AsyncTestClient(app=create_app(limited)) as limited_client:
        statuses = [
            (await limited_client.post("/auth/login", json={"email": f"x{i}@y.test", "password": "p"})).status_code
            for i in range(8)
        ]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 3, statuses


async def test_expired_habilitation_refuses_access(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    admin = actors["admin@valdoise.demo"]
    created = await create_user(client, admin, seeded, role="operator")
    session = await sign_in(client, created["email"], PASSWORD, created["totp_secret"])
    headers = {"authorization": f"Bearer {session['access_token']}"}
    assert (await client.get("/cameras", headers=headers)).status_code == 200
    expired = {
        "agrement_number": "AGR-TEST",
        "enquiry_date": "2020-01-10",
        "expires_on": (date.today() - timedelta(days=1)).isoformat(),
    }
    patched = await client.patch(
        f"/users/{created['user']['id']}", json={"habilitation": expired}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    assert (await client.get("/cameras", headers=headers)).status_code == 401
    refused = await client.post("/auth/login", json={"email": created["email"], "password": PASSWORD})
    assert refused.status_code == 403
    assert "habilitation" in refused.json()["detail"]


async def test_operator_account_requires_an_habilitation(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    response = await client.post(
        "/users",
        headers=actors["admin@valdoise.demo"].headers,
        json={
            "email": "nohab@valdoise.demo",
            "display_name": "x",
            "membership": {"tenant_id": str(seeded.tenants["departement"]), "role": "operator"},
        },
    )
    assert response.status_code == 422
    assert response.json()["field"] == "habilitation"


async def test_disabling_an_account_ends_its_sessions(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    created = await create_user(
        client, actors["admin@valdoise.demo"], seeded, role="officer", tenant="marines", force="pm_marines"
    )
    session = await sign_in(client, created["email"], PASSWORD)
    headers = {"authorization": f"Bearer {session['access_token']}"}
    await client.patch(
        f"/users/{created['user']['id']}", json={"status": "disabled"}, headers=actors["maire@marines.demo"].headers
    )
    assert (await client.get("/me", headers=headers)).status_code == 401


async def test_tenant_admin_cannot_grant_department_roles(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    response = await client.post(
        "/users",
        headers=actors["maire@cergy.demo"].headers,
        json={
            "email": "escalate@cergy.demo",
            "display_name": "x",
            "membership": {"tenant_id": str(seeded.tenants["cergy"]), "role": "department_admin"},
        },
    )
    assert response.status_code == 403


async def test_key_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(
    client: AsyncTestClient[Litestar], api_settings: Settings, department_pool: asyncpg.Pool, actors: dict[str, Actor]
) -> None:
    old = actors["auditeur@valdoise.demo"]
    before = (await client.get("/.well-known/jwks.json")).json()["keys"]
    async with department_pool.acquire() as conn:
        kid = await rotate_signing_key(
            conn,
            SecretBox(api_settings.data_key.get_secret_value()),  # type: ignore[arg-type]
            IdentityRepository(),
            publish_ahead=timedelta(0),
            keep_published=timedelta(hours=2),
        )
    # A process (re)loading its key ring picks the rotation up; a fresh one shows it at once.
    async with AsyncTestClient(app=create_app(api_settings)) as restarted:
        after = (await restarted.get("/.well-known/jwks.json")).json()["keys"]
        assert {k["kid"] for k in after} == {k["kid"] for k in before} | {kid}
        assert all("d" not in k for k in after)  # no private part is ever published
        assert (await restarted.get("/me", headers=old.headers)).status_code == 200
        fresh = await sign_in(restarted, "policier@cergy.demo")
    header = fresh["access_token"].split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"] == kid


async def test_roles_are_granted_and_withdrawn(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    mayor = actors["maire@marines.demo"]
    created = await create_user(
        client, actors["admin@valdoise.demo"], seeded, role="officer", tenant="marines", force="pm_marines"
    )
    user_id, first_membership = created["user"]["id"], created["user"]["memberships"][0]["id"]
    session = await sign_in(client, created["email"], PASSWORD)
    headers = {"authorization": f"Bearer {session['access_token']}"}
    granted = await client.post(
        f"/users/{user_id}/memberships",
        headers=mayor.headers,
        json={"tenant_id": str(seeded.tenants["marines"]), "role": "tenant_admin"},
    )
    assert granted.status_code == 201, granted.text
    assert {m["role"] for m in granted.json()["memberships"]} == {"officer", "tenant_admin"}
    again = await client.post(
        f"/users/{user_id}/memberships",
        headers=mayor.headers,
        json={"tenant_id": str(seeded.tenants["marines"]), "role": "tenant_admin"},
    )
    assert again.status_code == 409
    foreign_tenant = await client.post(
        f"/users/{user_id}/memberships",
        headers=mayor.headers,
        json={"tenant_id": str(seeded.tenants["cergy"]), "role": "tenant_admin"},
    )
    assert foreign_tenant.status_code == 422
    assert (await client.get("/me", headers=headers)).status_code == 200
    withdrawn = await client.delete(f"/memberships/{first_membership}", headers=mayor.headers)
    assert withdrawn.status_code == 204
    assert (await client.get("/me", headers=headers)).status_code == 401  # that session ran on the withdrawn role
