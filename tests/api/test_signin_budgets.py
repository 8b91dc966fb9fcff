"""Sign-in budgets: a second factor that cannot be brute-forced around its password, burned challenges, the platform's
budget of failures, the real client behind trusted proxies, and auditors' second factor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx2
import pyotp
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import build_services, create_app
from cli.seed import DEMO_PASSWORD, SeedResult
from core.crypto import SecretBox
from core.db import Database
from core.settings import ApiSettings, AuthSettings, Settings
from identity.keys import KeyRing
from identity.model import LoginRequest
from identity.repository import IdentityRepository
from identity.sessions import SessionService
from tests.api.conftest import Actor, sign_in
from tests.api.people import make_account

pytestmark = pytest.mark.integration


async def _failures(department_pool: asyncpg.Pool, email: str) -> tuple[int, int]:
    async with department_pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT failed_attempts, second_factor_failures FROM users WHERE email = $1", email
        )
    assert row is not None
    return row["failed_attempts"], row["second_factor_failures"]


async def _challenge(client: AsyncTestClient[Litestar], account: dict[str, Any]) -> str:
    response = await client.post("/auth/login", json={"email": account["email"], "password": account["password"]})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "second_factor_required"
    challenge: str = response.json()["challenge"]
    return challenge


def _wrong_code(seed: str) -> str:
    """A code no step near now accepts."""
    totp = pyotp.TOTP(seed)
    near = {totp.at(time.time() + drift * totp.interval) for drift in (-1, 0, 1)}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in near)


async def _wait_for_a_fresh_minute_if_late() -> None:
    """Per-minute budgets: a test that counts within one minute starts early enough in it."""
    if time.time() % 60 > 48:
        await asyncio.sleep(61 - time.time() % 60)


async def test_a_correct_password_does_not_reset_failures_before_the_second_factor(
    client: AsyncTestClient[Litestar],
    api_settings: Settings,
    seeded: SeedResult,
    department_pool: asyncpg.Pool,
    database: Database,
) -> None:
    account = await make_account(department_pool, api_settings, seeded, role="operator")
    for _ in range(3):
        wrong = await client.post("/auth/login", json={"email": account["email"], "password": "not the password"})
        assert wrong.status_code == 401
    assert (await _failures(department_pool, account["email"]))[0] == 3
    challenge = await _challenge(client, account)
    assert (await _failures(department_pool, account["email"]))[0] == 3  # the password was not the last factor
    # The authorization endpoint's password step (identity.authorization) does not reset them either.
    secrets = SecretBox(api_settings.data_key.get_secret_value())
    sessions = SessionService(database, secrets, api_settings.auth, KeyRing(secrets, IdentityRepository()))
    await sessions.authenticate(
        LoginRequest(email=account["email"], password=account["password"]), client_ip="192.0.2.10"
    )
    assert (await _failures(department_pool, account["email"]))[0] == 3
    code = pyotp.TOTP(account["totp_secret"]).now()
    done = await client.post("/auth/login/totp", json={"challenge": challenge, "code": code})
    assert done.status_code == 200, done.text
    assert await _failures(department_pool, account["email"]) == (0, 0)  # the last factor succeeded


async def test_second_factor_guesses_lock_the_account_however_often_the_password_is_given(
    client: AsyncTestClient[Litestar],
    api_settings: Settings,
    seeded: SeedResult,
    department_pool: asyncpg.Pool,
    actors: dict[str, Actor],
) -> None:
    account = await make_account(department_pool, api_settings, seeded, role="operator")
    wrong = _wrong_code(account["totp_secret"])
    budget = api_settings.auth.max_second_factor_failures
    for _ in range(budget):
        # A fresh password sign-in each time: it used to reset the counter and buy five more guesses.
        challenge = await _challenge(client, account)
        refused = await client.post("/auth/login/totp", json={"challenge": challenge, "code": wrong})
        assert refused.status_code == 401
    assert (await _failures(department_pool, account["email"]))[1] == budget
    locked = await client.post("/auth/login", json={"email": account["email"], "password": account["password"]})
    assert locked.status_code == 429, locked.text
    assert "locked" in locked.json()["detail"]
    unlock = await client.post(f"/users/{account['user_id']}/unlock", headers=actors["admin@valdoise.demo"].headers)
    assert unlock.status_code == 204
    assert await _failures(department_pool, account["email"]) == (0, 0)
    body = await sign_in(client, account["email"], account["password"], account["totp_secret"])
    assert body["role"] == "operator"


async def test_a_challenge_is_burned_after_three_misses(
    client: AsyncTestClient[Litestar], api_settings: Settings, seeded: SeedResult, department_pool: asyncpg.Pool
) -> None:
    account = await make_account(department_pool, api_settings, seeded, role="supervisor")
    wrong = _wrong_code(account["totp_secret"])
    challenge = await _challenge(client, account)
    details = []
    for _ in range(api_settings.auth.challenge_max_misses):
        refused = await client.post("/auth/login/totp", json={"challenge": challenge, "code": wrong})
        assert refused.status_code == 401
        details.append(refused.json()["detail"])
    assert details[-1].endswith("sign in again")
    right = pyotp.TOTP(account["totp_secret"]).now()
    burned = await client.post("/auth/login/totp", json={"challenge": challenge, "code": right})
    assert burned.status_code == 401, burned.text  # even the right code: the challenge is gone
    assert "unknown or expired" in burned.json()["detail"]


async def test_the_platform_budget_of_failures_slows_every_sign_in(
    api_settings: Settings, seeded: SeedResult, department_pool: asyncpg.Pool
) -> None:
    """A spray over many accounts (here unknown ones) spends the platform's budget for the minute: then even a
    correct sign-in of another account waits for the next minute (429 with Retry-After), sessions already open keep
    working."""
    limited = api_settings.model_copy(
        update={"auth": AuthSettings(access_ttl_s=3600, login_rate_per_ip_per_minute=10_000,
                                     platform_failures_per_minute=4)}
    )
    await _wait_for_a_fresh_minute_if_late()
    async with department_pool.acquire() as conn:
        await conn.execute("DELETE FROM signin_failures")
    async with AsyncTestClient(app=create_app(limited)) as sprayed:
        before = await sign_in(sprayed, "policier@cergy.demo")
        for i in range(4):
            guess = await sprayed.post("/auth/login", json={"email": f"spray{i}@valdoise.demo", "password": "x"})
            assert guess.status_code == 401
        honest = await sprayed.post("/auth/login", json={"email": "gendarme@marines.demo", "password": DEMO_PASSWORD})
        assert honest.status_code == 429, honest.text
        assert 1 <= int(honest.headers["retry-after"]) <= 60
        me = await sprayed.get("/me", headers={"authorization": f"Bearer {before['access_token']}"})
        assert me.status_code == 200
    async with department_pool.acquire() as conn:
        await conn.execute("DELETE FROM signin_failures")


@asynccontextmanager
async def _peers(settings: Settings) -> AsyncIterator[Any]:
    """Clients connecting to the app from chosen socket addresses (the test client's is fixed). The app runs in this
    event loop, with services built here (the test client would build them in a thread of its own)."""
    services = await build_services(settings)
    app = create_app(settings, services=services)
    app.state.services = services

    def peer(host: str) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app, client=(host, 40000)),
                                  base_url="http://vigie.test")

    try:
        yield peer
    finally:
        if services.bus is not None:
            await services.bus.close()
        await services.db.close()


async def test_bad_logins_behind_a_trusted_proxy_do_not_block_another_client(
    api_settings: Settings, seeded: SeedResult, department_pool: asyncpg.Pool
) -> None:
    proxied = api_settings.model_copy(
        update={
            "auth": AuthSettings(access_ttl_s=3600, login_rate_per_ip_per_minute=5,
                                 platform_failures_per_minute=10_000),
            "api": ApiSettings(trusted_proxies=["10.0.0.0/8"]),  # type: ignore[list-item]
        }
    )
    await _wait_for_a_fresh_minute_if_late()
    async with department_pool.acquire() as conn:
        await conn.execute("DELETE FROM ip_login_attempts")

    def login(number: int) -> dict[str, str]:
        return {"email": f"nobody{number}@valdoise.demo", "password": "x"}

    async with _peers(proxied) as peer:
        async with peer("10.0.0.2") as balancer:

            async def through(forwarded_for: str, number: int) -> int:
                response = await balancer.post(
                    "/auth/login", json=login(number), headers={"x-forwarded-for": forwarded_for}
                )
                return response.status_code

            statuses = [await through("203.0.113.5", i) for i in range(6)]
            assert statuses == [401] * 5 + [429], statuses
            # Another client behind the same load balancer is not blocked.
            assert await through("203.0.113.9", 10) == 401
            # What the blocked client writes to the left of the chain is not believed.
            assert await through("198.51.100.77, 203.0.113.5", 11) == 429
            # A chain of trusted proxies is walked from the right to the first untrusted address.
            assert await through("203.0.113.5, 10.1.2.3", 12) == 429
            # IPv6 clients are counted by their /64.
            assert [await through(f"2001:db8:1:2::{i + 1:x}", 20 + i) for i in range(6)][-1] == 429
            assert await through("2001:db8:1:3::1", 30) == 401
        # A peer that is not a trusted proxy is the client, whatever X-Forwarded-For it sends.
        async with peer("192.0.2.7") as direct:
            spoofed = [
                (await direct.post("/auth/login", json=login(40 + i), headers={"x-forwarded-for": f"198.51.100.{i}"}))
                .status_code
                for i in range(6)
            ]
        assert spoofed == [401] * 5 + [429], spoofed
    async with department_pool.acquire() as conn:
        await conn.execute("DELETE FROM ip_login_attempts")


async def test_auditors_sign_in_with_a_second_factor(
    client: AsyncTestClient[Litestar], seeded: SeedResult
) -> None:
    """Auditors read every supervised tenant's journal: a password alone does not open a session."""
    first = await client.post("/auth/login", json={"email": "auditeur@valdoise.demo", "password": DEMO_PASSWORD})
    assert first.status_code == 200
    assert first.json()["status"] == "second_factor_required"
    assert "access_token" not in first.json()
    auditor = next(u for u in seeded.users if u.role == "auditor")
    assert auditor.totp_secret is not None  # the demo seeds one, and `vigie totp` prints its codes
    body = await sign_in(client, auditor.email, totp_secret=auditor.totp_secret)
    assert body["role"] == "auditor"
