"""Schemathesis against the served OpenAPI, as every role: no server error, every response matches the schema."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.embedded import free_port, wait_for_port
from core.settings import Settings
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration
ROLES = ["department_admin", "supervisor", "operator", "tenant_admin", "officer", "auditor"]
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance"
)


@pytest.fixture(scope="module")
def served_api(
    api_settings: Settings,
    actors: dict[str, Actor],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "VIGIE_DATABASE__NAME": api_settings.database.name,
        "VIGIE_NATS__URL": api_settings.nats.url,
        "VIGIE_API__PORT": str(port),
        "VIGIE_AUTH__ACCESS_TTL_S": "3600",
        "VIGIE_LOG_LEVEL": "WARNING",
        "VIGIE_AUTH__LOGIN_RATE_PER_IP_PER_MINUTE": "100000",
        "VIGIE_ENVIRONMENT": "test",
    }
    log = tmp_path_factory.mktemp("api") / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "api"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)
        server_errors = [line for line in log.read_text().splitlines() if "unexpected_error" in line]
        assert server_errors == [], server_errors


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_as(role: str, served_api: str, actors: dict[str, Actor], tmp_path: Path) -> None:
    actor = next(a for a in actors.values() if a.role == role)
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{served_api}/schema/openapi.json",
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
            "^/auth/logout$|/revoke-sessions$|^/metrics$",
            "--header",
            f"Authorization: Bearer {actor.token}",
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
