"""The operators' live queue (`GET /alerts/stream`, Server-Sent Events) served by the real API process
(`python -m api`, uvicorn) on the test database and the session's nats-server: an alert event published on the
ALERTS stream, as the outbox relay publishes it, reaches a signed-in operator within seconds; events of tenants
outside the operator's scope are not sent; roles other than the operators' and unauthenticated clients are refused
with problem+json; keep-alives are comments, not empty messages; the server drops its NATS subscription when the
client goes away; without the ALERTS stream the endpoint answers 503 problem+json instead of a 200 whose body breaks
off; and an open stream does not keep the server from stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from alerts.events import ALERTS_STREAM, AlertRaised, subject_for
from api.__main__ import SHUTDOWN_GRACE_S
from api.routes.alerts import HEARTBEAT_S
from cli.seed import SeedResult
from core.bus import Bus
from core.embedded import NatsServerProcess
from core.ports import free_port
from core.settings import PROJECT_ROOT, Settings
from tests.api.conftest import sign_in
from tests.processes import ModuleProcess

pytestmark = pytest.mark.integration

OPERATOR = "operateur2@valdoise.demo"
MUNICIPAL_OFFICER = "pm@marines.demo"  # police municipale of Marines: the alert below is in Cergy
ARRIVAL_TIMEOUT_S = 5.0


class ServedApi(ModuleProcess):
    """`python -m api` as a child process on a free port, its output in a log file."""

    def __init__(self, settings: Settings, log_path: Path, *, nats_url: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        nats = settings.nats.model_copy(update={"url": nats_url or settings.nats.url})
        env = settings.model_copy(update={"nats": nats}).child_env(
            VIGIE_ENVIRONMENT="test", VIGIE_LOG_LEVEL="WARNING", VIGIE_API__HOST="127.0.0.1",
            VIGIE_API__PORT=str(self.port),
            # Other suites of the run sign in from the same address; one operator token serves the whole module.
            VIGIE_AUTH__LOGIN_RATE_PER_IP_PER_MINUTE="10000", VIGIE_AUTH__ACCESS_TTL_S=str(settings.auth.access_ttl_s))
        super().__init__("api", env, log_path)

    def start(self, timeout_s: float = 60.0) -> None:
        super().start()
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"python -m api exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                # Ready means Postgres and NATS answer: the live queue needs the bus.
                if httpx2.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"python -m api not ready after {timeout_s} s:\n{self.tail()}")


@contextmanager
def served_console(settings: Settings, log_dir: Path,
                   env: Callable[[str], dict[str, str]] = lambda _url: {}) -> Iterator[ServedApi]:
    """`python -m api` serving the built console (make console); `env` gives settings that depend on its address."""
    if not (PROJECT_ROOT / "console" / "dist" / "index.html").is_file():
        pytest.fail("console/dist is missing: run make console")
    server = ServedApi(settings, log_dir / "api.log")
    server.env.update(env(server.url))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def served_api(api_settings: Settings, seeded: SeedResult, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[ServedApi]:
    server = ServedApi(api_settings, tmp_path_factory.mktemp("served-api") / "api.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def operator(served_api: ServedApi, seeded: SeedResult) -> dict[str, str]:
    """The operator signed in once through the served API: each TOTP step opens one session only, and the module's
    other API processes accept the token (same database, same keys)."""
    async with httpx2.AsyncClient(base_url=served_api.url, timeout=10) as client:
        return await _bearer(client, seeded, OPERATOR)


@pytest.fixture
async def alerts_bus(settings: Settings) -> AsyncIterator[Bus]:
    bus = await Bus.connect(settings.nats.url, name="live-stream-tests")
    # The alerts process declares it in production; the stream endpoint consumes it.
    await bus.provision_stream(ALERTS_STREAM)
    yield bus
    await bus.close()


def _totp_secret(seeded: SeedResult, email: str) -> str | None:
    return next(u.totp_secret for u in seeded.users if u.email == email)


async def _bearer(client: httpx2.AsyncClient, seeded: SeedResult, email: str) -> dict[str, str]:
    # The helper only posts JSON: a plain httpx2 client against the served API does the same.
    body = await sign_in(client, email, totp_secret=_totp_secret(seeded, email))  # type: ignore[arg-type]
    return {"authorization": f"Bearer {body['access_token']}"}


async def _sse(response: httpx2.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) of each event of a text/event-stream, as a browser's EventSource dispatches them, and
    (":", text) of each comment line."""
    kind, data = "message", list[str]()
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield kind, "\n".join(data)
            kind, data = "message", []
        elif line.startswith(":"):
            yield ":", line[1:].strip()
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                kind = value
            elif field == "data":
                data.append(value)


