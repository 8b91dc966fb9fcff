"""Devices, PKCE sign-in, the dispatcher against the local FCM endpoint (every error class), alarms, statuses."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx2
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from alerts.events import DispatchOrdered, Urgency
from cli.seed import DEMO_PASSWORD, SeedResult
from core.ids import new_id
from mobile_push.dispatcher import PushDispatcher
from mobile_push.fcm_endpoint import Fault, FcmEndpoint
from mobile_push.reference_client import ReferenceClient, SignInPage, SignInRefused, new_fcm_token
from tests.api.conftest import Actor
from tests.litestar_transport import TestClientTransport

pytestmark = pytest.mark.integration
PM, GENDARME, OPERATOR = "pm@marines.demo", "gendarme@marines.demo", "operateur1@valdoise.demo"

Phone = Callable[[str], "asyncio.Future[ReferenceClient]"]


@pytest.fixture
async def fcm_http(fcm: FcmEndpoint) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=fcm.url) as client:
        yield client


def new_phone(api: AsyncTestClient[Litestar], fcm_http: httpx2.AsyncClient) -> ReferenceClient:
    """The reference app, reaching the API in process through the test client."""
    return ReferenceClient.connect(str(api.base_url), fcm_http, transport=TestClientTransport(api))


# Phones registered by the running test; whatever it left (a failed assertion) is removed after it, so that the next
# test's orders to the same officers reach only its own phones.
_registered: list[ReferenceClient] = []


@pytest.fixture(autouse=True)
async def no_phone_outlives_its_test() -> AsyncIterator[None]:
    yield
    while _registered:
        client = _registered.pop()
        with contextlib.suppress(RuntimeError):  # already removed by the test (404)
            await client.remove()


async def phone(api: AsyncTestClient[Litestar], fcm_http: httpx2.AsyncClient, email: str) -> ReferenceClient:
    """A phone signed in through the platform's page (OAuth for native apps, DPoP-bound) with its device registered."""
    client = new_phone(api, fcm_http)
    async with client.browser() as browser:
        await client.sign_in(SignInPage(browser, email, DEMO_PASSWORD))
    await client.register()
    _registered.append(client)
    return client


def order(demo: SeedResult, force: str, camera: str = "c7", tenant: str = "marines", **extra: Any) -> DispatchOrdered:
    kind = {"pm_marines": "police_municipale", "gn_marines": "gendarmerie", "sdis": "sdis"}[force]
    return DispatchOrdered(
        tenant_id=demo.tenants[tenant], dispatch_id=new_id(), alert_id=new_id(), camera_id=demo.cameras[camera],
        force_id=demo.forces[force], force_kind=kind, urgency=Urgency.URGENT, ttl_s=120, **extra,  # type: ignore[arg-type]
    )


async def drain(dispatcher: PushDispatcher, pool: asyncpg.Pool, dispatch_id: uuid.UUID, timeout_s: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        await dispatcher.send_due()
        pending = await pool.fetchval(
            "SELECT count(*) FROM push_deliveries WHERE dispatch_id = $1 AND state = 'pending'", dispatch_id
        )
        if pending == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries still pending")


async def outbox(pool: asyncpg.Pool, dispatch_id: uuid.UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT subject FROM push_outbox WHERE convert_from(payload, 'UTF8')::jsonb ->> 'dispatch_id' = $1 "
        "ORDER BY created_at, id",
        str(dispatch_id),
    )
    return [r["subject"].rsplit(".", 1)[1] for r in rows]


async def journal(pool: asyncpg.Pool, action: str, target: object) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM access_journal WHERE action = $1 AND target_id = $2", action, str(target)
    ))


