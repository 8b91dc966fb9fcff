"""Without a reachable Postgres, the platform starts its embedded one and runs on it with the same roles and RLS."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def var_dir() -> Iterator[Path]:
    """pgserver runs postgres as an unprivileged user when started by root: its data folder must be reachable
    by that user, which pytest's private temporary folders are not."""
    path = Path(tempfile.mkdtemp(prefix="vigie-embedded-pg-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_embedded_postgres_fallback(var_dir: Path) -> None:
    # A separate interpreter: pgserver stops its server when the process that started it exits.
    script = textwrap.dedent(f"""
        import asyncio, asyncpg
        from pydantic import SecretStr
        from core.migrate import prepare_database
        from core.settings import DatabaseSettings, Settings

        async def main():
            settings = Settings(var_dir={str(var_dir)!r}, database=DatabaseSettings(
                admin_dsn=SecretStr("postgresql://postgres@127.0.0.1:1/postgres"), name="vigie_embedded"))
            settings = await prepare_database(settings)
            assert settings.database.host.startswith("/"), settings.database.host
            conn = await asyncpg.connect(settings.database.app_dsn)
            try:
                version = await conn.fetchval("SHOW server_version")
                tables = await conn.fetchval("SELECT count(*) FROM tenants")
                bypass = await conn.fetchval("SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user")
            finally:
                await conn.close()
            print(version, tables, bypass)

        asyncio.run(main())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    version, tables, bypass = result.stdout.split()[-3:]
    assert version.startswith("16.")  # the bundled server, not the machine's 15
    assert tables == "0"  # RLS: no scope, no rows (and the table exists: migrations ran)
    assert bypass == "False"
    assert (var_dir / "pgdata").is_dir()
