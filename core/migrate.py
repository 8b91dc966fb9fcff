"""Database bootstrap (roles, database) and the forward-only SQL migration runner: `python -m core.migrate`."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from core.embedded import resolve_postgres
from core.logging import configure_logging, get_logger
from core.settings import DatabaseSettings, Settings, get_settings

log = get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Arbitrary constant: serialises concurrent migration runs (two processes starting together).
_LOCK_KEY = 0x5649474945


class MigrationError(RuntimeError):
    """A migration is malformed, or an applied one was edited after the fact."""


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_case.sql")
        migrations.append(Migration(path.stem, path))
    versions = [m.version[:4] for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a number")
    return migrations


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def render(sql: str, db: DatabaseSettings) -> str:
    """Substitute the role placeholders; role names come from settings, quoted as identifiers."""
    return (
        sql.replace(":app_role", _ident(db.app_role))
        .replace(":department_role", _ident(db.department_role))
        .replace(":owner_role", _ident(db.owner_role))
        .replace(":signin_role", _ident(db.signin_role))
    )


async def bootstrap(settings: Settings) -> None:
    """Create the roles and the database if missing (needs the admin DSN). Idempotent."""
    db = settings.database
    admin = await asyncpg.connect(db.admin_dsn.get_secret_value())
    try:
        roles = [
            (db.owner_role, db.owner_password, "NOSUPERUSER NOBYPASSRLS NOCREATEROLE"),
            (db.app_role, db.app_password, "NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB"),
            # Cross-tenant jobs only: BYPASSRLS, on a separate pool, every use journaled.
            (db.department_role, db.department_password, "NOSUPERUSER BYPASSRLS NOCREATEROLE NOCREATEDB"),
        ]
        for role, password, attributes in roles:
            exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            verb = "ALTER" if exists else "CREATE"
            # Passwords cannot be bind parameters in DDL; quote_literal on the server side escapes them.
            literal = await admin.fetchval("SELECT quote_literal($1)", password.get_secret_value())
            await admin.execute(f"{verb} ROLE {_ident(role)} LOGIN {attributes} PASSWORD {literal}")
        # Owner of the sign-in functions (SECURITY DEFINER): never logs in; BYPASSRLS because sign-in reads an
        # account's memberships before any tenant scope exists. Its only privileges are the column SELECTs the
        # migrations grant it. The owner role is a member so that migrations can hand those functions over to it.
        exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", db.signin_role)
        await admin.execute(
            f"{'ALTER' if exists else 'CREATE'} ROLE {_ident(db.signin_role)} NOLOGIN NOSUPERUSER BYPASSRLS "
            "NOCREATEROLE NOCREATEDB NOREPLICATION NOINHERIT PASSWORD NULL"
        )
        if not await admin.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", db.owner_role, db.signin_role):
            await admin.execute(f"GRANT {_ident(db.signin_role)} TO {_ident(db.owner_role)}")
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db.name):
            await admin.execute(f"CREATE DATABASE {_ident(db.name)} OWNER {_ident(db.owner_role)}")
            log.info("db.created", database=db.name)
    finally:
        await admin.close()
    # PG15 removed CREATE on public from PUBLIC; the owner needs it for its tables.
    admin_db = await asyncpg.connect(with_database(db.admin_dsn.get_secret_value(), db.name))
    try:
        await admin_db.execute(f"GRANT ALL ON SCHEMA public TO {_ident(db.owner_role)}")
        await admin_db.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        await admin_db.close()


def with_database(dsn: str, name: str) -> str:
    """Replace the database in a postgresql:// DSN (socket or TCP form)."""
    head, sep, query = dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}{sep}{query}"


async def migrate(settings: Settings, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations as the owner role, each in its own transaction; returns what was applied."""
    conn = await asyncpg.connect(settings.database.owner_dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {r["version"]: r["checksum"] for r in await conn.fetch("SELECT * FROM schema_migrations")}
        known = {m.version for m in discover(directory)}
        unknown = set(applied) - known
        if unknown:
            raise MigrationError(f"the database has migrations this code does not know: {sorted(unknown)}")
        for migration in discover(directory):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{migration.version} was edited after it was applied; "
                        "migrations are forward-only: add a new one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(render(migration.sql, settings.database))
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    migration.version,
                    migration.checksum,
                )
            applied_now.append(migration.version)
            log.info("db.migrated", version=migration.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        await conn.close()
    return applied_now


async def prepare_database(settings: Settings) -> Settings:
    """Resolve the server (machine or embedded), bootstrap roles and database, migrate."""
    settings = await resolve_postgres(settings)
    await bootstrap(settings)
    await migrate(settings)
    return settings


async def drop_database(settings: Settings) -> None:
    """Remove the configured database and everything in it (benchmarks and tests that made their own)."""
    admin = await asyncpg.connect(settings.database.admin_dsn.get_secret_value())
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {_ident(settings.database.name)} WITH (FORCE)")
    finally:
        await admin.close()


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    asyncio.run(prepare_database(settings))


if __name__ == "__main__":
    main()
