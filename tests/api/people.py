"""Accounts made the way people get them: an administrator invites, the person enrols through the link."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import pyotp
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.crypto import SecretBox
from core.ids import new_id
from core.settings import Settings
from core.tenancy import HABILITATED_ROLES, SECOND_FACTOR_ROLES, Role
from identity import totp
from identity.passwords import hash_password
from identity.repository import IdentityRepository
from tests.api.conftest import Actor


async def enrol(
    client: AsyncTestClient[Litestar], token: str, password: str, *, code_for: str | None = None
) -> dict[str, Any]:
    """Open the link (which offers a fresh seed when the role needs one) and answer it; returns the view, the
    completion and the seed the person scanned."""
    headers = {"x-enrolment-token": token}
    view = await client.get("/auth/enrolment", headers=headers)
    assert view.status_code == 200, view.text
    offered = view.json()["second_factor"]
    seed = offered["secret"] if offered else None
    code_seed = code_for or seed
    body: dict[str, Any] = {"password": password}
    if code_seed is not None:
        body["code"] = pyotp.TOTP(code_seed).now()
    done = await client.post("/auth/enrolment", json=body, headers=headers)
    assert done.status_code == 200, done.text
    return {"view": view.json(), "completed": done.json(), "seed": seed}


async def invite_and_enrol(
    client: AsyncTestClient[Litestar], admin: Actor, body: dict[str, Any], password: str
) -> dict[str, Any]:
    """POST /users, then the person's enrolment; returns the account as the admin now sees it, its e-mail and the
    second-factor seed the person enrolled (None for a role without one)."""
    invited = await client.post("/users", json=body, headers=admin.headers)
    assert invited.status_code == 201, invited.text
    enrolled = await enrol(client, invited.json()["enrolment"]["token"], password)
    user_id = enrolled["completed"]["user_id"]
    user = await client.get(f"/users/{user_id}", headers=admin.headers)
    assert user.status_code == 200, user.text
    return {
        "user": user.json(),
        "email": body["email"],
        "totp_secret": enrolled["seed"],
        "invitation": invited.json()["invitation"],
    }


async def make_account(
    department_pool: asyncpg.Pool,
    settings: Settings,
    seeded: SeedResult,
    *,
    role: str,
    tenant: str = "departement",
    force: str | None = None,
    password: str = "correct horse battery staple",
) -> dict[str, Any]:
    """An account written directly, as the demo seed writes its users (independent of the invitation API): its
    e-mail, id, password and second-factor seed (for the roles that need one)."""
    user_id, email = new_id(), f"{role}-{uuid.uuid4().hex[:8]}@valdoise.demo"
    seed = pyotp.random_base32() if Role(role) in SECOND_FACTOR_ROLES else None
    secrets = SecretBox(settings.data_key.get_secret_value())
    habilitated = Role(role) in HABILITATED_ROLES
    repo = IdentityRepository()
    async with department_pool.acquire() as conn, conn.transaction():
        await repo.insert_user(conn, {
            "id": user_id,
            "department_id": seeded.department_id,
            "email": email,
            "display_name": f"Test {role}",
            "password_hash": hash_password(password),
            "totp_secret_sealed": None if seed is None else totp.seal(secrets, seed, user_id),
            "agrement_number": "AGR-TEST" if habilitated else None,
            "enquiry_date": date.today() - timedelta(days=100) if habilitated else None,
            "habilitation_expires_on": date.today() + timedelta(days=365) if habilitated else None,
        })
        await repo.insert_membership(conn, {
            "id": new_id(), "tenant_id": seeded.tenants[tenant], "user_id": user_id, "role": role,
            "force_id": seeded.forces[force] if force else None,
        })
    return {"email": email, "user_id": user_id, "password": password, "totp_secret": seed}
