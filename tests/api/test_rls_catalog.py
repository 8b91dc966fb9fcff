"""Row-level security catalog lint and policy matrix, run against the migrated schema as the app role."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from cli.seed import SeedResult
from core.db import tenant_transaction
from core.settings import Settings

pytestmark = pytest.mark.integration

# Department directory tables are scoped by department, not by tenant_id; they must be covered too.
DIRECTORY_TABLES = {"tenants", "forces", "force_communes"}


async def _owner(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(settings.database.owner_dsn)


async def _tenant_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
    )
    return sorted(r["relname"] for r in rows)


async def test_every_tenant_table_has_forced_rls_and_a_policy(settings: Settings) -> None:
    conn = await _owner(settings)
    try:
        tables = set(await _tenant_tables(conn)) | DIRECTORY_TABLES
        rows = await conn.fetch(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies, "
            "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND "
            " (pg_get_expr(p.polqual, p.polrelid) IN ('true', '(true)') OR p.polqual IS NULL)) AS open_policies "
            "FROM pg_class c WHERE c.relname = ANY($1::text[]) AND c.relkind IN ('r', 'p')",
            list(tables),
        )
    finally:
        await conn.close()
    assert {r["relname"] for r in rows} == tables
    broken = [
        (r["relname"], r["relrowsecurity"], r["relforcerowsecurity"], r["policies"], r["open_policies"])
        for r in rows
        if not (r["relrowsecurity"] and r["relforcerowsecurity"] and r["policies"] and not r["open_policies"])
    ]
    assert broken == []
    assert len(tables) >= 10, tables


async def test_app_role_is_powerless(settings: Settings) -> None:
    conn = await _owner(settings)
    try:
        role = await conn.fetchrow(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1",
            settings.database.app_role,
        )
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = $1",
            settings.database.app_role,
        )
        views_without_invoker = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'v' AND NOT coalesce("
            "'security_invoker=true' = ANY(c.reloptions) OR 'security_invoker=on' = ANY(c.reloptions), false)"
        )
        definers_without_path = await conn.fetch(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.prosecdef AND NOT coalesce("
            "EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%'), false)"
        )
    finally:
        await conn.close()
    assert role is not None
    assert dict(role) == {"rolsuper": False, "rolbypassrls": False, "rolcreaterole": False, "rolcreatedb": False}
    assert owned == 0
    assert views_without_invoker == []
    assert definers_without_path == []


async def test_journal_is_append_only_for_the_app_role(settings: Settings) -> None:
    conn = await _owner(settings)
    try:
        grants = await conn.fetch(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = $1 AND table_name = 'access_journal'",
            settings.database.app_role,
        )
    finally:
        await conn.close()
    assert {g["privilege_type"] for g in grants} == {"SELECT", "INSERT"}


@pytest.mark.parametrize("guc", [None, "", "{}"])
async def test_unset_or_empty_scope_sees_nothing(settings: Settings, seeded: SeedResult, guc: str | None) -> None:
    conn = await asyncpg.connect(settings.database.app_dsn)
    try:
        async with conn.transaction():
            if guc is not None:
                await conn.execute("SELECT set_config('app.tenant_ids', $1, true)", guc)
            for table in await _tenant_tables(conn):
                assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
            assert await conn.fetchval("SELECT count(*) FROM tenants") == 0
    finally:
        await conn.close()


async def test_scope_matrix_per_table(settings: Settings, seeded: SeedResult, app_pool: asyncpg.Pool) -> None:
    """For every tenant table: a tenant's scope sees only its rows, and cannot write into another tenant."""
    cergy, marines = seeded.tenants["cergy"], seeded.tenants["marines"]
    async with tenant_transaction(app_pool, []) as conn:
        tables = await _tenant_tables(conn)
    checked = 0
    for table in tables:
        async with tenant_transaction(app_pool, [cergy]) as conn:
            foreign = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id <> $1", cergy)
            assert foreign == 0, table
            await conn.execute("SAVEPOINT probe")
            try:
                updated = await conn.execute(f"UPDATE {table} SET tenant_id = tenant_id WHERE tenant_id = $1", marines)
            except asyncpg.InsufficientPrivilegeError:
                updated = "UPDATE 0"  # append-only tables: no UPDATE grant at all
                await conn.execute("ROLLBACK TO SAVEPOINT probe")
            assert updated.endswith(" 0"), (table, updated)
        checked += 1
    async with tenant_transaction(app_pool, [cergy]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO sites (id, tenant_id, name, kind, insee_code) VALUES ($1, $2, 'x', 'other', '95370')",
                uuid.uuid4(),
                marines,
            )
    assert checked == len(tables) >= 7
