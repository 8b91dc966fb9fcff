"""The database of a command-line department job: one connection of each role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core.db import Database, open_database
from core.settings import Settings


@asynccontextmanager
async def department_database(settings: Settings) -> AsyncIterator[Database]:
    """One connection of each role for a command: these commands are department jobs (cross-tenant)."""
    db = await open_database(settings.database.app_dsn, settings.database.department_dsn,
                             app_pool_size=(1, 1), department_pool_size=(1, 1))
    try:
        yield db
    finally:
        await db.close()
