"""Schemathesis against the served OpenAPI, as every role: no server error, every response matches the schema."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx2
import pyotp
import pytest

from cli.database import department_database
from cli.evidence import provision_evidence_keys
from cli.main import ensure_signing_key
from cli.seed import DEMO_PASSWORD, SeedResult, seed_demo
from core.crypto import SecretBox
from core.embedded import wait_for_port
from core.migrate import prepare_database
from core.ports import free_port
from core.settings import Settings

pytestmark = pytest.mark.integration
ROLES = ["department_admin", "supervisor", "operator", "tenant_admin", "officer", "auditor", "finance"]
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance"
)


@pytest.fixture(scope="module")
async def fuzz_database(api_settings: Settings) -> AsyncIterator[tuple[Settings, SeedResult]]:
    """Schemathesis creates, changes and deletes whatever it finds: it gets a database of its own."""
    name = f"{api_settings.database.name}_fuzz"
    settings = await prepare_database(
        api_settings.model_copy(update={"database": api_settings.database.model_copy(update={"name": name})})
    )
    await ensure_signing_key(settings)
    # As `make demo` does: the evidence keys exist, so the public key route answers 200, not 503.
    await provision_evidence_keys(settings)
    async with department_database(settings) as db, db.cross_tenant("test setup") as conn, conn.transaction():
        seeded = await seed_demo(conn, SecretBox(settings.data_key.get_secret_value()))
    yield settings, seeded
    admin = await asyncpg.connect(settings.database.admin_dsn.get_secret_value())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def served_api(
    fuzz_database: tuple[Settings, SeedResult], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """The API in its own process on the fuzzing database, and a token per role."""
    settings, seeded = fuzz_database
    port = free_port()
    env = {
        **os.environ,
        "VIGIE_DATABASE__NAME": settings.database.name,
        "VIGIE_NATS__URL": settings.nats.url,
        "VIGIE_API__PORT": str(port),
        "VIGIE_AUTH__ACCESS_TTL_S": "3600",
        "VIGIE_LOG_LEVEL": "WARNING",
        "VIGIE_AUTH__LOGIN_RATE_PER_IP_PER_MINUTE": "100000",
        # Fuzzed sign-ins and credential changes fail by the hundred: the platform's budget is not under test here.
        "VIGIE_AUTH__PLATFORM_FAILURES_PER_MINUTE": "1000000",
        "VIGIE_ENVIRONMENT": "test",
    }
    log = tmp_path_factory.mktemp("api") / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "api"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, 30)
        base = f"http://127.0.0.1:{port}"
        tokens = {}
        with httpx2.Client(base_url=base, timeout=30) as client:
            for user in seeded.users:
                if user.role in tokens:
                    continue
                body = client.post("/auth/login", json={"email": user.email, "password": DEMO_PASSWORD}).json()
                if body.get("status") == "second_factor_required":
                    assert user.totp_secret is not None
                    body = client.post(
                        "/auth/login/totp",
                        json={"challenge": body["challenge"], "code": pyotp.TOTP(user.totp_secret).now()},
                    ).json()
                tokens[user.role] = body["access_token"]
        yield base, tokens
    finally:
        process.terminate()
        process.wait(timeout=15)
        server_errors = [line for line in log.read_text().splitlines() if "unexpected_error" in line]
        assert server_errors == [], server_errors


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_as(role: str, served_api: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, tokens = served_api
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{base}/schema/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            "8",
            "--seed",
            "2026",
            "--workers",
            "1",
            "--no-color",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--exclude-path-regex",
            # Each ends the fuzzing session itself when it meets its own account (ids are learnt from responses).
            "^/auth/(console/)?logout$|/revoke-sessions$|/reenrolment$|^/metrics$",
            "--header",
            f"Authorization: Bearer {tokens[role]}",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
            "--request-timeout",
            "20",
            "--suppress-health-check",
            "all",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = "\n".join(result.stdout.splitlines()[-40:])
    print(f"\nschemathesis as {role}:\n{summary}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in summary
