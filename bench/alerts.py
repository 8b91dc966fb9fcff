"""Alerts benchmark: detection published → alert committed → dispatch order published, against a bare JetStream loop.

Writes bench/results/alerts.json with events_per_s (a burst of 10 000 detections), baseline_events_per_s (the
better of two bare loops, before and after), ratio, p50_ms, p99_ms (at half the measured load), lost / duplicates
from the fault test that `make bench-alerts` runs first, and the same counts for a nats-server kill -9 during this
run. The rule type used is marked auto-dispatch with no cooldown, so every detection becomes an alert and a
DispatchOrdered without a human in the loop (the only path where the engine itself orders a dispatch). The engine
and its relay run as `python -m alerts`, a process of their own as deployed; this one publishes and listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import uvloop

from alerts.events import ALERT_EVENTS, ALERTS_STREAM, DispatchOrdered
from bench.common import RESULTS, write_result
from cli.bus import provision_url
from cli.main import ensure_signing_key
from cli.seed import SeedResult, seed_demo
from core.bus import Bus, Following
from core.crypto import SecretBox
from core.db import Database, open_database
from core.embedded import NatsServerProcess
from core.events import EventCodec
from core.migrate import drop_database, prepare_database
from core.settings import PROJECT_ROOT, DatabaseSettings, NatsSettings, Settings
from inference.events import RuleTriggered

CAMERAS = ["c1", "c2", "c4", "c5", "c6", "c7"]
TENANT_OF = {"c1": "departement", "c2": "departement", "c4": "cergy", "c5": "cergy", "c6": "marines", "c7": "marines"}


def _event(seed: SeedResult, i: int) -> RuleTriggered:
    camera = CAMERAS[i % len(CAMERAS)]
    return RuleTriggered(tenant_id=seed.tenants[TENANT_OF[camera]], camera_id=seed.cameras[camera],
                         rule_id=uuid.uuid4(), rule_type="intrusion", legal_event_type="forbidden_zone", zone_id=None,
                         track_ids=(i,), boxes=((0.1, 0.1, 0.2, 0.4),), labels=("Person",), scores=(0.9,),
                         detail="bench")


def fault_test_figures() -> dict[str, Any]:
    """`lost` and `duplicates` from the fault test (tests/alerts/test_faults.py: kill -9 of nats-server and of the
    alerts process, Postgres crash-restarted and stopped, under 10 000 events), which `make bench-alerts` runs first."""
    path = RESULTS / "alerts_faults.json"
    if not path.exists():
        return {"lost": None, "duplicates": None, "fault_test": "not run: python -m pytest tests/alerts/test_faults.py"}
    faults = json.loads(path.read_text())
    return {"lost": faults["lost"], "duplicates": faults["duplicates"] + faults["duplicate_dispatch_orders"],
            "fault_test": {k: faults.get(k) for k in ("events", "rate_per_s", "faults", "measured_at")}}


async def baseline(url: str, count: int, *, stream: str) -> float:
    """Bare nats-py, not the platform's Bus: JetStream publish (awaiting acks, pipelined) and a pull consumer (explicit
    acks, the server's default for pull consumers) acking each message; at most a fetch (256) is ever pending."""
    nc = await nats.connect(url, name="bench-baseline")
    js = nc.jetstream()
    subject = stream.lower()
    await js.add_stream(name=stream, subjects=[f"{subject}.>"])
    sub = await js.pull_subscribe(f"{subject}.>", durable="base", stream=stream)
    payload = b"x" * 400
    start = time.perf_counter()

    async def consume() -> None:
        got = 0
        while got < count:
            with contextlib.suppress(TimeoutError):
                for msg in await sub.fetch(256, timeout=1):
                    await msg.ack()
                    got += 1

    consumer = asyncio.create_task(consume())
    for chunk in range(0, count, 256):
        await asyncio.gather(*(js.publish(f"{subject}.{i}", payload, headers={"Nats-Msg-Id": f"b{i}"})
                               for i in range(chunk, min(count, chunk + 256))))
    await consumer
    elapsed = time.perf_counter() - start
    await nc.close()
    return count / elapsed


