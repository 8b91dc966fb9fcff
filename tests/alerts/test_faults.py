"""Faults with real processes: the alerts engine runs as `python -m alerts` (a subprocess) against a nats-server and a
Postgres cluster of this test only, while a steady load of detections arrives, and four faults are injected:

1. nats-server is killed (-9) and restarted 3 s later on the same port and store;
2. the alerts process is killed (-9) and started again 2 s later;
3. Postgres crashes and restarts at once (`pg_ctl restart -m immediate`: every backend dies, crash recovery runs);
4. Postgres is stopped (`pg_ctl stop -m fast`: transactions in flight roll back, clients are disconnected), stays
   down for 5 s and is started again.

The private Postgres is the project's embedded one (pgserver's bundled server, started by core.migrate's
prepare_database exactly as the platform starts it when no server answers), in a temporary folder of its own:
the machine's Postgres is shared with other work and is never restarted. The database is migrated and the demo
department seeded there; pg_ctl is pgserver's, run as the unprivileged user pgserver runs its server as.

Load: 10 000 RuleTriggered events at RATE events/s on `detections.<tenant>.<camera>` for the demo cameras. Every
event carries its own track and the two rule types used here have a 0 s dedupe window and a 0 s cooldown
(alert_policies), so each event must become exactly one alert (rules.fold_into folds nothing). One event in ten
uses a rule type marked auto-dispatch, so the engine also orders dispatches (and the escalation timers re-push
them) during the faults.

Checked at the end, printed as `lost=… duplicates=… duplicate_dispatch_orders=…` and written to
bench/results/alerts_faults.json for the alerts benchmark: every event has exactly one alert in Postgres (unique key
tenant + source event); every AlertRaised is on the ALERTS stream exactly once; no Nats-Msg-Id (= outbox id) appears
twice on the stream and every outbox row marked sent is on it; every auto-dispatched alert has its dispatch rows,
each ordered exactly once at escalation level 0, and no (dispatch, level) order is published twice; nothing was
dead-lettered; the alerts process survived the NATS and Postgres faults.
"""

from __future__ import annotations

import asyncio
import collections
import json
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import SecretStr

from alerts.events import ALERT_EVENTS, AlertRaised, DispatchOrdered
from bench.common import write_result
from cli.bus import provision_url
from cli.main import ensure_signing_key
from cli.seed import SeedResult, seed_demo
from core.bus import DEAD_LETTER_STREAM, Bus
from core.crypto import SecretBox
from core.embedded import NatsServerProcess
from core.events import EventCodec
from core.migrate import prepare_database
from core.settings import DatabaseSettings, Settings
from inference.events import RuleTriggered
from tests.processes import ModuleProcess

with warnings.catch_warnings():
    # pgserver picks its lock folder at import: without XDG_RUNTIME_DIR (root, CI) platformdirs warns once and falls
    # back to /tmp/runtime-<uid>, which suits a test; the suite turns warnings into errors.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver

pytestmark = pytest.mark.integration

EVENTS = 10_000
# Events/s: steady, well below what the engine sustains (over 1 000/s), so that the backlog of each outage drains
# before the next fault; 10 000 events then take 50 s.
RATE = 200.0
WATCH_RULE = "loitering"  # an alert for the operators only
DISPATCH_RULE = "line_crossing"  # marked auto-dispatch for this test: the engine orders the forces itself
CAMERAS = ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8")
LOAD_S = EVENTS / RATE
# Seconds after the load starts at which each fault is injected: fixed fractions of the load, so that a higher rate
# still puts every fault, outage included, under load.
NATS_KILL_AT, ALERTS_KILL_AT, PG_CRASH_AT, PG_OUTAGE_AT = (LOAD_S * f for f in (0.1, 0.3, 0.5, 0.7))
NATS_DOWN_S, ALERTS_DOWN_S, PG_DOWN_S = 3.0, 2.0, 5.0
# Any port nobody listens on: the configured server does not answer, so prepare_database starts the embedded one.
NO_SERVER_DSN = "postgresql://postgres@127.0.0.1:1/postgres"


