"""People own their credentials: invitations and enrolment links, one's own password and second factor, forced
re-enrolment, invitations that reveal nothing about other tenants, and accounts shared with another tenant."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import pyotp
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.settings import Settings
from tests.api.conftest import Actor, sign_in
from tests.api.people import enrol, invite_and_enrol, make_account

pytestmark = pytest.mark.integration
PASSWORD = "my own passphrase 2026"


def _operator_invitation(seeded: SeedResult, email: str | None = None) -> dict[str, Any]:
    return {
        "email": email or f"op-{uuid.uuid4().hex[:8]}@valdoise.demo",
        "display_name": "Opératrice invitée",
        "membership": {"tenant_id": str(seeded.tenants["departement"]), "role": "operator"},
        "habilitation": {"agrement_number": "AGR-95-INV", "enquiry_date": "2025-06-01", "expires_on": "2030-01-01"},
    }


async def _journal(department_pool: asyncpg.Pool, target_id: object) -> list[asyncpg.Record]:
    async with department_pool.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT action, actor_user_id, actor_role, details FROM access_journal WHERE target_id = $1 "
                "ORDER BY occurred_at",
                str(target_id),
            )
        )


def _shape(value: Any) -> Any:
    """The structure of a JSON document: keys and value types, not values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


async def test_an_invited_person_sets_their_own_password_and_second_factor(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, department_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    admin = actors["admin@valdoise.demo"]
    body = _operator_invitation(seeded)
    invited = await client.post("/users", json=body, headers=admin.headers)
    assert invited.status_code == 201, invited.text
    issued = invited.json()
    # The administrator receives an invitation and a link: no password, no second-factor seed, no account.
    assert set(issued) == {"invitation", "enrolment"}
    assert "totp_enrolment" not in invited.text
    assert "secret" not in invited.text
    assert issued["invitation"]["status"] == "pending"
    token = issued["enrolment"]["token"]
    # The served console's enrolment page, the token in the fragment: never sent to a server.
    console = f"{api_settings.api.public_url}/console/"
    assert issued["enrolment"]["link"] == f"{console}#/inscription?jeton={token}"
    listed = (await client.get("/users?limit=200", headers=admin.headers)).json()["items"]
    assert body["email"] not in {u["email"] for u in listed}
    async with department_pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM enrolments WHERE token_hash = sha256($1::bytea)",
                                     token.encode())
    assert stored == 1  # kept as a hash only

    view = await client.get("/auth/enrolment", headers={"x-enrolment-token": token})
    assert view.status_code == 200, view.text
    assert view.headers["cache-control"] == "no-store"
    shown = view.json()
    assert (shown["email"], shown["role"], shown["purpose"]) == (body["email"], "operator", "invitation")
    assert shown["tenant_name"] == "Département du Val-d'Oise"
    seed = shown["second_factor"]["secret"]
    wrong_proof = await client.post(
        "/auth/enrolment", json={"password": PASSWORD, "code": "000000" if pyotp.TOTP(seed).now() != "000000"
                                 else "000001"}, headers={"x-enrolment-token": token}
    )
    assert wrong_proof.status_code == 401  # the new seed must be proven
    done = await client.post(
        "/auth/enrolment", json={"password": PASSWORD, "code": pyotp.TOTP(seed).now()},
        headers={"x-enrolment-token": token},
    )
    assert done.status_code == 200, done.text
    user_id = done.json()["user_id"]

    session = await sign_in(client, body["email"], PASSWORD, seed)
    assert session["role"] == "operator"
    assert (await client.get("/auth/enrolment", headers={"x-enrolment-token": token})).status_code == 401
    again = await client.post("/auth/enrolment", json={"password": "another passphrase!"},
                              headers={"x-enrolment-token": token})
    assert again.status_code == 401  # single use
    user = (await client.get(f"/users/{user_id}", headers=admin.headers)).json()
    assert user["totp_enabled"]
    assert not user["enrolment_pending"]
    assert user["habilitation"]["agrement_number"] == "AGR-95-INV"
    lines = await _journal(department_pool, issued["invitation"]["id"])
    assert [(line["action"], str(line["actor_user_id"])) for line in lines] == [
        ("user.invite", str((await client.get("/me", headers=admin.headers)).json()["id"])),
        ("invitation.accept", user_id),  # who accepted: the person, through the link
    ]


