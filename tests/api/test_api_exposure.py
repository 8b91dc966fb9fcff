"""What the API shows of itself: Prometheus metrics only on their own listener, never on the public port; problem
details of server-side failures never echo what failed inside (exception text, SQL, hosts), only the request id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import pytest
from litestar import Litestar, get
from litestar.exceptions import HTTPException
from litestar.testing import AsyncTestClient

from api.app import serve_metrics
from api.errors import EXCEPTION_HANDLERS
from api.middleware import RequestContextMiddleware
from cli.seed import SeedResult
from core.errors import Unavailable
from core.ports import free_port
from core.settings import Settings
from tests.api.conftest import Actor
from tests.api.test_live_stream import ServedApi

pytestmark = pytest.mark.integration

SECRET = "10.9.8.7:5432 password=hunter2 /var/lib/vigie/internal"


async def test_metrics_are_not_on_the_api_port(client: AsyncTestClient[Litestar], actors: dict[str, Actor]) -> None:
    admin = actors["admin@valdoise.demo"]
    for headers in ({}, admin.headers):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code in (401, 404), response.text
        assert "vigie_api_request" not in response.text
    document = (await client.get("/schema/openapi.json")).json()
    assert "/metrics" not in document["paths"]


async def test_metrics_are_served_on_their_own_listener(client: AsyncTestClient[Litestar]) -> None:
    await client.get("/healthz")
    bound = serve_metrics("127.0.0.1:0")
    assert bound is not None
    async with httpx2.AsyncClient(timeout=5) as scraper:
        scraped = await scraper.get(f"http://127.0.0.1:{bound[1]}/metrics")
    assert scraped.status_code == 200
    assert "vigie_api_request_duration_seconds" in scraped.text
    assert serve_metrics("") is None


async def test_the_api_process_serves_metrics_apart(api_settings: Settings, seeded: SeedResult,
                                                    tmp_path: Path) -> None:
    port = free_port()
    api = ServedApi(api_settings, tmp_path / "api.log")
    api.env["VIGIE_API__METRICS_ADDRESS"] = f"127.0.0.1:{port}"
    api.start()
    try:
        async with httpx2.AsyncClient(timeout=5) as http:
            assert (await http.get(f"{api.url}/healthz")).status_code == 200
            public = await http.get(f"{api.url}/metrics")
            scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        api.stop()
    assert public.status_code in (401, 404)
    assert "vigie_" not in public.text
    assert scraped.status_code == 200
    assert 'vigie_api_request_duration_seconds_count{method="GET",route="/healthz",status="200"}' in scraped.text


# --- problem details of internal failures

@get("/boom/bug", sync_to_thread=False)
def bug() -> None:
    raise RuntimeError(f"bug while handling {SECRET}")


@get("/boom/database", sync_to_thread=False)
def database() -> None:
    raise asyncpg.exceptions.UndefinedColumnError(f'column "secret_internal_column" does not exist ({SECRET})')


@get("/boom/dependency")
async def dependency() -> None:
    try:
        raise ConnectionRefusedError(f"connect to {SECRET} refused")
    except OSError as exc:
        raise Unavailable(f"database unreachable: {exc}") from exc


@get("/boom/framework", sync_to_thread=False)
def framework() -> None:
    raise HTTPException(status_code=500, detail=f"serializer failed on {SECRET}")


@get("/boom/written", sync_to_thread=False)
def written() -> None:
    raise Unavailable("the alerts stream does not exist yet: the live queue is unavailable")


@pytest.fixture
async def failing() -> Any:
    app = Litestar(route_handlers=[bug, database, dependency, framework, written],
                   exception_handlers=EXCEPTION_HANDLERS, middleware=[RequestContextMiddleware])
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.mark.parametrize(("path", "status"), [("/boom/bug", 500), ("/boom/database", 500),
                                              ("/boom/dependency", 503), ("/boom/framework", 500)])
async def test_internal_failures_answer_a_generic_detail_with_the_request_id(
    failing: AsyncTestClient[Litestar], path: str, status: int,
) -> None:
    response = await failing.get(path, headers={"x-request-id": "req-0123456789"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["request_id"] == "req-0123456789"
    assert "req-0123456789" in body["detail"]
    for leaked in ("hunter2", "10.9.8.7", "/var/lib", "secret_internal_column", "serializer", "bug while"):
        assert leaked not in response.text, (leaked, body)


async def test_a_failure_written_for_the_caller_keeps_its_detail(failing: AsyncTestClient[Litestar]) -> None:
    response = await failing.get("/boom/written")
    assert response.status_code == 503
    assert response.json()["detail"] == "the alerts stream does not exist yet: the live queue is unavailable"
