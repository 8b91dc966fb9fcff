"""API fixtures: the seeded demo department, a running app, and signed-in clients of every role."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pyotp
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from cli.main import ensure_signing_key
from cli.seed import DEMO_PASSWORD, SeedResult, seed_demo
from core.crypto import SecretBox
from core.settings import AuthSettings, Settings


@pytest.fixture(scope="session")
async def api_settings(settings: Settings) -> Settings:
    # Tokens outlive the whole suite; expiry has its own tests.
    # The sign-in budgets of a single client and of the platform are tested with their own settings.
    return settings.model_copy(
        update={
            "auth": AuthSettings(
                access_ttl_s=3600, login_rate_per_ip_per_minute=10_000, platform_failures_per_minute=10_000
            )
        }
    )


@pytest.fixture(scope="session")
async def seeded(api_settings: Settings, department_pool: asyncpg.Pool) -> SeedResult:
    await ensure_signing_key(api_settings)
    async with department_pool.acquire() as conn, conn.transaction():
        return await seed_demo(
            conn,
            SecretBox(api_settings.data_key.get_secret_value()),  # type: ignore[arg-type]
            rtsp_base_port=8554,
        )


@pytest.fixture(scope="session")
async def app(api_settings: Settings, seeded: SeedResult) -> Litestar:
    return create_app(api_settings)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def sign_in(
    client: AsyncTestClient[Litestar], email: str, password: str = DEMO_PASSWORD, totp_secret: str | None = None
) -> dict[str, Any]:
    """Sign in, with the second factor when the role needs one. Each TOTP step opens one session only, and
    other suites of the same run may just have spent the current one and the next (within the accepted drift):
    then the next steps are used as time reaches them."""
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    if body.get("status") != "second_factor_required":
        return body
    assert totp_secret is not None, f"{email} needs a second factor"
    totp = pyotp.TOTP(totp_secret)
    for attempt in range(3):
        if attempt:
            # Both codes the server accepts now are spent: the next one becomes acceptable at the step boundary.
            await asyncio.sleep(totp.interval - time.time() % totp.interval + 0.5)
        for code in (totp.now(), totp.at(time.time() + totp.interval)):
            second = await client.post("/auth/login/totp", json={"challenge": body["challenge"], "code": code})
            if second.status_code == 200:
                result: dict[str, Any] = second.json()
                return result
            body = (await client.post("/auth/login", json={"email": email, "password": password})).json()
    raise AssertionError(f"{email}: second factor refused at three successive steps")


@dataclass(frozen=True)
class Actor:
    role: str
    email: str
    token: str
    home_tenant: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
async def actors(client: AsyncTestClient[Litestar], seeded: SeedResult) -> dict[str, Actor]:
    """One signed-in account per seeded login, keyed by email."""
    signed: dict[str, Actor] = {}
    for user in seeded.users:
        body = await sign_in(client, user.email, totp_secret=user.totp_secret)
        signed[user.email] = Actor(user.role, user.email, body["access_token"], uuid.UUID(body["tenant_id"]))
    return signed


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem of `status` with a detail, naming `field` when one is given."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body