async def test_native_app_sign_in_and_device_registration_rules(
    alerts_client: AsyncTestClient[Litestar], fcm_http: httpx2.AsyncClient, people: dict[str, Actor],
    department_pool: asyncpg.Pool,
) -> None:
    api = alerts_client
    # The app signs in through the platform's page; a wrong password or a role's missing second factor gets no code.
    refused = new_phone(api, fcm_http)
    async with refused.browser() as browser:
        with pytest.raises(SignInRefused, match="incorrect"):
            await refused.sign_in(SignInPage(browser, PM, "wrong-password!"))
        with pytest.raises(SignInRefused, match="second factor"):
            await refused.sign_in(SignInPage(browser, OPERATOR, DEMO_PASSWORD))
    await refused.aclose()

    pm = await phone(api, fcm_http, PM)
    listed = await api.get("/devices", headers=pm.auth("GET", "/devices"))
    assert listed.status_code == 200
    assert pm.fcm_token not in listed.text
    assert "token" not in str(listed.json()["items"][0].keys() - {"token_refreshed_at"})
    assert str(pm.device_id) in listed.text
    duplicate = await api.post("/devices", json={"fcm_token": pm.fcm_token, "platform": "ios"},
                               headers=pm.auth("POST", "/devices"))
    assert duplicate.status_code == 409
    invalid = await api.post("/devices", json={"fcm_token": "not a token", "platform": "android"},
                             headers=pm.auth("POST", "/devices"))
    assert invalid.status_code == 422
    assert invalid.json()["field"] == "fcm_token"
    operator = await api.post("/devices", json={"fcm_token": new_fcm_token(), "platform": "android"},
                              headers=people[OPERATOR].headers)
    assert operator.status_code == 403
    refused_count = await department_pool.fetchval(
        "SELECT count(*) FROM access_journal WHERE action = 'device.register.refused' AND actor_user_id = "
        "(SELECT id FROM users WHERE email = $1)", PM)
    assert refused_count >= 2
    assert await journal(department_pool, "device.register", pm.device_id) == 1

    # Heartbeat, stale flag, token refresh; another officer (another force) cannot touch this device.
    await department_pool.execute("UPDATE push_devices SET last_seen_at = now() - interval '2 hours' WHERE id = $1",
                                  pm.device_id)
    listed_again = (await api.get("/devices", headers=pm.auth("GET", "/devices"))).json()["items"]
    stale = [d for d in listed_again if d["id"] == str(pm.device_id)]
    assert stale[0]["stale"] is True
    assert (await pm.heartbeat())["stale"] is False
    gendarme = await phone(api, fcm_http, GENDARME)
    foreign = await api.post(f"/devices/{pm.device_id}/heartbeat",
                             headers=gendarme.auth("POST", f"/devices/{pm.device_id}/heartbeat"))
    assert foreign.status_code == 404
    assert await journal(department_pool, "device.heartbeat.refused", pm.device_id) == 1
    new_token = new_fcm_token()
    refreshed = await api.put(f"/devices/{pm.device_id}/token", json={"fcm_token": new_token},
                              headers=pm.auth("PUT", f"/devices/{pm.device_id}/token"))
    assert refreshed.status_code == 200
    assert (await api.put(f"/devices/{pm.device_id}/token", json={"fcm_token": gendarme.fcm_token},
                          headers=pm.auth("PUT", f"/devices/{pm.device_id}/token"))).status_code == 409
    staff_view = await api.get("/devices?limit=200", headers=people[OPERATOR].headers)
    assert str(pm.device_id) in staff_view.text
    assert new_token not in staff_view.text
    for client in (pm, gendarme):
        await client.remove()


