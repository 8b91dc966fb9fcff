"""Detections to dispatch on real Postgres and NATS: engine, operator API, RLS for municipal police, outbox relay,
responders' statuses, escalation timers, evaluation, main courante, dead-letter of bad input."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from nats.js.api import DeliverPolicy

from alerts.engine import AlertEngine
from alerts.escalation import EscalationDispatcher
from alerts.events import ALERT_EVENTS
from alerts.repository import ALERT_OUTBOX
from cli.seed import SeedResult
from core.bus import DEAD_LETTERED, Bus, ConsumerSpec, Reject
from core.db import Database
from core.events import EventCodec
from core.ids import new_id
from core.outbox import OutboxRelay
from inference.events import DETECTION_EVENTS, CameraWentOffline, RuleTriggered
from mobile_push.events import PushDelivered, ResponderStatusReported
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration

OP1, OP2, SUP = "operateur1@valdoise.demo", "operateur2@valdoise.demo", "superviseur@valdoise.demo"
PM, GENDARME, POLICIER = "pm@marines.demo", "gendarme@marines.demo", "policier@cergy.demo"


def hit(demo: SeedResult, tenant: str, camera: str, rule_type: str, legal: str | None, tracks: tuple[int, ...],
        ) -> RuleTriggered:
    return RuleTriggered(tenant_id=demo.tenants[tenant], camera_id=demo.cameras[camera], rule_id=uuid.uuid4(),
                         rule_type=rule_type, legal_event_type=legal, zone_id=None, track_ids=tracks,
                         boxes=((0.1, 0.1, 0.3, 0.6),) * len(tracks), labels=("Person",) * len(tracks),
                         scores=(0.9,) * len(tracks), detail="test", snapshot_key="snapshots/x.jpg")


async def act(client: AsyncTestClient[Litestar], actor: Actor, alert_id: uuid.UUID, action: str,
              body: dict[str, object] | None = None) -> tuple[int, object]:
    response = await client.post(f"/alerts/{alert_id}/{action}", json=body, headers=actor.headers)
    return response.status_code, response.json() if response.content else None


async def test_engine_dedupes_is_idempotent_and_rejects_unknown_cameras(db: Database, demo: SeedResult) -> None:
    engine = AlertEngine(db)
    first = hit(demo, "cergy", "c4", "abandoned_object", "abandoned_object", (101,))
    alert_id = await engine.handle(first)
    assert alert_id is not None
    assert await engine.handle(first) is None  # redelivery: nothing new
    same_track = hit(demo, "cergy", "c4", "abandoned_object", "abandoned_object", (101,))
    assert await engine.handle(same_track) == alert_id
    async with db.for_tenants([demo.tenants["cergy"]]) as conn:
        row = await conn.fetchrow("SELECT occurrences, state FROM alerts WHERE id = $1", alert_id)
        outbox = await conn.fetchval(
            "SELECT count(*) FROM alert_outbox WHERE convert_from(payload, 'UTF8') LIKE '%' || $1 || '%'",
            str(alert_id))
    assert row is not None
    assert row["occurrences"] == 2
    assert row["state"] == "new"
    assert outbox == 1  # one AlertRaised, written with the alert
    foreign_camera = hit(demo, "cergy", "c6", "intrusion", "forbidden_zone", (1,))  # c6 is Marines' camera
    with pytest.raises(Reject):
        await engine.handle(foreign_camera)
    with pytest.raises(Reject):
        await engine.handle(RuleTriggered(**{**{f: getattr(first, f) for f in first.__struct_fields__},
                                             "event_id": new_id(), "camera_id": uuid.uuid4()}))


async def test_operator_workflow_routing_rls_relay_and_escalation(
    db: Database, department_pool: asyncpg.Pool, demo: SeedResult, alerts_client: AsyncTestClient[Litestar],
    people: dict[str, Actor], bus: Bus,
) -> None:
    client = alerts_client
    engine = AlertEngine(db)
    marines = await engine.handle(hit(demo, "marines", "c7", "person_on_ground", "person_on_ground", (7,)))
    cergy = await engine.handle(hit(demo, "cergy", "c5", "wrong_way", "wrong_way", (8,)))
    assert marines is not None
    assert cergy is not None

    queue = await client.get("/alerts", headers=people[OP1].headers)
    assert queue.status_code == 200
    assert {str(marines), str(cergy)} <= {a["id"] for a in queue.json()["items"]}
    # The AI output is a signalement d'attention: no officer sees it before a human sent it.
    for email in (PM, GENDARME):
        assert (await client.get(f"/alerts/{marines}", headers=people[email].headers)).status_code == 404

    assert (await act(client, people[OP1], marines, "claim"))[0] == 200
    status, body = await act(client, people[OP2], marines, "claim")
    assert status == 409, body
    status, body = await act(client, people[OP1], marines, "dispatch", {"force_ids": [str(demo.forces["sdis"])]})
    assert status == 409, body  # not verified yet
    status, body = await act(client, people[OP1], marines, "verify", {"media": "snapshot", "motive": ""})
    assert status == 400, body
    status, body = await act(client, people[OP1], marines, "verify",
                             {"media": "snapshot", "motive": "levée de doute sur signalement"})
    assert status == 200, body
    assert body["state"] == "verified", body  # type: ignore[index]

    forces = await client.get(f"/alerts/{marines}/competent-forces", headers=people[OP1].headers)
    assert {f["kind"] for f in forces.json()} == {"gendarmerie", "police_municipale", "sdis"}
    status, body = await act(client, people[OP1], marines, "dispatch",
                             {"force_ids": [str(demo.forces["pn_cergy"])]})
    assert status == 422, body  # police nationale of Cergy is not competent in Marines
    status, body = await act(client, people[OP1], marines, "dispatch",
                             {"force_ids": [str(demo.forces["gn_marines"]), str(demo.forces["pm_marines"])]})
    assert status == 200, body
    assert len(body) == 2, body  # type: ignore[arg-type]
    status, body = await act(client, people[OP1], marines, "dispatch",
                             {"force_ids": [str(demo.forces["pm_marines"])]})
    assert status == 409, body  # the same force is never paged twice for one alert

    # Officers now see it; the municipal police sees only its commune, enforced by RLS even with a forged dispatch.
    assert (await client.get(f"/alerts/{marines}", headers=people[PM].headers)).status_code == 200
    assert (await client.get(f"/alerts/{marines}", headers=people[GENDARME].headers)).status_code == 200
    assert (await client.get(f"/alerts/{marines}", headers=people[POLICIER].headers)).status_code == 404
    async with department_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO dispatches (id, tenant_id, alert_id, force_id, force_kind, urgency, ttl_s) "
            "VALUES ($1, $2, $3, $4, 'police_municipale', 'urgent', 60)",
            new_id(), demo.tenants["cergy"], cergy, demo.forces["pm_marines"])
    assert (await client.get(f"/alerts/{cergy}", headers=people[PM].headers)).status_code == 404
    pm_queue = (await client.get("/alerts", headers=people[PM].headers)).json()["items"]
    assert [a["id"] for a in pm_queue] == [str(marines)]
    async with db.for_tenants([demo.tenants["marines"]]) as conn:
        seen = await conn.fetchval("SELECT count(*) FROM alerts WHERE tenant_id = $1", demo.tenants["cergy"])
    assert seen == 0

    # The relay publishes what was committed, with Nats-Msg-Id = event id; a republish is a server duplicate.
    sub = await bus.js.subscribe(f"alerts.{demo.tenants['marines']}.>", stream="ALERTS", ordered_consumer=True,
                                 deliver_policy=DeliverPolicy.ALL)
    relay = OutboxRelay(db, bus, ALERT_OUTBOX)
    while await relay.relay_once():
        pass
    codec = EventCodec(*ALERT_EVENTS)
    kinds: dict[str, list[object]] = {}
    deadline = asyncio.get_running_loop().time() + 5
    while asyncio.get_running_loop().time() < deadline and len(kinds.get("DispatchOrdered", [])) < 2:
        try:
            msg = await sub.next_msg(timeout=1)
        except TimeoutError:
            continue
        event = codec.decode(msg.data)
        assert msg.headers is not None
        assert msg.headers["Nats-Msg-Id"] == str(event.event_id)
        if getattr(event, "alert_id", None) == marines:
            kinds.setdefault(type(event).__name__, []).append(event)
    await sub.unsubscribe()
    orders = kinds["DispatchOrdered"]
    assert {o.force_kind for o in orders} == {"gendarmerie", "police_municipale"}  # type: ignore[attr-defined]
    assert "AlertRaised" in kinds
    assert "AlertStateChanged" in kinds
    async with department_pool.acquire() as conn:
        # The newest sent row: the server remembers message ids for its duplicate window only.
        row = await conn.fetchrow(
            "SELECT id, subject, payload FROM alert_outbox WHERE sent_at IS NOT NULL ORDER BY sent_at DESC LIMIT 1"
        )
        assert row is not None
        ack = await bus.publish_encoded(row["subject"], bytes(row["payload"]), msg_id=str(row["id"]))
        assert ack.duplicate

    # Responders: a receipt and an acknowledgement from the gendarme's phone; then the PM's receipt never comes.
    gn = next(o for o in orders if o.force_kind == "gendarmerie")  # type: ignore[attr-defined]
    pm = next(o for o in orders if o.force_kind == "police_municipale")  # type: ignore[attr-defined]
    escalation = EscalationDispatcher(db)
    officer = uuid.uuid4()
    delivered = PushDelivered(tenant_id=demo.tenants["marines"], dispatch_id=gn.dispatch_id, alert_id=marines,
                              officer_id=officer, device_id=uuid.uuid4())
    await escalation.handle_push(delivered)
    await escalation.handle_push(delivered)  # redelivered: recorded once
    await escalation.handle_push(ResponderStatusReported(
        tenant_id=demo.tenants["marines"], dispatch_id=gn.dispatch_id, alert_id=marines, officer_id=officer,
        device_id=None, status="acknowledged"))  # type: ignore[arg-type]
    responders = (await client.get(f"/alerts/{marines}/responders", headers=people[OP1].headers)).json()
    assert [s["status"] for s in responders["statuses"]] == ["delivered", "acknowledged"]
    # Each new status goes to the operators' live queue on the alert's stream, once (the redelivery adds none).
    async with department_pool.acquire() as conn:
        relayed = await conn.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb AS event FROM alert_outbox WHERE subject = $1 "
            "AND convert_from(payload, 'UTF8')::jsonb ->> 'alert_id' = $2 ORDER BY seq",
            f"alerts.{demo.tenants['marines']}.responder_status", str(marines))
    assert [(json.loads(r["event"])["status"], json.loads(r["event"])["dispatch_id"]) for r in relayed] == [
        ("delivered", str(gn.dispatch_id)), ("acknowledged", str(gn.dispatch_id))]
    assert {d["force_kind"]: d["status"] for d in responders["dispatches"]}["gendarmerie"] == "acknowledged"
    async with department_pool.acquire() as conn:
        await conn.execute("UPDATE escalation_timers SET due_at = now() - interval '1 second' WHERE alert_id = $1",
                           marines)
    assert await escalation.fire_due() == 2  # the PM's receipt and acknowledgement; the gendarme's were cancelled
    async with department_pool.acquire() as conn:
        pm_row = await conn.fetchrow("SELECT escalation_level, call_force_prompt_at FROM dispatches WHERE id = $1",
                                     pm.dispatch_id)
        journaled = await conn.fetchval(
            "SELECT count(*) FROM access_journal WHERE action = 'alert.escalated' AND target_id = $1",
            str(pm.dispatch_id))
        motive = await conn.fetchval(
            "SELECT motive FROM access_journal WHERE action = 'media.snapshot' AND target_id = $1", str(marines))
    assert pm_row is not None
    assert pm_row["escalation_level"] == 1
    assert pm_row["call_force_prompt_at"] is not None
    assert journaled == 2
    assert motive == "levée de doute sur signalement"
    breaches = (await client.get("/alerts/sla-breaches", headers=people[SUP].headers)).json()
    assert any(b["alert_id"] == str(marines) and b["kind"] == "force_unacknowledged" for b in breaches)

    # Close, then every action is refused; the other alert is dismissed as a false positive and counted.
    status, body = await act(client, people[OP1], marines, "close", {"outcome": "intervention_done"})
    assert status == 200, body
    for action, payload in (("claim", None), ("dismiss", {"reason": "test"}), ("close", {"outcome": "other"})):
        assert (await act(client, people[OP1], marines, action, payload))[0] == 409
    assert (await act(client, people[OP2], cergy, "dismiss", {"reason": "false_positive"}))[0] == 200
    precision = (await client.get("/alerts/precision?group_by=rule", headers=people[SUP].headers)).json()
    rows = {r["key"]: r for r in precision}
    assert rows["person_on_ground"]["true_positives"] >= 1
    assert rows["wrong_way"]["false_positives"] >= 1
    communes = {r["key"] for r in (await client.get("/alerts/precision?group_by=commune",
                                                    headers=people[SUP].headers)).json()}
    assert {"95370", "95127"} <= communes

    # Main courante: every action above wrote its line; a free entry and a handover.
    entry = await client.post("/logbook", json={"text": "Ronde PM signalée place du marché"},
                              headers=people[OP1].headers)
    assert entry.status_code == 201, entry.text
    lines = (await client.get("/logbook?limit=200", headers=people[OP1].headers)).json()["items"]
    actions = {line["action"] for line in lines if line["alert_id"] == str(marines)}
    assert {"alert.raised", "alert.claim", "alert.verify", "alert.dispatch", "alert.close",
            "escalation.call_force_by_phone", "responder.acknowledged"} <= actions
    handover = await client.post("/logbook/handovers", json={"notes": "RAS"}, headers=people[OP2].headers)
    assert handover.status_code == 201
    assert handover.json()["summary"]["free_entries"] >= 1
    assert (await client.get(f"/alerts/{marines}", headers=people[PM].headers)).status_code == 200


async def test_bad_events_are_dead_lettered_with_reason(db: Database, demo: SeedResult, bus: Bus) -> None:
    engine = AlertEngine(db)
    tenant, camera = demo.tenants["cergy"], demo.cameras["c4"]
    subject = f"detections.{tenant}.{camera}"
    future = CameraWentOffline(tenant_id=tenant, camera_id=camera, reason="x", schema_version=99)
    unknown = CameraWentOffline(tenant_id=uuid.uuid4(), camera_id=uuid.uuid4(), reason="x")
    for payload, msg_id in ((b"{not json", "bad-1"), (EventCodec.encode(future), "bad-2"),
                            (EventCodec.encode(unknown), "bad-3")):
        await bus.publish_encoded(subject, payload, msg_id=f"{msg_id}-{uuid.uuid4()}")
    before = sum(s.value for m in DEAD_LETTERED.collect() for s in m.samples if s.name.endswith("_total"))
    stop = asyncio.Event()
    spec = ConsumerSpec("DETECTIONS", f"alerts-dlq-{uuid.uuid4().hex[:6]}", f"detections.{tenant}.{camera}")
    task = asyncio.create_task(bus.consume(spec, EventCodec(*DETECTION_EVENTS), engine.on_event, stop=stop))
    dlq = await bus.js.subscribe(f"deadletter.DETECTIONS.{spec.durable}", stream="DEADLETTER", ordered_consumer=True)
    reasons = []
    try:
        for _ in range(3):
            msg = await dlq.next_msg(timeout=10)
            assert msg.headers is not None
            reasons.append(msg.headers["Vigie-Reason"])
    finally:
        stop.set()
        await task
        await dlq.unsubscribe()
    after = sum(s.value for m in DEAD_LETTERED.collect() for s in m.samples if s.name.endswith("_total"))
    assert after - before == 3
    assert any("malformed" in r for r in reasons)
    assert any("schema_version 99" in r for r in reasons)
    assert any("unknown camera" in r for r in reasons)
    _ = datetime.now(UTC)
