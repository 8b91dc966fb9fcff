"""Alerts fixtures: the seeded demo department (shared with the API suite when both run), the app, actors, the bus."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from alerts.events import ALERTS_STREAM
from api.app import create_app
from cli.main import ensure_signing_key
from cli.seed import SeedResult, seed_demo
from core.bus import Bus
from core.crypto import SecretBox
from core.db import Database
from core.settings import AuthSettings, Settings
from inference.events import DETECTIONS_STREAM
from mobile_push.events import PUSH_STREAM
from tests.api.conftest import Actor, sign_in

SECOND_FACTOR = {"department_admin", "supervisor", "operator", "tenant_admin"}


@pytest.fixture(scope="session")
async def alerts_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth": AuthSettings(access_ttl_s=3600, login_rate_per_ip_per_minute=10_000)})


@pytest.fixture(scope="session")
def db(database: Database) -> Database:
    """The alerts tests call it `db`, as the alerts process does."""
    return database


@pytest.fixture(scope="session")
async def demo(alerts_settings: Settings, department_pool: asyncpg.Pool) -> SeedResult:
    """The demo department; when the API suite seeded it first, its ids and second factors are read back."""
    await ensure_signing_key(alerts_settings)
    box = SecretBox(alerts_settings.data_key.get_secret_value())  # type: ignore[arg-type]
    async with department_pool.acquire() as conn, conn.transaction():
        return await seed_demo(conn, box, rtsp_base_port=8554)


@pytest.fixture(scope="session")
async def alerts_app(alerts_settings: Settings, demo: SeedResult) -> Litestar:
    return create_app(alerts_settings)


@pytest.fixture(scope="session")
async def alerts_client(alerts_app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=alerts_app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def people(alerts_client: AsyncTestClient[Litestar], demo: SeedResult) -> dict[str, Actor]:
    signed: dict[str, Actor] = {}
    for user in demo.users:
        body = await sign_in(alerts_client, user.email, totp_secret=user.totp_secret)
        signed[user.email] = Actor(user.role, user.email, body["access_token"], uuid.UUID(body["tenant_id"]))
    return signed


@pytest.fixture(scope="session")
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    connected = await Bus.connect(settings.nats.url, name="alerts-tests")
    for stream in (DETECTIONS_STREAM, ALERTS_STREAM, PUSH_STREAM):
        await connected.provision_stream(stream)
    await connected.provision_dead_letter_stream()
    yield connected
    await connected.close()