async def test_a_phones_device_answers_only_to_that_phones_key(
    alerts_client: AsyncTestClient[Litestar], fcm_http: httpx2.AsyncClient, department_pool: asyncpg.Pool,
) -> None:
    """Item 14 (phones): a device registered by a session bound to the phone's key answers only to that key: the same
    officer signed in elsewhere (a bearer session from /auth/login, another phone) cannot act for it."""
    api = alerts_client
    pm = await phone(api, fcm_http, PM)
    path = f"/devices/{pm.device_id}/heartbeat"
    listed = (await api.get("/devices", headers=pm.auth("GET", "/devices"))).json()["items"]
    assert [d["key_bound"] for d in listed if d["id"] == str(pm.device_id)] == [True]
    assert await department_pool.fetchval(
        "SELECT key_thumbprint FROM push_devices WHERE id = $1", pm.device_id) == pm.key.thumbprint()
    login = (await api.post("/auth/login", json={"email": PM, "password": DEMO_PASSWORD})).json()
    bearer = await api.post(path, headers={"authorization": f"Bearer {login['access_token']}"})
    assert bearer.status_code == 404
    other = await phone(api, fcm_http, PM)
    assert (await api.post(path, headers=other.auth("POST", path))).status_code == 404
    assert (await api.post(path, headers=pm.auth("POST", path))).status_code == 200
    for client in (pm, other):
        await client.remove()
        await client.aclose()


async def test_every_fcm_error_ends_in_the_right_state(
    alerts_client: AsyncTestClient[Litestar], fcm_http: httpx2.AsyncClient, clean_fcm: FcmEndpoint,
    dispatcher: PushDispatcher, demo: SeedResult, department_pool: asyncpg.Pool,
) -> None:
    faults = {
        "ok": [],
        "unregistered": [Fault("unregistered")],
        "sender_id_mismatch": [Fault("sender_id_mismatch")],
        "invalid_token": [Fault("invalid_token")],
        "invalid_payload": [Fault("invalid_payload")],
        "quota_exceeded": [Fault("quota_exceeded", retry_after_s=1)],
        "unavailable": [Fault("unavailable", times=2)],
        "internal": [Fault("internal")],
    }
    phones = {name: await phone(alerts_client, fcm_http, PM) for name in faults}
    for name, queued in faults.items():
        clean_fcm.state.faults[phones[name].fcm_token].extend(queued)
    sent = order(demo, "pm_marines")
    await dispatcher.handle(sent)
    await drain(dispatcher, department_pool, sent.dispatch_id)

    rows = {r["device_id"]: r for r in await department_pool.fetch(
        "SELECT l.device_id, l.state, l.attempts, v.removed_reason FROM push_deliveries l JOIN push_devices v "
        "ON v.id = l.device_id WHERE l.dispatch_id = $1", sent.dispatch_id)}
    state = {name: (rows[p.device_id]["state"], rows[p.device_id]["attempts"], rows[p.device_id]["removed_reason"])
             for name, p in phones.items()}
    assert state == {
        "ok": ("accepted", 1, None),
        "unregistered": ("failed", 1, "FCM UNREGISTERED"),
        "sender_id_mismatch": ("failed", 1, "FCM SENDER_ID_MISMATCH"),
        "invalid_token": ("failed", 1, "FCM INVALID_TOKEN"),
        "invalid_payload": ("failed", 1, None),  # our payload's fault: the token stays
        "quota_exceeded": ("accepted", 2, None),
        "unavailable": ("accepted", 3, None),
        "internal": ("accepted", 2, None),
    }
    attempts = await department_pool.fetch(
        "SELECT v.id AS device_id, a.attempt, a.started_at, a.error_code, a.retry_after_s FROM push_attempts a "
        "JOIN push_deliveries l ON l.id = a.delivery_id JOIN push_devices v ON v.id = l.device_id "
        "WHERE l.dispatch_id = $1 ORDER BY a.attempt", sent.dispatch_id)
    assert len(attempts) == sum(s[1] for s in state.values())
    quota = [a for a in attempts if a["device_id"] == phones["quota_exceeded"].device_id]
    assert quota[0]["error_code"] == "QUOTA_EXCEEDED"
    assert quota[0]["retry_after_s"] == 1
    assert (quota[1]["started_at"] - quota[0]["started_at"]).total_seconds() >= 1  # Retry-After honoured
    http = [r for r in clean_fcm.state.received if r.token in {p.fcm_token for p in phones.values()}]
    assert len(http) == len(attempts)  # every HTTP request to FCM is an attempt on record
    for name in ("unregistered", "sender_id_mismatch", "invalid_token"):
        assert await journal(department_pool, "device.token_removed", phones[name].device_id) == 1
    events = await outbox(department_pool, sent.dispatch_id)
    assert events.count("accepted") == 4
    assert "failed" not in events
    # A redelivered order is recognised: nothing is sent twice.
    before = len(clean_fcm.state.received)
    await dispatcher.handle(sent)
    assert len(clean_fcm.state.received) == before
    for name in ("ok", "invalid_payload", "quota_exceeded", "unavailable", "internal"):
        await phones[name].remove()