async def test_the_administrator_cannot_choose_a_password(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    body = {**_operator_invitation(seeded), "password": "chosen by the admin!"}
    response = await client.post("/users", json=body, headers=actors["admin@valdoise.demo"].headers)
    assert response.status_code == 400, response.text


async def test_an_enrolment_link_expires_and_is_burned_by_wrong_codes(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, department_pool: asyncpg.Pool
) -> None:
    admin = actors["admin@valdoise.demo"]
    expired = (await client.post("/users", json=_operator_invitation(seeded), headers=admin.headers)).json()
    async with department_pool.acquire() as conn:
        await conn.execute("UPDATE enrolments SET expires_at = now() - interval '1 second' WHERE invitation_id = $1",
                           uuid.UUID(expired["invitation"]["id"]))
    late = await client.get("/auth/enrolment", headers={"x-enrolment-token": expired["enrolment"]["token"]})
    assert late.status_code == 401

    burned = (await client.post("/users", json=_operator_invitation(seeded), headers=admin.headers)).json()
    headers = {"x-enrolment-token": burned["enrolment"]["token"]}
    seed = (await client.get("/auth/enrolment", headers=headers)).json()["second_factor"]["secret"]
    near = {pyotp.TOTP(seed).at(time.time() + d * 30) for d in (-1, 0, 1)}
    wrong = next(c for c in ("111111", "222222", "333333", "444444") if c not in near)
    for _ in range(5):
        refused = await client.post("/auth/enrolment", json={"password": PASSWORD, "code": wrong}, headers=headers)
        assert refused.status_code == 401
    assert refused.json()["detail"].endswith("this link is now void")
    right = await client.post(
        "/auth/enrolment", json={"password": PASSWORD, "code": pyotp.TOTP(seed).now()}, headers=headers
    )
    assert right.status_code == 401


async def _steps_of_this_window(seed: str) -> tuple[str, str, str]:
    """Codes of the previous, current and next time steps, all accepted now, each usable once and in that order;
    taken early in a step so that the test ends before the window moves."""
    if time.time() % 30 > 20:
        await asyncio.sleep(30.5 - time.time() % 30)
    totp, now = pyotp.TOTP(seed), time.time()
    return totp.at(now - 30), totp.at(now), totp.at(now + 30)


async def _login_with(client: AsyncTestClient[Litestar], email: str, password: str, code: str) -> dict[str, str]:
    challenge = (await client.post("/auth/login", json={"email": email, "password": password})).json()["challenge"]
    response = await client.post("/auth/login/totp", json={"challenge": challenge, "code": code})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def test_changing_ones_password_needs_the_current_password_and_a_code(
    client: AsyncTestClient[Litestar], api_settings: Settings, seeded: SeedResult, department_pool: asyncpg.Pool
) -> None:
    account = await make_account(department_pool, api_settings, seeded, role="operator", password=PASSWORD)
    email, seed = account["email"], account["totp_secret"]
    previous, current, following = await _steps_of_this_window(seed)
    headers = await _login_with(client, email, PASSWORD, previous)
    other_headers = await _login_with(client, email, PASSWORD, current)
    new = "a brand new passphrase"
    bare = await client.post("/me/password", json={"current_password": PASSWORD, "new_password": new}, headers=headers)
    assert bare.status_code == 422
    assert bare.json()["field"] == "code"
    wrong = await client.post(
        "/me/password", json={"current_password": "not my password", "new_password": new, "code": following},
        headers=headers,
    )
    assert wrong.status_code == 401
    short = await client.post(
        "/me/password", json={"current_password": PASSWORD, "new_password": "short", "code": following},
        headers=headers,
    )
    assert short.status_code == 400
    changed = await client.post(
        "/me/password", json={"current_password": PASSWORD, "new_password": new, "code": following}, headers=headers
    )
    assert changed.status_code == 204, changed.text
    assert (await client.get("/me", headers=headers)).status_code == 200  # this session goes on
    assert (await client.get("/me", headers=other_headers)).status_code == 401  # the others end
    old = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert old.status_code == 401
    assert (await client.post("/auth/login", json={"email": email, "password": new})).status_code == 200
    lines = [line for line in await _journal(department_pool, account["user_id"])
             if line["action"] == "user.password_change"]
    assert len(lines) == 1
    assert lines[0]["actor_user_id"] == account["user_id"]


async def test_replacing_the_second_factor_needs_the_password_and_a_current_code(
    client: AsyncTestClient[Litestar], api_settings: Settings, seeded: SeedResult, department_pool: asyncpg.Pool
) -> None:
    account = await make_account(department_pool, api_settings, seeded, role="operator", password=PASSWORD)
    email, old_seed = account["email"], account["totp_secret"]
    previous, current, following = await _steps_of_this_window(old_seed)
    headers = await _login_with(client, email, PASSWORD, previous)
    assert (await client.post("/me/totp", headers=headers)).status_code == 400  # a bare access token is not enough
    no_code = await client.post("/me/totp", json={"current_password": PASSWORD}, headers=headers)
    assert no_code.status_code == 422
    assert no_code.json()["field"] == "code"
    wrong = await client.post("/me/totp", json={"current_password": "not my password", "code": current},
                              headers=headers)
    assert wrong.status_code == 401
    replaced = await client.post("/me/totp", json={"current_password": PASSWORD, "code": current}, headers=headers)
    assert replaced.status_code == 201, replaced.text
    new_seed = replaced.json()["secret"]
    assert new_seed != old_seed
    challenge = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()["challenge"]
    stale = await client.post("/auth/login/totp", json={"challenge": challenge, "code": following})
    assert stale.status_code == 401  # the replaced factor no longer signs in
    assert (await sign_in(client, email, PASSWORD, new_seed))["role"] == "operator"
    lines = [line for line in await _journal(department_pool, account["user_id"])
             if line["action"] == "user.totp_replace"]
    assert len(lines) == 1
    assert lines[0]["actor_user_id"] == account["user_id"]


async def test_forced_reenrolment_voids_the_credentials_and_the_holder_sets_new_ones(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, department_pool: asyncpg.Pool
) -> None:
    admin = actors["admin@valdoise.demo"]
    created = await invite_and_enrol(client, admin, _operator_invitation(seeded), PASSWORD)
    user_id = created["user"]["id"]
    session = await sign_in(client, created["email"], PASSWORD, created["totp_secret"])
    forced = await client.post(f"/users/{user_id}/reenrolment", headers=admin.headers)
    assert forced.status_code == 201, forced.text
    assert set(forced.json()) == {"user_id", "enrolment"}
    assert "secret" not in forced.text
    assert (await client.get("/me", headers={"authorization": f"Bearer {session['access_token']}"})).status_code == 401
    old = await client.post("/auth/login", json={"email": created["email"], "password": PASSWORD})
    assert old.status_code == 401
    assert (await client.get(f"/users/{user_id}", headers=admin.headers)).json()["enrolment_pending"] is True
    token = forced.json()["enrolment"]["token"]
    enrolled = await enrol(client, token, "my renewed passphrase")
    assert enrolled["view"]["purpose"] == "reenrolment"
    assert enrolled["seed"] != created["totp_secret"]
    body = await sign_in(client, created["email"], "my renewed passphrase", enrolled["seed"])
    assert body["role"] == "operator"
    actions = [(line["action"], str(line["actor_user_id"])) for line in await _journal(department_pool, user_id)]
    assert ("user.reenrol", str((await client.get("/me", headers=admin.headers)).json()["id"])) in actions
    assert ("user.reenrol_complete", user_id) in actions


async def test_inviting_an_address_that_exists_in_another_tenant_reveals_nothing(
    client: AsyncTestClient[Litestar],
    actors: dict[str, Actor],
    api_settings: Settings,
    seeded: SeedResult,
    department_pool: asyncpg.Pool,
) -> None:
    """POST /users answers an invitation whether or not the address is an account elsewhere: same status, same
    document, nothing of the account; the account appears to this tenant only once its holder accepts."""
    mayor = actors["maire@cergy.demo"]
    elsewhere = await make_account(department_pool, api_settings, seeded, role="officer", tenant="marines",
                                   force="pm_marines")

    def invitation(email: str) -> dict[str, Any]:
        return {
            "email": email,
            "display_name": "Responsable vidéoprotection",
            "membership": {"tenant_id": str(seeded.tenants["cergy"]), "role": "tenant_admin"},
        }

    fresh = await client.post("/users", json=invitation(f"new-{uuid.uuid4().hex[:8]}@cergy.demo"),
                              headers=mayor.headers)
    known = await client.post("/users", json=invitation(elsewhere["email"]), headers=mayor.headers)
    assert fresh.status_code == known.status_code == 201, known.text
    assert _shape(fresh.json()) == _shape(known.json())
    assert fresh.json()["invitation"]["status"] == known.json()["invitation"]["status"] == "pending"
    assert str(elsewhere["user_id"]) not in known.text
    listed = (await client.get("/users?limit=200", headers=mayor.headers)).json()["items"]
    assert elsewhere["email"] not in {u["email"] for u in listed}
    pending = {i["email"]: i for i in (await client.get("/invitations", headers=mayor.headers)).json()["items"]}
    assert _shape(pending[elsewhere["email"]]) == _shape(pending[fresh.json()["invitation"]["email"]])
    # The two links look alike too, to whoever holds them.
    fresh_view = await client.get("/auth/enrolment", headers={"x-enrolment-token": fresh.json()["enrolment"]["token"]})
    known_view = await client.get("/auth/enrolment", headers={"x-enrolment-token": known.json()["enrolment"]["token"]})
    assert _shape(fresh_view.json()) == _shape(known_view.json())
    assert fresh_view.json()["instructions"] == known_view.json()["instructions"]

    # Only the account's holder can accept, with its own password (a new one is refused)...
    known_headers = {"x-enrolment-token": known.json()["enrolment"]["token"]}
    seed = known_view.json()["second_factor"]["secret"]
    hijack = await client.post("/auth/enrolment", json={"password": "a password of my choosing",
                                                        "code": pyotp.TOTP(seed).now()}, headers=known_headers)
    assert hijack.status_code == 401
    # ...who then enrols the second factor the new role needs.
    accepted = await client.post("/auth/enrolment", json={"password": elsewhere["password"],
                                                          "code": pyotp.TOTP(seed).now()}, headers=known_headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["user_id"] == str(elsewhere["user_id"])
    shared = await client.get(f"/users/{elsewhere['user_id']}", headers=mayor.headers)
    assert shared.status_code == 200
    assert [m["role"] for m in shared.json()["memberships"]] == ["tenant_admin"]  # Marines' role stays invisible


async def test_a_tenant_admin_cannot_take_over_an_account_shared_with_another_tenant(
    client: AsyncTestClient[Litestar],
    actors: dict[str, Actor],
    api_settings: Settings,
    seeded: SeedResult,
    department_pool: asyncpg.Pool,
) -> None:
    """An officer of Marines also made tenant admin of Cergy: neither mayor may change, unlock, log out or re-enrol
    that account (each would take over the other tenant's access); the department admin may."""
    shared = await make_account(department_pool, api_settings, seeded, role="officer", tenant="marines",
                                force="pm_marines")
    user_id = shared["user_id"]
    admin = actors["admin@valdoise.demo"]
    granted = await client.post(
        f"/users/{user_id}/memberships", headers=admin.headers,
        json={"tenant_id": str(seeded.tenants["cergy"]), "role": "tenant_admin"},
    )
    assert granted.status_code == 201, granted.text
    for mayor in (actors["maire@cergy.demo"], actors["maire@marines.demo"]):
        assert (await client.get(f"/users/{user_id}", headers=mayor.headers)).status_code == 200  # visible...
        attempts = [
            await client.patch(f"/users/{user_id}", json={"status": "disabled"}, headers=mayor.headers),
            await client.patch(f"/users/{user_id}", json={"display_name": "hijacked"}, headers=mayor.headers),
            await client.post(f"/users/{user_id}/unlock", headers=mayor.headers),
            await client.post(f"/users/{user_id}/revoke-sessions", headers=mayor.headers),
            await client.post(f"/users/{user_id}/reenrolment", headers=mayor.headers),
        ]
        assert [a.status_code for a in attempts] == [403] * 5, [a.text for a in attempts]  # ...but not theirs
    session = await sign_in(client, shared["email"], shared["password"])
    assert (await client.get("/me", headers={"authorization": f"Bearer {session['access_token']}"})).status_code == 200
    renamed = await client.patch(f"/users/{user_id}", json={"display_name": "Renamed"}, headers=admin.headers)
    assert renamed.status_code == 200, renamed.text
