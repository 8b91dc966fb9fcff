"""Row-level security catalog lint and policy matrix, run against the migrated schema as the app role."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.db import Database
from core.settings import Settings
from tests.api.conftest import Actor

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
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = $1)"
            " + (SELECT count(*) FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE r.rolname = $1)"
            " + (SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE r.rolname = $1)",
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
    db = Database(app_pool)
    async with db.for_tenants([]) as conn:
        tables = await _tenant_tables(conn)
    checked = 0
    for table in tables:
        async with db.for_tenants([cergy]) as conn:
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
    async with db.for_tenants([cergy]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO sites (id, tenant_id, name, kind, insee_code) VALUES ($1, $2, 'x', 'other', '95370')",
                uuid.uuid4(),
                marines,
            )
    assert checked == len(tables) >= 7


SIGNIN_FUNCTIONS = {"signin_memberships", "signin_membership", "signin_session"}


async def test_signin_role_owns_only_the_signin_functions_and_reads_only_their_columns(settings: Settings) -> None:
    """The sign-in role cannot log in, owns nothing but SECURITY DEFINER functions with a fixed search_path, only the
    runtime role may call them, and its privileges are SELECTs on named columns (no table-wide grant, no write)."""
    signin, app = settings.database.signin_role, settings.database.app_role
    conn = await _owner(settings)
    try:
        role = await conn.fetchrow(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication FROM pg_roles WHERE rolname = $1",
            signin,
        )
        owned_relations = await conn.fetchval(
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = $1)"
            " + (SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE r.rolname = $1)"
            " + (SELECT count(*) FROM pg_type t JOIN pg_roles r ON r.oid = t.typowner WHERE r.rolname = $1)",
            signin,
        )
        functions = await conn.fetch(
            "SELECT p.proname, p.prosecdef, p.proconfig, "
            "array(SELECT coalesce(g.rolname, 'PUBLIC') FROM aclexplode(p.proacl) a "
            "LEFT JOIN pg_roles g ON g.oid = a.grantee WHERE a.privilege_type = 'EXECUTE' "
            "AND a.grantee <> p.proowner) AS callers "
            "FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE r.rolname = $1",
            signin,
        )
        table_grants = await conn.fetch(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants WHERE grantee = $1", signin
        )
        column_privileges = await conn.fetch(
            "SELECT DISTINCT table_name, privilege_type FROM information_schema.column_privileges WHERE grantee = $1",
            signin,
        )
        can_create = await conn.fetchval("SELECT has_schema_privilege($1, 'public', 'CREATE')", signin)
        department_may_call = await conn.fetchval(
            "SELECT has_function_privilege($1, 'public.signin_session(uuid)', 'EXECUTE')",
            settings.database.department_role,
        )
    finally:
        await conn.close()
    assert role is not None
    assert dict(role) == {"rolcanlogin": False, "rolsuper": False, "rolcreaterole": False, "rolcreatedb": False,
                          "rolreplication": False}
    assert owned_relations == 0
    assert {f["proname"] for f in functions} == SIGNIN_FUNCTIONS
    for function in functions:
        assert function["prosecdef"], function["proname"]
        assert any(c.startswith("search_path=") for c in function["proconfig"] or []), function["proname"]
        assert list(function["callers"]) == [app], function["proname"]
    assert table_grants == []
    assert {c["privilege_type"] for c in column_privileges} == {"SELECT"}
    assert {c["table_name"] for c in column_privileges} == {
        "memberships", "tenants", "forces", "force_communes", "auth_sessions", "users"
    }
    assert not can_create
    assert not department_may_call


async def test_signin_role_reads_no_secret(settings: Settings) -> None:
    """Even through the sign-in role's own privileges, password hashes and second-factor seeds stay out of reach."""
    conn = await _owner(settings)
    try:
        async with conn.transaction():
            await conn.execute(f'SET LOCAL ROLE "{settings.database.signin_role}"')
            for column in ("password_hash", "totp_secret_sealed"):
                await conn.execute("SAVEPOINT probe")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch(f"SELECT {column} FROM users")
                await conn.execute("ROLLBACK TO SAVEPOINT probe")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE memberships SET role = role")
    finally:
        await conn.close()


async def test_signin_functions_answer_the_runtime_role_only(settings: Settings, seeded: SeedResult) -> None:
    app = await asyncpg.connect(settings.database.app_dsn)
    try:
        # No scope is set: the memberships of an account are read through the function, not the table.
        assert await app.fetchval("SELECT count(*) FROM memberships") == 0
        user_id = await app.fetchval("SELECT id FROM users WHERE email = 'pm@marines.demo'")
        rows = await app.fetch("SELECT tenant_id, role FROM public.signin_memberships($1)", user_id)
        assert [(r["tenant_id"], r["role"]) for r in rows] == [(seeded.tenants["marines"], "officer")]
        assert await app.fetch("SELECT * FROM public.signin_session($1)", uuid.uuid4()) == []
    finally:
        await app.close()
    department = await asyncpg.connect(settings.database.department_dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await department.fetch("SELECT * FROM public.signin_session($1)", uuid.uuid4())
    finally:
        await department.close()


async def test_the_api_holds_no_department_connection(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor]
) -> None:
    """The API is built without the department DSN: the RLS-bypassing role is out of its reach, and signing in and
    resolving sessions still work (actors signed in through it)."""
    assert actors
    db = client.app.state.services.db
    with pytest.raises(RuntimeError, match="no department connection"):
        async with db.cross_tenant("probe"):
            pass
    assert (await client.get("/me", headers=actors["operateur1@valdoise.demo"].headers)).status_code == 200