async def test_unreachable_officers_and_incompetent_forces_fail_at_once(
    alerts_client: AsyncTestClient[Litestar], fcm_http: httpx2.AsyncClient, clean_fcm: FcmEndpoint,
    dispatcher: PushDispatcher, demo: SeedResult, department_pool: asyncpg.Pool,
) -> None:
    gendarme = await phone(alerts_client, fcm_http, GENDARME)
    clean_fcm.state.faults[gendarme.fcm_token].append(Fault("unregistered"))
    rejected = order(demo, "gn_marines")
    await dispatcher.handle(rejected)
    await drain(dispatcher, department_pool, rejected.dispatch_id)
    assert (await outbox(department_pool, rejected.dispatch_id)) == ["failed"]
    reason = await department_pool.fetchval(
        "SELECT convert_from(payload, 'UTF8')::jsonb ->> 'reason' FROM push_outbox WHERE "
        "convert_from(payload, 'UTF8')::jsonb ->> 'dispatch_id' = $1", str(rejected.dispatch_id))
    assert reason == "tokens_rejected"
    nobody = order(demo, "sdis")  # the SDIS has no officer account with a device
    await dispatcher.handle(nobody)
    assert await outbox(department_pool, nobody.dispatch_id) == ["failed"]
    # A municipal police is competent in its own commune only (law): a Cergy camera is refused.
    elsewhere = order(demo, "pm_marines", camera="c5", tenant="cergy")
    await dispatcher.handle(elsewhere)
    assert await outbox(department_pool, elsewhere.dispatch_id) == ["failed"]
    assert await journal(department_pool, "dispatch.refused", elsewhere.dispatch_id) == 1
    assert await department_pool.fetchval(
        "SELECT count(*) FROM push_deliveries WHERE dispatch_id = $1", elsewhere.dispatch_id) == 0


async def test_refused_credentials_raise_an_operator_alarm_and_recover(
    alerts_client: AsyncTestClient[Litestar], fcm_http: httpx2.AsyncClient, clean_fcm: FcmEndpoint,
    dispatcher: PushDispatcher, demo: SeedResult, department_pool: asyncpg.Pool, people: dict[str, Actor],
) -> None:
    pm = await phone(alerts_client, fcm_http, PM)
    clean_fcm.state.refuse_credentials = True
    clean_fcm.state.issued.clear()  # the cached access token is revoked too
    sent = order(demo, "pm_marines")
    await dispatcher.handle(sent)
    alarms = await alerts_client.get("/push/alarms", headers=people[OPERATOR].headers)
    assert alarms.status_code == 200
    assert [a["kind"] for a in alarms.json()] == ["credentials"]
    assert "invalid_grant" in alarms.json()[0]["detail"]
    assert (await alerts_client.get("/push/alarms", headers=pm.auth("GET", "/push/alarms"))).status_code == 403
    assert (await outbox(department_pool, sent.dispatch_id)) == []  # the alarm event names no dispatch
    assert await department_pool.fetchval(
        "SELECT count(*) FROM push_outbox WHERE subject LIKE 'push.%.health_alarm' AND sent_at IS NULL") >= 1
    row = await department_pool.fetchrow(
        "SELECT state, attempts FROM push_deliveries WHERE dispatch_id = $1 AND device_id = $2",
        sent.dispatch_id, pm.device_id)
    assert row is not None
    assert (row["state"], row["attempts"]) == ("pending", 1)
    clean_fcm.state.refuse_credentials = False
    await drain(dispatcher, department_pool, sent.dispatch_id)
    assert (await alerts_client.get("/push/alarms", headers=people[OPERATOR].headers)).json() == []
    assert "accepted" in await outbox(department_pool, sent.dispatch_id)
    await pm.remove()