class AlertsProcess(ModuleProcess):
    """`python -m alerts` as a child process, its output appended to a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__("alerts", env, log_path)

    def logged(self) -> dict[str, int]:
        """How often the process logged each event (one JSON object a line): evidence that the faults were felt."""
        counts: collections.Counter[str] = collections.Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                counts[str(json.loads(line)["event"])[:60]] += 1
            except (ValueError, KeyError, TypeError):
                counts["(other output)"] += 1
        return dict(counts.most_common())


@dataclass
class PrivatePostgres:
    """The embedded Postgres that core.embedded starts under `var_dir`/pgdata, driven with pgserver's own pg_ctl as
    the user its server runs as (pgserver's unprivileged user when the tests run as root)."""

    var_dir: Path
    socket_dir: str = ""

    @property
    def data_dir(self) -> Path:
        return self.var_dir / "pgdata"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log"

    def _pg_ctl(self, *args: str) -> None:
        # The handle core.embedded opened in this process; pg_ctl is generated by pgserver at import (untyped).
        server = pgserver.get_server(str(self.data_dir))  # type: ignore[attr-defined]
        pgserver.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-t", "60", *args], pgdata=self.data_dir, user=server.system_user, timeout=90)

    def restart_immediately(self) -> None:
        """A crash: no shutdown checkpoint, every backend killed; the restart replays the WAL."""
        self._pg_ctl("-m", "immediate", "-l", str(self.log_path), "restart")

    def replayed_wal(self) -> bool:
        """Whether the server's log shows a crash recovery (what an immediate stop leaves to the next start)."""
        return "automatic recovery in progress" in self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        # Started as core.embedded starts it: no TCP listener, the socket in the data folder.
        self._pg_ctl("-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.log_path), "start")

    @property
    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    # pgserver runs postgres as an unprivileged user when started by root: its folder must be reachable by that
    # user, which pytest's private temporary folders are not.
    var_dir = Path(tempfile.mkdtemp(prefix="vigie-faults-"))
    var_dir.chmod(0o755)
    cluster = PrivatePostgres(var_dir)
    yield cluster
    if cluster.running:
        cluster.stop()
    shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="module")
async def fault_settings(private_postgres: PrivatePostgres) -> Settings:
    """Migrated on the private cluster; its restarts and thousands of alerts reach no other test."""
    wanted = Settings(environment="test", var_dir=private_postgres.var_dir, database=DatabaseSettings(
        admin_dsn=SecretStr(NO_SERVER_DSN), name="vigie_faults", pool_min_size=1, pool_max_size=3))
    try:
        own = await prepare_database(wanted)
    except Exception as exc:  # any failure here means no private cluster, which must not pass
        pytest.fail(f"could not start the private Postgres cluster of the fault test (pgserver's bundled server "
                    f"under {private_postgres.data_dir}; log: {private_postgres.log_path}): {exc!r}")
    if not own.database.host.startswith("/"):
        pytest.fail(f"the fault test must restart a Postgres of its own, not the one at {own.database.host}")
    private_postgres.socket_dir = own.database.host
    await ensure_signing_key(own)
    return own


@pytest.fixture(scope="module")
async def fault_demo(fault_settings: Settings) -> SeedResult:
    conn = await asyncpg.connect(fault_settings.database.department_dsn)
    try:
        async with conn.transaction():
            return await seed_demo(conn, SecretBox(fault_settings.data_key.get_secret_value()))
    finally:
        await conn.close()


@pytest.fixture
def fault_nats(tmp_path: Path) -> Iterator[NatsServerProcess]:
    server = NatsServerProcess(store_dir=tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fault_bus(fault_nats: NatsServerProcess) -> AsyncIterator[Bus]:
    # Every stream, as `vigie bus provision` declares them: `python -m alerts` checks them all at start.
    await provision_url(fault_nats.url)
    bus = await Bus.connect(fault_nats.url, name="alerts-fault-tests")
    yield bus
    await bus.close()


def _event(demo: SeedResult, i: int) -> RuleTriggered:
    camera = CAMERAS[i % len(CAMERAS)]
    rule_type = DISPATCH_RULE if i % 10 == 0 else WATCH_RULE
    return RuleTriggered(tenant_id=demo.camera_tenants[camera], camera_id=demo.cameras[camera], rule_id=uuid.uuid4(),
                         rule_type=rule_type, legal_event_type="forbidden_zone", zone_id=None,
                         track_ids=(1_000_000 + i,), boxes=((0.1, 0.1, 0.2, 0.4),), labels=("Person",),
                         scores=(0.9,), detail="fault drill", snapshot_key="snapshots/fault.jpg")


async def _publish_steadily(bus: Bus, events: list[RuleTriggered], rate: float) -> tuple[int, float]:
    """One event every 1/rate s; while NATS is down the publisher retries (same event id: the stream dedupes).
    Returns the retries and how long publishing took."""
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
    return retries, time.perf_counter() - start


def _alerts_env(settings: Settings, nats_url: str) -> dict[str, str]:
    return settings.model_copy(update={"nats": settings.nats.model_copy(update={"url": nats_url})}).child_env(
        VIGIE_ENVIRONMENT="test", VIGIE_LOG_LEVEL="WARNING", VIGIE_ALERTS_METRICS_ADDRESS="",
        VIGIE_ALERTS_DURABLE="alerts-engine-faults", VIGIE_ALERTS_PUSH_DURABLE="alerts-escalation-faults")


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


async def _wait_until_handled(dsn: str, event_ids: list[uuid.UUID], alerts: AlertsProcess, timeout_s: float) -> int:
    """Events with their alert once the outbox is drained; returns early if the alerts process died."""
    deadline = time.monotonic() + timeout_s
    done = 0
    while True:
        try:
            conn = await asyncpg.connect(dsn)
            try:
                done = int(await conn.fetchval(
                    "SELECT count(*) FROM alert_sources WHERE event_id = ANY($1::uuid[])", event_ids))
                unsent = int(await conn.fetchval("SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL"))
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError):
            unsent = -1  # still recovering: ask again
        if (done == len(event_ids) and unsent == 0) or time.monotonic() > deadline or not alerts.alive:
            return done
        await asyncio.sleep(1.0)


@pytest.mark.timeout(420)
async def test_no_alert_lost_or_duplicated_through_nats_alerts_and_postgres_faults(
    fault_settings: Settings, fault_demo: SeedResult, private_postgres: PrivatePostgres,
    fault_nats: NatsServerProcess, fault_bus: Bus, tmp_path: Path,
) -> None:
    department_dsn = fault_settings.database.department_dsn
    conn = await asyncpg.connect(department_dsn)
    try:
        for rule_type, auto in ((WATCH_RULE, False), (DISPATCH_RULE, True)):
            await conn.execute(
                "INSERT INTO alert_policies (id, department_id, rule_type, severity, dedupe_window_s, cooldown_s, "
                "sla_claim_s, auto_dispatch) VALUES ($1, $2, $3, 3, 0, 0, 60, $4) ON CONFLICT (department_id, "
                "rule_type) DO UPDATE SET dedupe_window_s = 0, cooldown_s = 0, auto_dispatch = excluded.auto_dispatch",
                uuid.uuid4(), fault_demo.department_id, rule_type, auto)
    finally:
        await conn.close()
    events = [_event(fault_demo, i) for i in range(EVENTS)]
    event_ids = [e.event_id for e in events]
    alerts = AlertsProcess(_alerts_env(fault_settings, fault_nats.url), tmp_path / "alerts.log")
    faults: list[dict[str, Any]] = []
    alerts.start()
    try:
        load = asyncio.create_task(_publish_steadily(fault_bus, events, RATE))
        started = time.perf_counter()

        async def at(offset: float) -> None:
            await asyncio.sleep(max(0.0, started + offset - time.perf_counter()))

        def injected(fault: str) -> None:
            faults.append({"fault": fault, "at_s": round(time.perf_counter() - started, 1)})

        # 1. nats-server: kill -9, down for a while, restarted on the same port and store.
        await at(NATS_KILL_AT)
        assert alerts.alive, alerts.tail()
        fault_nats.kill()
        injected(f"nats-server kill -9, restarted {NATS_DOWN_S:.0f} s later")
        await asyncio.sleep(NATS_DOWN_S)
        fault_nats.start()
        # 2. the alerts process: kill -9 (it survived the NATS outage), restarted a little later.
        await at(ALERTS_KILL_AT)
        assert alerts.alive, f"the alerts process died during the NATS outage:\n{alerts.tail()}"
        alerts.kill()
        injected(f"alerts process kill -9, restarted {ALERTS_DOWN_S:.0f} s later")
        await asyncio.sleep(ALERTS_DOWN_S)
        alerts.start()
        # 3. Postgres crashes and comes straight back (the publisher keeps going: pg_ctl runs in a thread).
        await at(PG_CRASH_AT)
        assert alerts.alive, alerts.tail()
        injected("postgres crash: pg_ctl restart -m immediate")
        await asyncio.to_thread(private_postgres.restart_immediately)
        assert private_postgres.replayed_wal(), "pg_ctl restart -m immediate left no crash recovery in the log"
        # 4. Postgres shut down for a few seconds, then started again.
        await at(PG_OUTAGE_AT)
        assert alerts.alive, f"the alerts process died after the Postgres crash:\n{alerts.tail()}"
        injected(f"postgres stop -m fast, started {PG_DOWN_S:.0f} s later")
        await asyncio.to_thread(private_postgres.stop)
        await asyncio.sleep(PG_DOWN_S)
        await asyncio.to_thread(private_postgres.start)
        publisher_retries, load_s = await load

        handled = await _wait_until_handled(department_dsn, event_ids, alerts, timeout_s=150)
        drained_s = time.perf_counter() - started
        survived = alerts.alive
        alerts.stop()

        codec = EventCodec(*ALERT_EVENTS)
        conn = await asyncpg.connect(department_dsn)
        try:
            rows = await conn.fetch(
                "SELECT id, source_event_id, rule_type FROM alerts WHERE source_event_id = ANY($1::uuid[])", event_ids)
            alert_ids = [r["id"] for r in rows]
            outbox = await conn.fetch("SELECT id, payload, sent_at FROM alert_outbox")
            dispatch_rows = await conn.fetch(
                "SELECT id, alert_id, force_id FROM dispatches WHERE alert_id = ANY($1::uuid[])", alert_ids)
        finally:
            await conn.close()

        ours = set(alert_ids)
        our_outbox = {r["id"]: r for r in outbox
                      if getattr(codec.decode(bytes(r["payload"])), "alert_id", None) in ours}
        messages = await _stream_messages(fault_bus, "ALERTS", "alerts.>")
        published: collections.Counter[str] = collections.Counter()
        other_published: collections.Counter[str] = collections.Counter()
        raised_on_stream: collections.Counter[uuid.UUID] = collections.Counter()
        orders: collections.Counter[tuple[uuid.UUID, int]] = collections.Counter()
        for msg in messages:
            event = codec.decode(msg.data)
            if getattr(event, "alert_id", None) not in ours:
                continue
            msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
            published[msg_id] += 1
            if isinstance(event, AlertRaised):
                raised_on_stream[event.source_event_id] += 1
            elif isinstance(event, DispatchOrdered):
                orders[(event.dispatch_id, event.escalation_level)] += 1
            else:
                other_published[msg_id] += 1
        dead = (await fault_bus.js.stream_info(DEAD_LETTER_STREAM)).state.messages
    finally:
        alerts.stop()

    per_source = collections.Counter(r["source_event_id"] for r in rows)
    lost_alerts = sum(1 for e in event_ids if per_source[e] == 0)
    duplicate_alerts = sum(n - 1 for n in per_source.values() if n > 1)
    lost_raised = sum(1 for e in event_ids if raised_on_stream[e] == 0)
    duplicate_raised = sum(n - 1 for n in raised_on_stream.values() if n > 1)
    sent_ids = {str(i) for i, r in our_outbox.items() if r["sent_at"] is not None}
    lost_publishes = sum(1 for i in sent_ids if published[i] == 0)
    duplicate_msg_ids = sum(n - 1 for n in published.values() if n > 1)
    duplicate_other = sum(n - 1 for n in other_published.values() if n > 1)
    unknown_publishes = sum(1 for i in published if uuid.UUID(i) not in our_outbox)
    auto_alerts = {r["id"] for r in rows if r["rule_type"] == DISPATCH_RULE}
    dispatched = {r["alert_id"] for r in dispatch_rows}
    pairs = collections.Counter((r["alert_id"], r["force_id"]) for r in dispatch_rows)
    duplicate_dispatch_rows = sum(n - 1 for n in pairs.values() if n > 1)
    lost_orders = sum(1 for r in dispatch_rows if orders[(r["id"], 0)] == 0)
    duplicate_orders = sum(n - 1 for n in orders.values() if n > 1)
    lost = lost_alerts + lost_raised + lost_publishes + lost_orders + len(auto_alerts - dispatched)
    # Three disjoint figures: alerts (rows and AlertRaised), other alert events, dispatch orders (rows and publishes).
    duplicates = duplicate_alerts + duplicate_raised + duplicate_other
    duplicate_dispatch_orders = duplicate_dispatch_rows + duplicate_orders
    counts = {
        "alerts": len(rows), "auto_dispatched": len(auto_alerts), "dispatches": len(dispatch_rows),
        "dispatch_orders": sum(orders.values()), "outbox_rows": len(our_outbox),
        "stream_messages": sum(published.values()), "dead_lettered": dead, "publisher_retries": publisher_retries,
        "alerts_process_starts": alerts.starts,
    }
    detail = {
        "lost_alerts": lost_alerts, "lost_alert_raised": lost_raised, "lost_publishes": lost_publishes,
        "lost_orders": lost_orders, "auto_alerts_without_dispatch": len(auto_alerts - dispatched),
        "duplicate_alerts": duplicate_alerts, "duplicate_alert_raised": duplicate_raised,
        "duplicate_other_events": duplicate_other, "duplicate_msg_ids": duplicate_msg_ids,
        "duplicate_dispatch_rows": duplicate_dispatch_rows, "duplicate_orders": duplicate_orders,
    }
    logged = alerts.logged()
    # Written before the assertions: a failing drill reports its counts too.
    write_result("alerts_faults", {
        "events": EVENTS, "rate_per_s": RATE, "lost": lost, "duplicates": duplicates,
        "duplicate_dispatch_orders": duplicate_dispatch_orders, "faults": faults, "load_s": round(load_s, 1),
        "all_handled_at_s": round(drained_s, 1), **counts, "detail": detail, "alerts_process_logged": logged,
    })
    print(f"\nalerts fault drill: {EVENTS} events at {RATE:.0f}/s, load over {load_s:.1f} s, all handled at "
          f"{drained_s:.1f} s; faults: " + "; ".join(f"{f['fault']} at {f['at_s']} s" for f in faults))
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    print("alerts process logged: " + ", ".join(f"{event}: {n}" for event, n in logged.items()))
    print(f"lost={lost} duplicates={duplicates} duplicate_dispatch_orders={duplicate_dispatch_orders} ("
          + ", ".join(f"{k} {v}" for k, v in detail.items()) + ")")
    assert faults[-1]["at_s"] + PG_DOWN_S < load_s, "the Postgres outage ended after the load: raise EVENTS or RATE"
    assert survived, f"the alerts process died after the Postgres faults:\n{alerts.tail()}"
    assert handled == EVENTS, f"{handled}/{EVENTS} events handled\n{alerts.tail()}"
    assert len(rows) == EVENTS
    assert lost == 0
    assert duplicates == 0
    assert duplicate_dispatch_orders == 0
    assert duplicate_msg_ids == 0
    assert unknown_publishes == 0
    assert dead == 0
    assert auto_alerts
    assert dispatch_rows
    assert alerts.starts == 2
