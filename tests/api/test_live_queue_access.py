"""The live queue (`GET /alerts/stream`) is authorised for as long as it is open, not only at connect: the caller is
re-resolved at every heartbeat and the stream ends at logout, revocation, lost habilitation and token expiry; a
session holds at most a few streams; every event carries its stream sequence as `id:` and a reconnect with
`Last-Event-ID` receives what it missed, in order, within the caller's tenants. Served by the real API process
(`python -m api`) with a one-second heartbeat."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx2
import pytest

from alerts.events import ALERTS_STREAM, AlertRaised, subject_for
from cli.seed import SeedResult
from core.bus import Bus
from core.settings import Settings
from tests.api.conftest import sign_in
from tests.api.test_live_stream import ServedApi

pytestmark = pytest.mark.integration

HEARTBEAT_S = 1.0
# The principal cache of the API process lets a revocation made elsewhere be seen within 5 s.
ENDS_WITHIN_S = HEARTBEAT_S + 5.0 + 3.0


@dataclass(frozen=True)
class Sse:
    event: str
    data: str
    id: str | None


async def _events(response: httpx2.Response) -> AsyncIterator[Sse]:
    """Events as a browser's EventSource dispatches them (comments included, as event ":")."""
    kind, data, event_id = "message", list[str](), None
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield Sse(kind, "\n".join(data), event_id)
            kind, data, event_id = "message", [], None
        elif line.startswith(":"):
            yield Sse(":", line[1:].strip(), None)
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value


async def _next_event(events: AsyncIterator[Sse], timeout_s: float) -> Sse:
    """The next event that is not a keep-alive."""
    deadline = time.monotonic() + timeout_s
    while True:
        event = await asyncio.wait_for(anext(events), max(0.1, deadline - time.monotonic()))
        if event.event != ":":
            return event


@pytest.fixture(scope="module")
def fast_api(api_settings: Settings, seeded: SeedResult, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[ServedApi]:
    server = ServedApi(api_settings, tmp_path_factory.mktemp("live-access") / "api.log")
    server.env.update({"VIGIE_API__LIVE_HEARTBEAT_S": str(HEARTBEAT_S), "VIGIE_API__LIVE_STREAMS_PER_SESSION": "3",
                       "VIGIE_API__METRICS_ADDRESS": ""})
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def alerts_bus(settings: Settings) -> AsyncIterator[Bus]:
    bus = await Bus.connect(settings.nats.url, name="live-access-tests")
    await bus.provision_stream(ALERTS_STREAM)
    yield bus
    await bus.close()


def _totp(seeded: SeedResult, email: str) -> str | None:
    return next(u.totp_secret for u in seeded.users if u.email == email)


async def _session(api: ServedApi, seeded: SeedResult, email: str) -> tuple[dict[str, str], dict[str, object]]:
    async with httpx2.AsyncClient(base_url=api.url, timeout=10) as client:
        body = await sign_in(client, email, totp_secret=_totp(seeded, email))  # type: ignore[arg-type]
    return {"authorization": f"Bearer {body['access_token']}"}, body


def _raised(tenant_id: uuid.UUID, camera_id: uuid.UUID) -> AlertRaised:
    return AlertRaised(tenant_id=tenant_id, alert_id=uuid.uuid4(), camera_id=camera_id, rule_type="intrusion",
                       legal_event_type="forbidden_zone", severity=3, priority=30, source_event_id=uuid.uuid4())


async def _ends(events: AsyncIterator[Sse], within_s: float) -> dict[str, str]:
    """The stream's closing `end` event, then the end of the body."""
    event = await _next_event(events, within_s)
    assert event.event == "end", event
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(events), 5)
    reason: dict[str, str] = json.loads(event.data)
    return reason