async def test_receipts_and_statuses_are_validated_and_journaled(
    alerts_client: AsyncTestClient[Litestar], fcm_http: httpx2.AsyncClient, clean_fcm: FcmEndpoint,
    dispatcher: PushDispatcher, demo: SeedResult, department_pool: asyncpg.Pool, people: dict[str, Actor],
) -> None:
    api = alerts_client
    pm, gendarme = await phone(api, fcm_http, PM), await phone(api, fcm_http, GENDARME)
    sent = order(demo, "pm_marines")
    await dispatcher.handle(sent)
    (message,) = await pm.receive(wait_s=5)
    assert message["message"]["data"] == {"alert_id": str(sent.alert_id), "v": "1"}
    (view,) = await pm.fetch(message["message"]["data"]["alert_id"])
    assert view["dispatch_id"] == str(sent.dispatch_id)
    assert view["camera_name"] == "Place du marché"
    assert await journal(department_pool, "alert.fetch", sent.alert_id) == 1
    url = f"/mobile/dispatches/{sent.dispatch_id}/status"

    async def post(client: ReferenceClient, body: dict[str, Any]) -> int:
        return (await api.post(url, json=body, headers=client.auth("POST", url))).status_code

    mine = {"device_id": str(pm.device_id)}
    assert await post(pm, {"status": "delivered", **mine}) == 200
    assert await post(pm, {"status": "delivered", **mine}) == 409  # replay
    assert await post(pm, {"status": "en_route", **mine}) == 409  # out of order: not acknowledged yet
    assert await post(gendarme, {"status": "acknowledged"}) == 404  # not dispatched to the gendarme
    assert await post(pm, {"status": "acknowledged", "device_id": str(gendarme.device_id)}) == 422
    assert await post(pm, {"status": "acknowledged", **mine}) == 200
    assert await journal(department_pool, "dispatch.status.refused", sent.dispatch_id) == 4
    assert await journal(department_pool, "dispatch.status", sent.dispatch_id) == 2
    status = await department_pool.fetchval(
        "SELECT status FROM push_targets WHERE dispatch_id = $1", sent.dispatch_id)
    assert status == "acknowledged"
    events = await outbox(department_pool, sent.dispatch_id)
    # Events of one transaction share created_at; their order within it is not part of the contract.
    assert events[0] == "accepted"
    assert sorted(events[1:]) == ["delivered", "status_reported", "status_reported"]
    report = await api.get(f"/push/dispatches/{sent.dispatch_id}", headers=people[OPERATOR].headers)
    assert report.status_code == 200
    assert [r["status"] for r in report.json()["responders"]] == ["acknowledged"]
    assert [a["outcome"] for a in report.json()["attempts"]] == ["accepted"]
    report_path, fetch_path = f"/push/dispatches/{sent.dispatch_id}", f"/mobile/dispatches/{sent.dispatch_id}"
    assert (await api.get(report_path, headers=pm.auth("GET", report_path))).status_code == 403
    assert (await api.get(fetch_path, headers=gendarme.auth("GET", fetch_path))).status_code == 404
    # What the responder found comes with `closed`, and only with it.
    assert await post(pm, {"status": "en_route", "outcome": "people_found", **mine}) == 400
    assert await post(pm, {"status": "en_route", **mine}) == 200
    assert await post(pm, {"status": "on_scene", **mine}) == 200
    await pm.report(str(sent.dispatch_id), "closed", outcome="arrest_in_flagrante_delicto")
    outcomes = await department_pool.fetch(
        "SELECT status, outcome FROM push_receipts WHERE dispatch_id = $1 AND outcome IS NOT NULL", sent.dispatch_id)
    assert [(r["status"], r["outcome"]) for r in outcomes] == [("closed", "arrest_in_flagrante_delicto")]
    for client in (pm, gendarme):
        await client.remove()
