"""Migrations apply once, are forward-only, and refuse an edited history."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from core.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate
from core.settings import Settings

pytestmark = pytest.mark.integration


async def test_rerun_applies_nothing(settings: Settings) -> None:
    assert await migrate(settings) == []


async def test_edited_migration_is_refused(settings: Settings, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    first = sorted(copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        await migrate(settings, copy)


async def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "add_things.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_snake_case"):
        discover(tmp_path)


async def test_app_role_owns_nothing_and_cannot_bypass(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database.owner_dsn)
    try:
        role = await conn.fetchrow(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", settings.database.app_role
        )
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = $1",
            settings.database.app_role,
        )
    finally:
        await conn.close()
    assert role is not None
    assert (role["rolsuper"], role["rolbypassrls"]) == (False, False)
    assert owned == 0