async def test_a_reconnect_with_last_event_id_receives_what_it_missed_in_order_and_in_scope(
    fast_api: ServedApi, seeded: SeedResult, alerts_bus: Bus, department_pool: asyncpg.Pool,
) -> None:
    headers, _ = await _session(fast_api, seeded, "operateur1@valdoise.demo")
    timeout = httpx2.Timeout(10, read=30)
    async with httpx2.AsyncClient(base_url=fast_api.url, timeout=10) as client:
        async with client.stream("GET", "/alerts/stream", headers=headers, timeout=timeout) as response:
            assert response.status_code == 200
            events = _events(response)
            assert (await _next_event(events, 5)).event == "ready"
            first = _raised(seeded.tenants["cergy"], seeded.cameras["c4"])
            await alerts_bus.publish(subject_for(first), first)
            seen = await _next_event(events, 5)
            assert json.loads(seen.data)["alert_id"] == str(first.alert_id)
            assert seen.id is not None
            assert seen.id.isdigit()

        # While the operator is away: two alerts of their scope, one of a tenant outside it (Magny-en-Vexin).
        missed = [_raised(seeded.tenants["marines"], seeded.cameras["c6"]),
                  _raised(seeded.tenants["magny"], seeded.cameras["c8"]),
                  _raised(seeded.tenants["cergy"], seeded.cameras["c5"])]
        for event in missed:
            await alerts_bus.publish(subject_for(event), event)

        resume = {**headers, "last-event-id": seen.id}
        async with client.stream("GET", "/alerts/stream", headers=resume, timeout=timeout) as response:
            assert response.status_code == 200
            events = _events(response)
            assert (await _next_event(events, 5)).event == "ready"
            got = [await _next_event(events, 5), await _next_event(events, 5)]
            assert [json.loads(e.data)["alert_id"] for e in got] == [str(missed[0].alert_id),
                                                                     str(missed[2].alert_id)]
            ids = [int(e.id or 0) for e in got]
            assert int(seen.id) < ids[0] < ids[1]

            # At most three streams per session: the fourth is refused while three are open.
            async with (
                client.stream("GET", "/alerts/stream", headers=headers, timeout=timeout) as second,
                client.stream("GET", "/alerts/stream", headers=headers, timeout=timeout) as third,
            ):
                assert (second.status_code, third.status_code) == (200, 200)
                fourth = await client.get("/alerts/stream", headers=headers)
                assert fourth.status_code == 429, fourth.text
                assert fourth.headers["content-type"].startswith("application/problem+json")
                assert "retry-after" in fourth.headers

            # Losing the habilitation (agrément) ends the open stream at the next heartbeat.
            user = await department_pool.fetchrow(
                "SELECT id, habilitation_expires_on FROM users WHERE email = 'operateur1@valdoise.demo'")
            assert user is not None
            await department_pool.execute("UPDATE users SET habilitation_expires_on = current_date - 1 WHERE id = $1",
                                          user["id"])
            try:
                assert "habilitation" in (await _ends(events, ENDS_WITHIN_S))["reason"]
            finally:
                await department_pool.execute("UPDATE users SET habilitation_expires_on = $2 WHERE id = $1",
                                              user["id"], user["habilitation_expires_on"])
        # The ended streams gave their slots back: three open again.
        statuses: list[int] = []
        for _ in range(20):
            try:
                async with (
                    client.stream("GET", "/alerts/stream", headers=headers, timeout=timeout) as r1,
                    client.stream("GET", "/alerts/stream", headers=headers, timeout=timeout) as r2,
                    client.stream("GET", "/alerts/stream", headers=headers, timeout=timeout) as r3,
                ):
                    statuses = [r.status_code for r in (r1, r2, r3)]
            except httpx2.RemoteProtocolError:
                # A kept-alive connection of an ended stream, closed by the server as the client reused it: the
                # transport's race, not a slot refused; the next round opens fresh connections.
                statuses = []
            if statuses == [200, 200, 200]:
                break
            await asyncio.sleep(0.5)
        assert statuses == [200, 200, 200]
        malformed = await client.get("/alerts/stream", headers={**headers, "last-event-id": "x1"})
        assert malformed.status_code == 422, malformed.text  # refused, not a 500
        assert malformed.json()["field"] == "Last-Event-ID"


async def test_a_client_that_drops_before_any_event_resumes_from_ready_and_misses_nothing(
    fast_api: ServedApi, seeded: SeedResult, alerts_bus: Bus,
) -> None:
    # A quiet night: the console connected, no alert came, the network dropped; an alert raised meanwhile must
    # reach it when it reconnects, though it never saw an event id.
    headers, _ = await _session(fast_api, seeded, "operateur2@valdoise.demo")
    timeout = httpx2.Timeout(10, read=30)
    async with httpx2.AsyncClient(base_url=fast_api.url, timeout=10) as client:
        async with client.stream("GET", "/alerts/stream", headers=headers, timeout=timeout) as response:
            ready = await _next_event(_events(response), 5)
        assert ready.event == "ready"
        assert ready.id is not None
        assert ready.id.isdigit(), ready

        while_away = _raised(seeded.tenants["cergy"], seeded.cameras["c5"])
        sequence = await alerts_bus.publish(subject_for(while_away), while_away)
        assert sequence > int(ready.id)

        resume = {**headers, "last-event-id": ready.id}
        async with client.stream("GET", "/alerts/stream", headers=resume, timeout=timeout) as response:
            events = _events(response)
            again = await _next_event(events, 5)
            assert (again.event, again.id) == ("ready", ready.id)
            missed = await _next_event(events, 5)
            assert (missed.event, json.loads(missed.data)["alert_id"]) == ("raised", str(while_away.alert_id))
            assert missed.id == str(sequence)


