"""Push benchmark: pushes/s the local FCM endpoint accepts through the whole dispatcher (vs the bare sender), latency
from dispatch order to FCM request (p50/p99, through NATS), and the share of undelivered pushes escalated within the
receipt timer + 5 s (alerts' real timers).

Writes bench/results/push.json with pushes_per_s, p50_ms, p99_ms, escalated_within_timer_rate (plus the baseline).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import pyotp
from litestar.testing import AsyncTestClient
from nats.aio.msg import Msg

from alerts.engine import AlertEngine
from alerts.escalation import EscalationDispatcher
from alerts.events import ALERT_EVENTS, ALERTS_STREAM, DispatchOrdered, EscalationRaised, Urgency, subject_for
from alerts.repository import ALERT_OUTBOX
from alerts.rules import RECEIPT_TIMEOUT_S
from api.app import create_app
from bench.common import write_result
from cli.database import department_database
from cli.main import ensure_signing_key
from cli.seed import DEMO_PASSWORD, seed_demo
from core.bus import Bus, ConsumerSpec
from core.crypto import FCM_TOKENS, SecretBox
from core.db import open_database
from core.embedded import NatsServerProcess, wait_for_port
from core.events import EventCodec
from core.ids import new_id
from core.migrate import drop_database, prepare_database
from core.outbox import OutboxRelay
from core.ports import free_port
from core.settings import AuthSettings, DatabaseSettings, NatsSettings, Settings
from inference.events import RuleTriggered
from mobile_push.dispatcher import PushDispatcher
from mobile_push.events import PUSH_EVENTS, PUSH_STREAM
from mobile_push.fcm import FcmSender
from mobile_push.model import PushMessage
from mobile_push.reference_client import new_fcm_token
from mobile_push.repository import PUSH_OUTBOX
from mobile_push.rules import token_digest
from mobile_push.settings import PushSettings

FANOUT_DEVICES = 500
FANOUT_ROUNDS = 4
LATENCY_ORDERS = 200
LATENCY_RATE = 20.0
# Distinct (camera, rule) pairs of Marines, each dispatched to both forces of the commune: six dispatches.
ESCALATION_HITS = (("c6", "forbidden_zone"), ("c7", "abandoned_object"), ("c7", "person_on_ground"))


async def _devices(settings: Settings, box: SecretBox, email: str, count: int) -> list[str]:
    """Register `count` devices for an officer straight in the table (the API path has its own tests)."""
    async with department_database(settings) as db, db.cross_tenant("bench setup") as conn:
        return await _insert_devices(conn, box, email, count)


async def _insert_devices(conn: asyncpg.Connection, box: SecretBox, email: str, count: int) -> list[str]:
    user = await conn.fetchrow(
        "SELECT m.user_id, m.force_id, m.tenant_id FROM memberships m JOIN users u ON u.id = m.user_id "
        "WHERE lower(u.email) = $1 AND m.role = 'officer'", email)
    assert user is not None
    tokens = [new_fcm_token() for _ in range(count)]
    await conn.executemany(
        "INSERT INTO push_devices (id, tenant_id, user_id, force_id, platform, token_sealed, token_hash) "
        "VALUES ($1, $2, $3, $4, 'android', $5, $6)",
        [(device_id, user["tenant_id"], user["user_id"], user["force_id"],
          box.seal(t.encode(), column=FCM_TOKENS, row_id=device_id), token_digest(t))
         for t, device_id in ((t, new_id()) for t in tokens)])
    return tokens


async def _accepted(fcm: httpx2.AsyncClient) -> int:
    return int((await fcm.get("/_control/stats")).json()["accepted"])


async def run(nats_url: str, fcm_url: str, account_file: Path, account: dict[str, Any]) -> dict[str, Any]:
    base = Settings(database=DatabaseSettings(name=f"vigie_bench_push_{uuid.uuid4().hex[:8]}"),
                    nats=NatsSettings(url=nats_url, embedded=False),
                    auth=AuthSettings(access_ttl_s=3600, login_rate_per_ip_per_minute=100_000),
                    log_level="WARNING")
    settings = await prepare_database(base)
    try:
        return await _measure(settings, account_file, account, fcm_url)
    finally:
        await drop_database(settings)


async def _measure(settings: Settings, account_file: Path, account: dict[str, Any], fcm_url: str
                   ) -> dict[str, Any]:
    await ensure_signing_key(settings)
    box = SecretBox(settings.data_key.get_secret_value())
    async with department_database(settings) as db, db.cross_tenant("bench setup") as conn, conn.transaction():
        seeded = await seed_demo(conn, box)
    own = PushSettings(service_account_file=account_file, fcm_base_url=fcm_url, retry_poll_s=0.05, outbox_poll_s=0.05)
    db = await open_database(settings.database.app_dsn, settings.database.department_dsn, app_pool_size=(2, 8),
                             department_pool_size=(2, 8))
    sender = FcmSender(account, base_url=fcm_url)
    bus = await Bus.connect(settings.nats.url, name="bench-push")
    for stream in (ALERTS_STREAM, PUSH_STREAM):
        await bus.provision_stream(stream)
    await bus.provision_dead_letter_stream()
    dispatcher = PushDispatcher(db, sender, box, own)
    fcm = httpx2.AsyncClient(base_url=fcm_url, timeout=30)
    figures: dict[str, Any] = {}
    try:
        # Baseline: the bare sender (firebase-admin's async batch API) on the same endpoint, no database, no bus.
        await sender.send([PushMessage(delivery_id=new_id(), token=new_fcm_token(), platform="android",
                                       alert_id=new_id(), ttl_s=60, expires_at_epoch=int(time.time()) + 60)])
        batch = [PushMessage(delivery_id=new_id(), token=new_fcm_token(), platform="android", alert_id=new_id(),
                             ttl_s=60, expires_at_epoch=int(time.time()) + 60) for _ in range(FANOUT_DEVICES)]
        started = time.perf_counter()
        for _ in range(FANOUT_ROUNDS):
            await sender.send(batch)
        figures["baseline_sender_pushes_per_s"] = FANOUT_DEVICES * FANOUT_ROUNDS / (time.perf_counter() - started)

        # Throughput through the dispatcher: one order fanning out to every device of a force, several rounds.
        await _devices(settings, box, "pm@marines.demo", FANOUT_DEVICES)
        before = await _accepted(fcm)
        started = time.perf_counter()
        for _ in range(FANOUT_ROUNDS):
            await dispatcher.handle(DispatchOrdered(
                tenant_id=seeded.tenants["marines"], dispatch_id=new_id(), alert_id=new_id(),
                camera_id=seeded.cameras["c7"], force_id=seeded.forces["pm_marines"], force_kind="police_municipale",
                urgency=Urgency.URGENT, ttl_s=120))
            while await dispatcher.send_due():
                pass
        accepted = await _accepted(fcm) - before
        figures["pushes_per_s"] = accepted / (time.perf_counter() - started)
        figures["fanout_pushes_accepted"] = accepted
        async with department_database(settings) as db, db.cross_tenant("bench setup") as conn:
            await conn.execute("UPDATE push_devices SET removed_at = now(), removed_reason = 'bench'")

        # Latency from order to FCM request, through NATS and the durable consumer, at a steady rate.
        await _devices(settings, box, "gendarme@marines.demo", 1)
        await _devices(settings, box, "pm@marines.demo", 1)
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(bus.consume(ConsumerSpec("ALERTS", "mobile_push", "alerts.>", batch=8),
                                            EventCodec(*ALERT_EVENTS), dispatcher.handle, stop=stop)),
            asyncio.create_task(dispatcher.run_retries(stop)),
            asyncio.create_task(OutboxRelay(db, bus, PUSH_OUTBOX, idle_s=own.outbox_poll_s).run(stop)),
        ]
        sent: dict[str, datetime] = {}
        for _ in range(LATENCY_ORDERS):
            event = DispatchOrdered(
                tenant_id=seeded.tenants["marines"], dispatch_id=new_id(), alert_id=new_id(),
                camera_id=seeded.cameras["c7"], force_id=seeded.forces["gn_marines"], force_kind="gendarmerie",
                urgency=Urgency.URGENT, ttl_s=120)
            sent[str(event.alert_id)] = event.occurred_at
            await bus.publish(subject_for(event), event)
            await asyncio.sleep(1 / LATENCY_RATE)
        latencies: list[float] = []
        deadline = time.monotonic() + 30
        while len(latencies) < LATENCY_ORDERS and time.monotonic() < deadline:
            received = (await fcm.get("/_control/received")).json()
            latencies = [(r["at"] - sent[r["alert_id"]].timestamp()) * 1000 for r in received
                         if r["alert_id"] in sent and r["status"] == 200]
            await asyncio.sleep(0.5)
        latencies.sort()
        figures["p50_ms"] = statistics.median(latencies)
        figures["p99_ms"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        figures["latency_samples"] = len(latencies)

        # Escalation: real alerts, dispatched by an operator through the API; the gendarme's phone never answers.
        escalation = EscalationDispatcher(db)
        tasks += [
            asyncio.create_task(OutboxRelay(db, bus, ALERT_OUTBOX).run(stop)),
            asyncio.create_task(escalation.run(stop, 0.2)),
            asyncio.create_task(bus.consume(ConsumerSpec("PUSH", "alerts-escalation", "push.>"),
                                            EventCodec(*PUSH_EVENTS), escalation.handle_push, stop=stop)),
        ]
        watched: asyncio.Queue[Msg] = asyncio.Queue()
        following = await bus.follow(f"alerts.{seeded.tenants['marines']}.>", "ALERTS", watched.put)
        operator = next(u for u in seeded.users if u.email == "operateur1@valdoise.demo")
        alert_ids = []
        async with AsyncTestClient(app=create_app(settings)) as api:
            login = (await api.post("/auth/login", json={"email": operator.email, "password": DEMO_PASSWORD})).json()
            assert operator.totp_secret is not None
            tokens = (await api.post("/auth/login/totp", json={
                "challenge": login["challenge"], "code": pyotp.TOTP(operator.totp_secret).now()})).json()
            headers = {"authorization": f"Bearer {tokens['access_token']}"}
            engine = AlertEngine(db)
            for i, (camera, rule) in enumerate(ESCALATION_HITS):
                alert_id = await engine.handle(RuleTriggered(
                    tenant_id=seeded.tenants["marines"], camera_id=seeded.cameras[camera], rule_id=uuid.uuid4(),
                    rule_type=rule, legal_event_type=rule, zone_id=None,
                    track_ids=(1000 + i,), boxes=((0.1, 0.1, 0.3, 0.6),), labels=("Person",), scores=(0.9,),
                    detail="bench", snapshot_key=None))
                assert alert_id is not None
                alert_ids.append(alert_id)
                await api.post(f"/alerts/{alert_id}/claim", headers=headers)
                await api.post(f"/alerts/{alert_id}/verify", headers=headers,
                               json={"media": "snapshot", "motive": "benchmark"})
                response = await api.post(f"/alerts/{alert_id}/dispatch", headers=headers,
                                          json={"force_ids": [str(seeded.forces["gn_marines"]),
                                                                str(seeded.forces["pm_marines"])]})
                assert response.status_code == 200, response.text
        codec = EventCodec(*ALERT_EVENTS)
        # Keyed by dispatch: each force's dispatch has its own receipt timer.
        ordered: dict[uuid.UUID, datetime] = {}
        escalated: dict[uuid.UUID, datetime] = {}
        deadline = time.monotonic() + RECEIPT_TIMEOUT_S + 30
        while (not ordered or len(escalated) < len(ordered)) and time.monotonic() < deadline:
            try:
                decoded = codec.decode((await asyncio.wait_for(watched.get(), timeout=1)).data)
            except TimeoutError:
                continue
            if decoded.__class__ is DispatchOrdered and getattr(decoded, "alert_id", None) in alert_ids:
                assert isinstance(decoded, DispatchOrdered)
                if decoded.escalation_level == 0:
                    ordered.setdefault(decoded.dispatch_id, decoded.occurred_at)
            elif isinstance(decoded, EscalationRaised) and decoded.alert_id in alert_ids:
                escalated.setdefault(decoded.dispatch_id, decoded.occurred_at)
        within = [d for d in ordered if d in escalated
                  and (escalated[d] - ordered[d]).total_seconds() <= RECEIPT_TIMEOUT_S + 5]
        figures["escalated_within_timer_rate"] = len(within) / len(ordered)
        figures["undelivered_dispatches"] = len(ordered)
        figures["escalation_delays_s"] = sorted(round((escalated[d] - ordered[d]).total_seconds(), 2)
                                                for d in ordered if d in escalated)
        figures["receipt_timer_s"] = RECEIPT_TIMEOUT_S
        await following.stop()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await fcm.aclose()
        await sender.close()
        await bus.close()
        await db.close()
    return figures


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="vigie-bench-push-"))
    nats = NatsServerProcess(store_dir=work / "nats")
    nats.start()
    port = free_port()
    account_file = work / "service-account.json"
    # The endpoint runs in its own process, so the dispatcher's measured rate is not its own server's CPU.
    endpoint = subprocess.Popen([sys.executable, "-m", "mobile_push.fcm_endpoint", "--port", str(port),
                                 "--service-account", str(account_file), "--no-bodies", "--project", "vigie-bench"])
    try:
        wait_for_port("127.0.0.1", port, 20)
        account = json.loads(account_file.read_text())
        figures = asyncio.run(run(nats.url, f"http://127.0.0.1:{port}", account_file, account))
    finally:
        endpoint.terminate()
        endpoint.wait(10)
        nats.stop()
    path = write_result("push", figures)
    print(json.dumps(figures, indent=2, default=str))
    print(f"written {path}")


if __name__ == "__main__":
    main()
