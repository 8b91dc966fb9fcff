"""The engine's batch path on real Postgres: the same alerts as one event at a time, per-event rejections, redelivery,
auto-dispatch rows and outbox order, direct publish after commit, and isolation of an event that fails the batch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from alerts.engine import AlertEngine
from alerts.events import ALERT_EVENTS
from alerts.repository import ALERT_OUTBOX
from cli.seed import SeedResult
from core.bus import Bus, Reject
from core.db import Database
from core.events import EventCodec
from core.outbox import OutboxRelay, OutboxRow
from inference.events import RuleTriggered

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def event(demo: SeedResult, tenant: str, camera: str, rule_type: str, tracks: tuple[int, ...], at_s: float,
          detail: str = "batch test") -> RuleTriggered:
    return RuleTriggered(tenant_id=demo.tenants[tenant], camera_id=demo.cameras[camera], rule_id=uuid.uuid4(),
                         rule_type=rule_type, legal_event_type=None, zone_id=None, track_ids=tracks,
                         boxes=((0.1, 0.1, 0.3, 0.6),) * len(tracks), labels=("Person",) * len(tracks),
                         scores=(0.9,) * len(tracks), detail=detail, occurred_at=T0 + timedelta(seconds=at_s))


def scenario(demo: SeedResult, rule_type: str) -> list[RuleTriggered]:
    """Fallback policy (dedupe 120 s on a shared track, cooldown 60 s): folds within and across the list."""
    return [
        event(demo, "cergy", "c4", rule_type, (1,), 0),
        event(demo, "cergy", "c4", rule_type, (1,), 5),  # same track: folded
        event(demo, "cergy", "c4", rule_type, (2,), 30),  # new track inside the cooldown: folded
        event(demo, "cergy", "c4", rule_type, (3,), 200),  # new track after the cooldown: a new alert
        event(demo, "cergy", "c5", rule_type, (1,), 0),  # another camera: its own alert
        event(demo, "marines", "c7", rule_type, (9,), 10),  # another tenant in the same batch
        event(demo, "marines", "c7", rule_type, (9, 10), 250),  # shares track 9 but 240 s later: new alert
    ]


async def alerts_of(db: Database, demo: SeedResult, rule_type: str) -> list[tuple[object, ...]]:
    async with db.for_tenants(list(demo.tenants.values()), readonly=True) as conn:
        rows = await conn.fetch(
            "SELECT a.camera_id, a.occurrences, a.track_ids, a.first_seen_at, a.last_seen_at, a.state, a.severity, "
            "a.priority, (SELECT count(*) FROM alert_outbox o WHERE o.tenant_id = a.tenant_id "
            "AND convert_from(o.payload, 'UTF8') LIKE '%' || a.id::text || '%') AS outbox, "
            "(SELECT count(*) FROM logbook_entries l WHERE l.alert_id = a.id) AS logbook, "
            "(SELECT count(*) FROM alert_sources s WHERE s.alert_id = a.id) AS sources "
            "FROM alerts a WHERE a.rule_type = $1 ORDER BY a.camera_id, a.first_seen_at", rule_type)
    return [tuple(r) for r in rows]


async def test_a_batch_makes_the_same_alerts_as_one_event_at_a_time(db: Database, demo: SeedResult) -> None:
    engine = AlertEngine(db)
    single, batched = f"single-{uuid.uuid4().hex[:8]}", f"batched-{uuid.uuid4().hex[:8]}"
    for e in scenario(demo, single):
        await engine.handle(e)
    outcomes = await engine.on_batch(scenario(demo, batched))
    assert outcomes == [None] * 7
    one_by_one, in_batch = await alerts_of(db, demo, single), await alerts_of(db, demo, batched)
    assert in_batch == one_by_one
    assert sorted(r[1] for r in in_batch) == [1, 1, 1, 1, 3]  # five alerts; three events folded into one


async def test_batch_rejects_bad_events_alone_and_ignores_redelivery(db: Database, demo: SeedResult) -> None:
    engine = AlertEngine(db)
    rule = f"mixed-{uuid.uuid4().hex[:8]}"
    good = [event(demo, "cergy", "c4", rule, (1,), 0), event(demo, "departement", "c1", rule, (2,), 0)]
    foreign = event(demo, "cergy", "c6", rule, (3,), 0)  # c6 belongs to Marines
    unknown_camera = RuleTriggered(**{**{f: getattr(good[0], f) for f in good[0].__struct_fields__},
                                      "event_id": uuid.uuid4(), "camera_id": uuid.uuid4()})
    unknown_tenant = RuleTriggered(**{**{f: getattr(good[0], f) for f in good[0].__struct_fields__},
                                      "event_id": uuid.uuid4(), "tenant_id": uuid.uuid4()})
    batch = [good[0], foreign, unknown_camera, good[1], unknown_tenant, good[0]]
    handled, failed = (REGISTRY.get_sample_value("vigie_alerts_events_total", {"outcome": o}) or 0.0
                       for o in ("handled", "failed"))
    batches = REGISTRY.get_sample_value("vigie_alerts_batch_seconds_count") or 0.0
    outcomes = await engine.on_batch(batch)
    # The metrics behind the events/s and batch-time panels.
    assert REGISTRY.get_sample_value("vigie_alerts_events_total", {"outcome": "handled"}) == handled + 3
    assert REGISTRY.get_sample_value("vigie_alerts_events_total", {"outcome": "failed"}) == failed + 3
    assert REGISTRY.get_sample_value("vigie_alerts_batch_seconds_count") == batches + 1
    assert [outcomes[i] for i in (0, 3, 5)] == [None, None, None]
    assert all(isinstance(outcomes[i], Reject) for i in (1, 2, 4))
    assert [str(outcomes[i]).split()[:2] for i in (1, 2, 4)] == [["unknown", "camera"]] * 2 + [["unknown", "tenant"]]
    rows = await alerts_of(db, demo, rule)
    # The duplicate in the batch made one source, one logbook line and one outbox event.
    assert [(r[8], r[9], r[10]) for r in rows] == [(1, 1, 1), (1, 1, 1)]
    assert await engine.on_batch(good) == [None, None]  # redelivery: nothing new
    assert await alerts_of(db, demo, rule) == rows


async def test_batch_auto_dispatch_rows_outbox_order_and_direct_publish(db: Database, department_pool: asyncpg.Pool,
                                                                        demo: SeedResult, bus: Bus) -> None:
    rule = f"auto-{uuid.uuid4().hex[:8]}"
    async with department_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO alert_policies (id, department_id, rule_type, severity, dedupe_window_s, cooldown_s, "
            "sla_claim_s, auto_dispatch) VALUES ($1, $2, $3, 4, 0, 0, 60, true)",
            uuid.uuid4(), demo.department_id, rule)
    published: list[Sequence[OutboxRow]] = []

    def publish(rows: Sequence[OutboxRow]) -> None:
        published.append(rows)

    single = await AlertEngine(db).handle(event(demo, "cergy", "c4", rule, (1,), 0))
    engine = AlertEngine(db, publish_committed=publish, relay_grace_s=30)
    before = datetime.now(UTC)
    assert await engine.on_batch([event(demo, "cergy", "c4", rule, (i,), i) for i in (2, 3)]) == [None, None]
    async with db.for_tenants([demo.tenants["cergy"]], readonly=True) as conn:
        alerts = await conn.fetch("SELECT id, state, auto_dispatched FROM alerts WHERE rule_type = $1 "
                                  "ORDER BY first_seen_at", rule)
        forces = {a["id"]: sorted(r["force_id"] for r in await conn.fetch(
            "SELECT force_id FROM dispatches WHERE alert_id = $1", a["id"])) for a in alerts}
        timers = await conn.fetchval("SELECT count(*) FROM escalation_timers t JOIN alerts a ON a.id = t.alert_id "
                                     "WHERE a.rule_type = $1", rule)
        outbox = await conn.fetch(
            "SELECT id, subject, relay_after, sent_at FROM alert_outbox WHERE tenant_id = $1 AND seq > "
            "(SELECT max(seq) FROM alert_outbox o WHERE convert_from(o.payload, 'UTF8') LIKE '%' || $2 || '%') "
            "ORDER BY seq", demo.tenants["cergy"], str(single))
    assert [(a["state"], a["auto_dispatched"]) for a in alerts] == [("dispatched", True)] * 3
    assert forces[alerts[1]["id"]] == forces[alerts[2]["id"]] == forces[single] != []  # same routing
    assert timers == 2 * 3 * len(forces[single])  # receipt + acknowledgement per dispatch
    kinds = [r["subject"].rsplit(".", 1)[1] for r in outbox]
    per_alert = ["raised", "state_changed", *["dispatch_ordered"] * len(forces[single])]
    assert kinds == per_alert * 2  # each alert's events in the order they happened
    assert all(r["relay_after"] > before + timedelta(seconds=20) and r["sent_at"] is None for r in outbox)
    assert [row.id for row in published[0]] == [r["id"] for r in outbox]
    codec = EventCodec(*ALERT_EVENTS)
    decoded = [codec.decode(row.payload) for row in published[0]]
    assert {type(e).__name__ for e in decoded} == {"AlertRaised", "AlertStateChanged", "DispatchOrdered"}
    ids = [r["id"] for r in outbox]
    async with department_pool.acquire() as conn, conn.transaction():
        unsent = await ALERT_OUTBOX.claim_unsent(conn, 100_000)
        assert not set(ids) & {r.id for r in unsent}  # the writer publishes them
    # Handed to the relay's direct loop: published at once, marked sent, on the stream under their outbox id.
    relay, stop = OutboxRelay(db, bus, ALERT_OUTBOX), asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    relay.committed(published[0])
    sent = 0
    for _ in range(100):
        async with department_pool.acquire() as conn:
            sent = await conn.fetchval("SELECT count(*) FROM alert_outbox WHERE id = ANY($1::uuid[]) "
                                       "AND sent_at IS NOT NULL", ids)
        if sent == len(ids):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await running
    assert sent == len(ids)
    again = await bus.publish_encoded(outbox[0]["subject"], published[0][0].payload, msg_id=str(ids[0]))
    assert again.duplicate
    async with department_pool.acquire() as conn:
        # Nobody answers these dispatches: their escalation timers must not fire into other tests.
        await conn.execute("UPDATE escalation_timers SET cancelled_at = now() WHERE alert_id = ANY($1::uuid[])",
                           [a["id"] for a in alerts])


async def test_rows_a_writer_failed_to_publish_go_to_the_relay_after_the_grace(db: Database,
                                                                                department_pool: asyncpg.Pool,
                                                                                demo: SeedResult) -> None:
    def publish_fails(rows: Sequence[OutboxRow]) -> None:
        return None  # the process died (or NATS was down) right after its commit

    rule = f"grace-{uuid.uuid4().hex[:8]}"
    engine = AlertEngine(db, publish_committed=publish_fails, relay_grace_s=1.0)
    assert await engine.on_batch([event(demo, "cergy", "c4", rule, (1,), 0)]) == [None]
    async with department_pool.acquire() as conn:
        row_id = await conn.fetchval("SELECT o.id FROM alert_outbox o JOIN alerts a ON a.tenant_id = o.tenant_id "
                                     "AND convert_from(o.payload, 'UTF8') LIKE '%' || a.id::text || '%' "
                                     "WHERE a.rule_type = $1", rule)
    async with department_pool.acquire() as conn, conn.transaction():
        assert row_id not in {r.id for r in await ALERT_OUTBOX.claim_unsent(conn, 100_000)}
    await asyncio.sleep(1.2)
    async with department_pool.acquire() as conn, conn.transaction():
        assert row_id in {r.id for r in await ALERT_OUTBOX.claim_unsent(conn, 100_000)}


async def test_an_event_that_fails_the_batch_is_isolated(db: Database, demo: SeedResult) -> None:
    engine = AlertEngine(db)
    rule = f"isolate-{uuid.uuid4().hex[:8]}"
    fine = [event(demo, "cergy", "c4", rule, (1,), 0), event(demo, "cergy", "c5", rule, (2,), 0)]
    broken = event(demo, "cergy", "c4", rule, (3,), 300, detail="bad \x00 byte")  # Postgres text refuses NUL
    outcomes = await engine.on_batch([fine[0], broken, fine[1]])
    assert [outcomes[0], outcomes[2]] == [None, None]
    assert isinstance(outcomes[1], asyncpg.PostgresError)
    assert len(await alerts_of(db, demo, rule)) == 2


async def test_two_engines_on_the_same_camera_and_rule_raise_one_alert(db: Database, demo: SeedResult) -> None:
    """Two copies of the alerts process share the detections consumer, so the events of one camera and rule reach
    both at once, in small batches, some twice (a redelivery to the other copy). The per-(camera, rule) advisory lock
    serialises their decisions: one alert, every event folded into it once, whatever the interleaving."""
    rule = f"two-engines-{uuid.uuid4().hex[:6]}"
    events = [event(demo, "cergy", "c4", rule, (1,), i) for i in range(40)]
    engines = [AlertEngine(db), AlertEngine(db)]
    batches = [events[i:i + 4] for i in range(0, len(events), 4)]
    # Each engine takes every other batch; the last batches are redelivered to the other engine as well.
    work = [engines[n % 2].on_batch(b) for n, b in enumerate(batches)]
    work += [engines[(n + 1) % 2].on_batch(b) for n, b in enumerate(batches[-3:])]
    outcomes = await asyncio.gather(*work)
    assert all(o is None for batch in outcomes for o in batch)
    rows = await alerts_of(db, demo, rule)
    assert len(rows) == 1, rows
    occurrences, sources, outbox = rows[0][1], rows[0][10], rows[0][8]
    assert (occurrences, sources, outbox) == (40, 40, 1)
