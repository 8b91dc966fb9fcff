"""Shared fixtures: a fresh migrated database per run, the project's own nats-server, settings pointing at both."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from cli.bus import provision_url
from core.db import Database, create_pool
from core.embedded import NatsServerProcess
from core.migrate import prepare_database
from core.settings import DatabaseSettings, NatsSettings, Settings

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServerProcess]:
    server = NatsServerProcess(store_dir=tmp_path_factory.mktemp("nats"))
    server.start()
    # The platform's processes only check their streams: the test platform declares them once, as `vigie bus
    # provision` does on a deployed one.
    asyncio.run(provision_url(server.url))
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def settings(nats_server: NatsServerProcess, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    name = f"vigie_test_{uuid.uuid4().hex[:10]}"
    base = Settings(
        environment="test",
        var_dir=Path(tmp_path_factory.mktemp("var")),
        database=DatabaseSettings(name=name, pool_min_size=1, pool_max_size=5),
        nats=NatsSettings(url=nats_server.url, embedded=False),
    )
    prepared = await prepare_database(base)
    yield prepared
    admin = await asyncpg.connect(prepared.database.admin_dsn.get_secret_value())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def app_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database.app_dsn, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def department_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database.department_dsn, min_size=1, max_size=3)
    yield pool
    await pool.close()
@pytest.fixture(scope="session")
def database(app_pool: asyncpg.Pool, department_pool: asyncpg.Pool) -> Database:
    """The one way into the database the platform's processes use, over the suite's pools."""
    return Database(app_pool, department_pool)


pytest_plugins = ["tests.camsim_fixture"]