class Pipeline:
    """`python -m alerts` as its own process (engine, relay, on its own event loop, as deployed), and in this process
    a listener of the dispatch orders only (what the phones' dispatcher consumes): the measuring harness reads as
    little as it can. Escalation timers are pushed out of the run, so no re-push counts as an order."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.source_of: dict[uuid.UUID, uuid.UUID] = {}
        self.dispatched_at: dict[uuid.UUID, float] = {}
        self.orders: list[tuple[uuid.UUID, uuid.UUID]] = []

    async def start(self) -> None:
        # Every stream, as `vigie bus provision` declares them: `python -m alerts` checks them all at start.
        await provision_url(self.settings.nats.url)
        env = self.settings.child_env(VIGIE_LOG_LEVEL="WARNING", VIGIE_ALERTS_METRICS_ADDRESS="",
                                      VIGIE_ALERTS_TIMER_POLL_S="3600", VIGIE_ALERTS_DURABLE="bench-alerts")
        self.process = await asyncio.create_subprocess_exec(  # this interpreter, a fixed module
            sys.executable, "-m", "alerts", cwd=PROJECT_ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        codec = EventCodec(*ALERT_EVENTS)
        self.listener_bus = await Bus.connect(self.settings.nats.url, name="bench-listener")

        async def on_order(msg: Any) -> None:
            event = codec.decode(msg.data)
            if isinstance(event, DispatchOrdered):
                self.orders.append((event.alert_id, event.force_id))
                if event.alert_id not in self.dispatched_at:
                    self.dispatched_at[event.alert_id] = time.perf_counter()

        self.listener: Following = await self.listener_bus.follow("alerts.*.dispatch_ordered", ALERTS_STREAM.name,
                                                                  on_order)

    async def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), 30)
        await self.listener.stop()
        await self.listener_bus.close()

    async def wait_for(self, total: int, timeout_s: float) -> float:
        """When `total` alerts in all have had a dispatch order (or the timeout); every detection of this bench
        makes one new alert, so that is every detection published so far."""
        deadline = time.perf_counter() + timeout_s
        while len(self.dispatched_at) < total and time.perf_counter() < deadline:  # noqa: ASYNC110 - polls a count
            await asyncio.sleep(0.005)
        return time.perf_counter()

    async def map_sources(self) -> None:
        """The detection each dispatched alert came from, read once the phase is over (not while measuring)."""
        unknown = [a for a in self.dispatched_at if a not in self.source_of]
        async with self.db.cross_tenant("bench measurement") as conn:
            rows = await conn.fetch("SELECT id, source_event_id FROM alerts WHERE id = ANY($1::uuid[])", unknown)
        self.source_of.update({r["id"]: r["source_event_id"] for r in rows})

    def done(self, sources: set[uuid.UUID]) -> int:
        return sum(1 for a in self.dispatched_at if self.source_of.get(a) in sources)


async def publish(bus: Bus, events: list[RuleTriggered], rate: float | None, sent_at: dict[uuid.UUID, float]) -> None:
    interval = 0.0 if rate is None else 1.0 / rate
    start = time.perf_counter()
    step = 64 if rate is None else 1
    for i in range(0, len(events), step):
        if rate is not None:
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        chunk = events[i:i + step]
        for e in chunk:
            sent_at[e.event_id] = time.perf_counter()
        while True:
            try:
                await bus.publish_many([(f"detections.{e.tenant_id}.{e.camera_id}", e) for e in chunk])
                break
            except Exception:  # nats down during the fault phase: the publisher retries, dedupe by event id
                await asyncio.sleep(0.2)


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="vigie-bench-alerts-"))
    nats_server = NatsServerProcess(store_dir=work / "nats")
    nats_server.start()
    name = f"vigie_bench_alerts_{uuid.uuid4().hex[:8]}"
    settings = await prepare_database(Settings(environment="test", var_dir=work,
                                               database=DatabaseSettings(name=name),
                                               nats=NatsSettings(url=nats_server.url, embedded=False)))
    # The harness reads and seeds every tenant's rows: the department role; the runtime pool stays idle.
    db = await open_database(settings.database.app_dsn, settings.database.department_dsn, app_pool_size=(1, 1),
                             department_pool_size=(1, 4))
    try:
        await ensure_signing_key(settings)
        async with db.cross_tenant("bench setup") as conn, conn.transaction():
            seed = await seed_demo(conn, SecretBox(settings.data_key.get_secret_value()))
            await conn.execute(
                "INSERT INTO alert_policies (id, department_id, rule_type, severity, dedupe_window_s, cooldown_s, "
                "sla_claim_s, auto_dispatch) VALUES ($1, $2, 'intrusion', 3, 0, 0, 60, true)",
                uuid.uuid4(), seed.department_id)
        count = int(os.environ.get("BENCH_ALERTS_EVENTS", "10000"))
        base = base_before = await baseline(nats_server.url, count, stream="BENCHBASE")

        pipeline = Pipeline(settings, db)
        await pipeline.start()
        publisher = await Bus.connect(nats_server.url, name="bench-publisher")
        warm = [_event(seed, i) for i in range(200)]
        await publish(publisher, warm, None, {})
        await pipeline.wait_for(len(warm), 60)

        events = [_event(seed, 1000 + i) for i in range(count)]
        sent: dict[uuid.UUID, float] = {}
        start = time.perf_counter()
        await publish(publisher, events, None, sent)
        end = await pipeline.wait_for(len(warm) + count, 120)
        await pipeline.map_sources()
        rate = pipeline.done({e.event_id for e in events}) / (end - start)

        half = [_event(seed, 100_000 + i) for i in range(int(min(rate / 2, 2000) * 5))]
        sent_half: dict[uuid.UUID, float] = {}
        await publish(publisher, half, rate / 2, sent_half)
        await pipeline.wait_for(len(warm) + count + len(half), 60)
        await pipeline.map_sources()
        by_source = {pipeline.source_of[a]: t for a, t in pipeline.dispatched_at.items() if a in pipeline.source_of}
        latencies = sorted((by_source[e.event_id] - sent_half[e.event_id]) * 1000 for e in half
                           if e.event_id in by_source)

        # Fault phase: nats-server killed (-9) and restarted while detections keep coming.
        fault = [_event(seed, 200_000 + i) for i in range(2000)]
        fault_task = asyncio.create_task(publish(publisher, fault, 400, {}))
        await asyncio.sleep(2)
        nats_server.kill()
        await asyncio.sleep(2)
        nats_server.start()
        await fault_task
        await pipeline.wait_for(len(warm) + count + len(half) + len(fault), 120)
        await asyncio.sleep(1)  # a duplicate order, if any, would arrive after the first
        await pipeline.map_sources()
        await pipeline.close()
        await publisher.close()
        fault_ids = [e.event_id for e in fault]
        async with db.cross_tenant("bench measurement") as conn:
            alerts = await conn.fetchval(
                "SELECT count(DISTINCT source_event_id) FROM alerts WHERE source_event_id = ANY($1::uuid[])",
                fault_ids)
            rows = await conn.fetchval(
                "SELECT count(*) FROM alerts WHERE source_event_id = ANY($1::uuid[])", fault_ids)
            dispatch_rows = await conn.fetchval(
                "SELECT count(*) - count(DISTINCT (alert_id, force_id)) FROM dispatches")
        fault_sources = set(fault_ids)
        fault_alerts = {a for a, s in pipeline.source_of.items() if s in fault_sources}
        fault_orders = [o for o in pipeline.orders if o[0] in fault_alerts]
        lost = len(fault) - int(alerts)
        duplicates = (int(rows) - int(alerts)) + int(dispatch_rows) + (len(fault_orders) - len(set(fault_orders)))
        base_after = await baseline(nats_server.url, count, stream="BENCHBASE2")
        base = max(base, base_after)  # the better of the two bare loops: the ratio is not flattered by noise
        figures = {
            "events_per_s": round(rate, 1),
            "baseline_events_per_s": round(base, 1),
            "baseline_runs_events_per_s": [round(base_before, 1), round(base_after, 1)],
            "ratio": round(rate / base, 3),
            "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2) if latencies else None,
            "half_load_events": len(half),
            "bench_fault": {"lost": lost, "duplicates": duplicates,
                            "what": "nats-server kill -9 and restart during 2000 events at 400/s"},
            **fault_test_figures(),
        }
        print(write_result("alerts", figures).read_text())
    finally:
        await db.close()
        nats_server.stop()
        await drop_database(settings)


if __name__ == "__main__":
    # The event loop of `python -m alerts`; the bare loop baseline runs on it too.
    uvloop.run(main())