async def test_an_id_past_the_stream_end_starts_at_the_end_instead_of_waiting_for_it(
    fast_api: ServedApi, seeded: SeedResult, alerts_bus: Bus,
) -> None:
    # A console that saw sequence 10^12 of an ALERTS stream since restored from a backup (the sequences start
    # lower): it must get the next alert, not wait for the stream to reach its id.
    headers, _ = await _session(fast_api, seeded, "operateur2@valdoise.demo")
    resume = {**headers, "last-event-id": str(10**12)}
    async with (
        httpx2.AsyncClient(base_url=fast_api.url, timeout=10) as client,
        client.stream("GET", "/alerts/stream", headers=resume, timeout=httpx2.Timeout(10, read=30)) as response,
    ):
        events = _events(response)
        ready = await _next_event(events, 5)
        assert ready.event == "ready"
        assert ready.id is not None
        assert int(ready.id) < 10**12
        raised = _raised(seeded.tenants["marines"], seeded.cameras["c6"])
        sequence = await alerts_bus.publish(subject_for(raised), raised)
        arrived = await _next_event(events, 5)
        assert (arrived.event, arrived.id) == ("raised", str(sequence))
        assert json.loads(arrived.data)["alert_id"] == str(raised.alert_id)


async def test_logout_ends_an_open_stream(fast_api: ServedApi, seeded: SeedResult) -> None:
    headers, _ = await _session(fast_api, seeded, "superviseur@valdoise.demo")
    async with (
        httpx2.AsyncClient(base_url=fast_api.url, timeout=10) as client,
        client.stream("GET", "/alerts/stream", headers=headers, timeout=httpx2.Timeout(10, read=30)) as response,
    ):
        events = _events(response)
        assert (await _next_event(events, 5)).event == "ready"
        assert (await client.post("/auth/logout", headers=headers)).status_code == 204
        assert (await _ends(events, ENDS_WITHIN_S))["reason"]
        assert (await client.get("/alerts/stream", headers=headers)).status_code == 401


async def test_revocation_from_elsewhere_ends_an_open_stream(
    fast_api: ServedApi, seeded: SeedResult, department_pool: asyncpg.Pool,
) -> None:
    headers, body = await _session(fast_api, seeded, "admin@valdoise.demo")
    async with (
        httpx2.AsyncClient(base_url=fast_api.url, timeout=10) as client,
        client.stream("GET", "/alerts/stream", headers=headers, timeout=httpx2.Timeout(10, read=30)) as response,
    ):
        events = _events(response)
        assert (await _next_event(events, 5)).event == "ready"
        # Revoked by another API process (straight in the database: this process's cache does not know).
        await department_pool.execute("UPDATE auth_sessions SET revoked_at = now() WHERE id = $1",
                                      uuid.UUID(str(body["session_id"])))
        assert "session ended" in (await _ends(events, ENDS_WITHIN_S))["reason"]


async def test_the_stream_ends_when_the_access_token_expires(
    api_settings: Settings, seeded: SeedResult, tmp_path: Path,
) -> None:
    api = ServedApi(api_settings, tmp_path / "api.log")
    api.env.update({"VIGIE_AUTH__ACCESS_TTL_S": "4", "VIGIE_API__LIVE_HEARTBEAT_S": "30",
                    "VIGIE_API__METRICS_ADDRESS": ""})
    api.start()
    try:
        headers, _ = await _session(api, seeded, "operateur2@valdoise.demo")
        async with (
            httpx2.AsyncClient(base_url=api.url, timeout=10) as client,
            client.stream("GET", "/alerts/stream", headers=headers, timeout=httpx2.Timeout(10, read=60)) as response,
        ):
            assert response.status_code == 200
            events = _events(response)
            assert (await _next_event(events, 5)).event == "ready"
            opened = time.monotonic()
            # Long before the 30 s heartbeat: at the token's expiry.
            assert "expired" in (await _ends(events, 10))["reason"]
            assert time.monotonic() - opened < 8
    finally:
        api.stop()