def _raised(tenant_id: uuid.UUID, camera_id: uuid.UUID) -> AlertRaised:
    return AlertRaised(tenant_id=tenant_id, alert_id=uuid.uuid4(), camera_id=camera_id, rule_type="intrusion",
                       legal_event_type="forbidden_zone", severity=3, priority=30, source_event_id=uuid.uuid4())


async def _api_subscriptions(nats: NatsServerProcess) -> int:
    """Consumer subscriptions the API process holds on the nats-server (monitoring endpoint); the wildcard inbox
    that nats-py opens once for all its request/replies is left out."""
    async with httpx2.AsyncClient(timeout=5) as monitor:
        connz = (await monitor.get(f"http://127.0.0.1:{nats.monitor_port}/connz", params={"subs": 1})).json()
    return sum(1 for c in connz.get("connections", []) if c.get("name") == "vigie-api"
               for subject in c.get("subscriptions_list", []) if not subject.endswith(".*"))


async def test_operator_receives_alerts_of_their_scope_live_and_the_subscription_ends_with_the_client(
    served_api: ServedApi, seeded: SeedResult, operator: dict[str, str], alerts_bus: Bus,
    nats_server: NatsServerProcess,
) -> None:
    async with httpx2.AsyncClient(base_url=served_api.url, timeout=10) as client:
        before = await _api_subscriptions(nats_server)
        async with client.stream("GET", "/alerts/stream", headers=operator,
                                 timeout=httpx2.Timeout(10, read=30)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-accel-buffering"] == "no"  # reverse proxies must not hold events back
            events = _sse(response)
            # "ready" is sent once the server's NATS subscription exists: anything published from now on is due.
            assert (await asyncio.wait_for(anext(events), ARRIVAL_TIMEOUT_S))[0] == "ready"
            assert await _api_subscriptions(nats_server) == before + 1

            # Magny-en-Vexin does not subscribe to live supervision, and the other tenant is of no department
            # here: neither is in the operator's scope. Published first, so that the ordered stream would deliver
            # them before the Cergy alert if the scope filter let them through.
            out_of_scope = [_raised(seeded.tenants["magny"], seeded.cameras["c8"]),
                            _raised(uuid.uuid4(), uuid.uuid4())]
            in_scope = _raised(seeded.tenants["cergy"], seeded.cameras["c4"])
            published_at = time.perf_counter()
            for event in [*out_of_scope, in_scope]:
                await alerts_bus.publish(subject_for(event), event)
            kind, data = await asyncio.wait_for(anext(events), ARRIVAL_TIMEOUT_S)
            arrival_ms = (time.perf_counter() - published_at) * 1000
            assert kind == "raised", (kind, data)
            received = json.loads(data)
            assert received["alert_id"] == str(in_scope.alert_id), received
            assert received["tenant_id"] == str(seeded.tenants["cergy"])
            print(f"\nlive queue: AlertRaised published → SSE event received by the operator in {arrival_ms:.1f} ms")

            # Until the next keep-alive nothing else comes, not even an out-of-scope event published now; the
            # keep-alive is a comment only, so the next thing a browser sees is the next alert of the operator's.
            late = _raised(seeded.tenants["magny"], seeded.cameras["c8"])
            await alerts_bus.publish(subject_for(late), late)
            assert await asyncio.wait_for(anext(events), HEARTBEAT_S + 5) == (":", "keep-alive")
            after = _raised(seeded.tenants["marines"], seeded.cameras["c6"])
            await alerts_bus.publish(subject_for(after), after)
            kind, data = await asyncio.wait_for(anext(events), ARRIVAL_TIMEOUT_S)
            assert (kind, json.loads(data)["alert_id"]) == ("raised", str(after.alert_id)), (kind, data)

        # The client went away: the server's NATS subscription for that stream goes too.
        for _ in range(50):  # up to 10 s
            if (left := await _api_subscriptions(nats_server)) == before:
                break
            await asyncio.sleep(0.2)
        assert left == before, f"{left - before} NATS subscription(s) left behind by a closed stream"


async def test_live_stream_refuses_other_roles_and_unauthenticated_clients(
    served_api: ServedApi, seeded: SeedResult,
) -> None:
    async with httpx2.AsyncClient(base_url=served_api.url, timeout=10) as client:
        anonymous = await client.get("/alerts/stream")
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.headers["content-type"].startswith("application/problem+json")
        assert anonymous.json()["status"] == 401
        forged = await client.get("/alerts/stream", headers={"authorization": "Bearer not-a-token"})
        assert forged.status_code == 401, forged.text
        assert forged.headers["content-type"].startswith("application/problem+json")
        # Officers get their alerts pushed to their phones once dispatched; the live queue of unverified
        # signalements is the operators' only, whatever the officer's commune.
        officer = await client.get("/alerts/stream", headers=await _bearer(client, seeded, MUNICIPAL_OFFICER))
        assert officer.status_code == 403, officer.text
        assert officer.headers["content-type"].startswith("application/problem+json")
        assert "text/event-stream" not in officer.headers["content-type"]


async def test_live_stream_answers_503_until_the_alerts_stream_exists(
    api_settings: Settings, operator: dict[str, str], tmp_path: Path,
) -> None:
    # A nats-server of this test only: on the session's, other suites have declared the ALERTS stream.
    nats = NatsServerProcess(store_dir=tmp_path / "nats")
    nats.start()
    api = ServedApi(api_settings, tmp_path / "api.log", nats_url=nats.url)
    try:
        api.start()
        async with httpx2.AsyncClient(base_url=api.url, timeout=10) as client:
            missing = await client.get("/alerts/stream", headers=operator)
            assert missing.status_code == 503, missing.text
            assert missing.headers["content-type"].startswith("application/problem+json")
            assert "alerts stream" in missing.json()["detail"]
            bus = await Bus.connect(nats.url, name="live-stream-tests")
            try:
                await bus.provision_stream(ALERTS_STREAM)  # what `vigie bus provision` does
            finally:
                await bus.close()
            async with client.stream("GET", "/alerts/stream", headers=operator) as response:
                assert response.status_code == 200
                assert (await asyncio.wait_for(anext(_sse(response)), ARRIVAL_TIMEOUT_S))[0] == "ready"
    finally:
        api.stop()
        nats.stop()


async def test_an_open_live_stream_does_not_hold_the_server_on_sigterm(
    api_settings: Settings, operator: dict[str, str], alerts_bus: Bus, tmp_path: Path,
) -> None:
    # A server of this test only: it is stopped while an operator watches the queue.
    api = ServedApi(api_settings, tmp_path / "api.log")
    try:
        api.start()
        assert api.proc is not None
        async with (
            httpx2.AsyncClient(base_url=api.url, timeout=10) as client,
            client.stream("GET", "/alerts/stream", headers=operator, timeout=httpx2.Timeout(10, read=60)) as response,
        ):
            events = _sse(response)
            assert (await asyncio.wait_for(anext(events), ARRIVAL_TIMEOUT_S))[0] == "ready"
            api.proc.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            with pytest.raises(httpx2.RemoteProtocolError):  # the server cuts the endless response
                await asyncio.wait_for(anext(events), SHUTDOWN_GRACE_S + 10)
            cut_after = time.monotonic() - stopping
        await asyncio.to_thread(api.proc.wait, SHUTDOWN_GRACE_S + 10)
        exited_after = time.monotonic() - stopping
    finally:
        api.stop()
    print(f"\nSIGTERM with a live stream open: stream cut after {cut_after:.1f} s, process exited after "
          f"{exited_after:.1f} s (grace {SHUTDOWN_GRACE_S} s)")
    # Once stopped, uvicorn re-raises the SIGTERM it handled: the exit status says SIGTERM either way; the time
    # says whether it waited for the client.
    assert exited_after < SHUTDOWN_GRACE_S + 5, api.tail()
    # uvicorn reports the stream it cancelled (CancelledError); the stream's own cleanup must not fail after it.
    assert "Exception caught after response started" not in api.log_path.read_text(errors="replace"), api.tail(80)
