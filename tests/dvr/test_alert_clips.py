"""Alert clips across processes over the real bus: alert and outbox row → relay → recorder's clip consumer → alerts'
clip consumer, on a recorded simulated camera; attached, unavailable, and redelivered without duplicates."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from alerts.clips import CLIP_EVENTS, AlertClipService, clip_consumers
from alerts.events import ALERT_EVENTS, ALERTS_STREAM, AlertRaised
from alerts.repository import ALERT_OUTBOX
from alerts.settings import AlertsSettings
from camsim.simulator import CameraSimulator
from core.bus import Bus
from core.crypto import SecretBox
from core.db import Database
from core.events import Event, EventCodec
from core.objectstore import FilesystemObjectStore
from core.outbox import OutboxRelay
from core.settings import Settings
from dvr.alert_clips import AlertClipRecorder, clip_consumer
from dvr.events import DVR_STREAM, ClipRecorded, subject_for
from dvr.service import EvidenceService
from dvr.settings import DvrSettings
from tests.dvr.conftest import World
from tests.dvr.harness import fast_settings, segments, start_recorder, wait_for

pytestmark = pytest.mark.integration

PRE_S = POST_S = 2.0


@dataclasses.dataclass
class Pipeline:
    """The two consumers as their processes run them, scoped to one tenant's subjects so other suites' alerts on the
    shared server stay out."""

    bus: Bus
    tenant_id: uuid.UUID
    site_id: uuid.UUID
    dvr: DvrSettings
    store: FilesystemObjectStore
    relay: OutboxRelay
    alert_clips: AlertClipService
    dvr_durable: str
    alerts_durables: list[str]


@pytest.fixture
async def pipeline(settings: Settings, database: Database, world: World,
                   tmp_path: Path) -> AsyncIterator[Pipeline]:
    tenant_id, site_id = await world.tenant()
    bus = await Bus.connect(settings.nats.url, name="alert-clips-test")
    for stream in (ALERTS_STREAM, DVR_STREAM):
        await bus.provision_stream(stream)
    await bus.provision_dead_letter_stream()
    dvr = fast_settings(tmp_path / "spool", clip_pre_s=PRE_S, clip_post_s=POST_S)
    store = FilesystemObjectStore(tmp_path / "objects", presign_secret=b"c" * 32, presign_base_url="http://x/media")

    async def publish(event: Event) -> None:
        await bus.publish(subject_for(event), event)

    db = database
    recorder = AlertClipRecorder(
        EvidenceService(db=db, store=store, settings=dvr, secret_box=SecretBox(settings.data_key.get_secret_value())),
        publish, dvr)
    alert_clips = AlertClipService(db)
    suffix = uuid.uuid4().hex[:8]
    dvr_spec = dataclasses.replace(clip_consumer(dvr), durable=f"dvr-clips-{suffix}",
                                   filter_subject=f"alerts.{tenant_id}.raised")
    alerts_specs = [dataclasses.replace(s, durable=f"{s.durable}-{suffix}",
                                        filter_subject=s.filter_subject.replace("*", str(tenant_id)))
                    for s in clip_consumers(AlertsSettings())]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(bus.consume(dvr_spec, EventCodec(*ALERT_EVENTS), recorder.handle, stop=stop))]
    tasks += [asyncio.create_task(bus.consume(s, EventCodec(*CLIP_EVENTS), alert_clips.handle, stop=stop))
              for s in alerts_specs]
    try:
        yield Pipeline(bus, tenant_id, site_id, dvr, store, OutboxRelay(db, bus, ALERT_OUTBOX), alert_clips,
                       dvr_spec.durable, [s.durable for s in alerts_specs])
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await bus.close()


async def raise_alert(pool: asyncpg.Pool, tenant_id: uuid.UUID, camera_id: uuid.UUID,
                      first_seen: datetime) -> uuid.UUID:
    """An alert written as the engine writes it: the row and its AlertRaised in the outbox, in one transaction."""
    alert_id, source_event_id = uuid.uuid4(), uuid.uuid4()
    async with Database(pool).for_tenants([tenant_id], camera_id=camera_id) as conn:
        site_id = await conn.fetchval("SELECT site_id FROM cameras WHERE id = $1", camera_id)
        await conn.execute(
            "INSERT INTO alerts (id, tenant_id, camera_id, site_id, insee_code, rule_type, severity, priority, "
            "source_event_id, first_seen_at, last_seen_at, sla_claim_due_at) "
            "VALUES ($1, $2, $3, $4, '95127', 'intrusion', 3, 30, $5, $6, $6, $6)",
            alert_id, tenant_id, camera_id, site_id, source_event_id, first_seen)
        await conn.execute("INSERT INTO alert_heads (tenant_id, camera_id, rule_type, alert_id) "
                           "VALUES ($1, $2, 'intrusion', $3) ON CONFLICT (tenant_id, camera_id, rule_type) "
                           "DO UPDATE SET alert_id = excluded.alert_id", tenant_id, camera_id, alert_id)
        await ALERT_OUTBOX.add(conn, [AlertRaised(
            tenant_id=tenant_id, alert_id=alert_id, camera_id=camera_id, site_id=site_id, insee_code="95127",
            rule_type="intrusion", severity=3, priority=30, source_event_id=source_event_id,
            first_seen_at=first_seen)])
    return alert_id


async def relay_all(p: Pipeline) -> None:
    while await p.relay.relay_once():
        pass


async def alert_row(pool: asyncpg.Pool, alert_id: uuid.UUID) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT clip_id, clip_status, first_seen_at FROM alerts WHERE id = $1", alert_id)
    assert row is not None
    return row


async def wait_clip_status(pool: asyncpg.Pool, alert_id: uuid.UUID, status: str, timeout_s: float) -> asyncpg.Record:
    async def settled() -> bool:
        return bool((await alert_row(pool, alert_id))["clip_status"] == status)
    await wait_for(settled, timeout_s, f"alert {alert_id} clip_status {status}")
    return await alert_row(pool, alert_id)


async def counts(pool: asyncpg.Pool, alert_id: uuid.UUID) -> dict[str, int]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM clips WHERE alert_id = $1) AS clips, "
            "(SELECT count(*) FROM logbook_entries WHERE alert_id = $1 AND action LIKE 'alert.clip%') AS logbook, "
            "(SELECT count(*) FROM alert_outbox WHERE split_part(subject, '.', 3) IN ('clip_attached', "
            "'clip_unavailable') "
            "AND convert_from(payload, 'UTF8') LIKE '%' || $1::text || '%') AS outbox", alert_id)
    assert row is not None
    return dict(row)


async def drained(p: Pipeline) -> None:
    """Every consumer of the pipeline has nothing pending nor unacknowledged."""
    async def idle() -> bool:
        stream: str
        for stream, durable in [(ALERTS_STREAM.name, p.dvr_durable),
                                *((DVR_STREAM.name, d) for d in p.alerts_durables)]:
            info = await p.bus.js.consumer_info(stream, durable)
            if info.num_pending or info.num_ack_pending:
                return False
        return True
    await wait_for(idle, 30, "the clip consumers to drain")


async def test_alert_gets_its_clip_once_then_unavailable_without_recording(
    pipeline: Pipeline, settings: Settings, world: World, camera_simulator: CameraSimulator,
    department_pool: asyncpg.Pool, app_pool: asyncpg.Pool, database: Database,
) -> None:
    p = pipeline
    camera_id = await world.camera(camera_simulator.camera("vtest").main_url, tenant_id=p.tenant_id,
                                   site_id=p.site_id)
    rec = start_recorder(settings, p.dvr, database, p.store, [p.tenant_id])
    try:
        async def recording() -> bool:
            return len(await segments(department_pool, camera_id)) >= 3
        await wait_for(recording, 60, "three segments")
        # Detected a moment ago: the pre-event buffer is recorded, the post-event one not yet (the consumer waits).
        first_seen = datetime.now(UTC) - timedelta(seconds=1)
        alert_id = await raise_alert(app_pool, p.tenant_id, camera_id, first_seen)
        await relay_all(p)
        row = await wait_clip_status(department_pool, alert_id, "attached", 60)
    finally:
        await rec.close()

    assert row["first_seen_at"] == first_seen
    async with department_pool.acquire() as conn:
        clip = await conn.fetchrow("SELECT * FROM clips WHERE id = $1", row["clip_id"])
    assert clip is not None
    assert clip["alert_id"] == alert_id
    tolerance = timedelta(milliseconds=1)
    assert abs(clip["start_at"] - (first_seen - timedelta(seconds=PRE_S))) < tolerance
    assert abs(clip["end_at"] - (first_seen + timedelta(seconds=POST_S))) < tolerance
    data = await p.store.get(p.tenant_id, clip["object_key"], version_id=clip["version_id"])
    assert hashlib.sha256(data).hexdigest() == clip["sha256"]
    local = Path(p.dvr.spool_dir).parent / "clip.mp4"
    local.write_bytes(data)
    probe = json.loads(await asyncio.to_thread(lambda: subprocess.run(
        [p.dvr.ffprobe, "-v", "error", "-show_entries", "format=duration:stream=codec_type", "-of", "json",
         str(local)], check=True, capture_output=True, timeout=30).stdout))
    assert [s["codec_type"] for s in probe["streams"]] == ["video"]
    assert float(probe["format"]["duration"]) == pytest.approx(PRE_S + POST_S, abs=1.0)
    await drained(p)
    assert await counts(department_pool, alert_id) == {"clips": 1, "logbook": 1, "outbox": 1}

    # Redelivery: the same AlertRaised again (past the server's duplicate check), and the same ClipRecorded handled
    # twice more by the alerts side: still one clip, one logbook line, one outbox event.
    async with department_pool.acquire() as conn:
        payload = await conn.fetchval(
            "SELECT payload FROM alert_outbox WHERE subject = $1 AND convert_from(payload, 'UTF8') LIKE "
            "'%' || $2 || '%'", f"alerts.{p.tenant_id}.raised", str(alert_id))
    raised = EventCodec(*ALERT_EVENTS).decode(bytes(payload))
    assert isinstance(raised, AlertRaised)
    assert raised.first_seen_at == first_seen
    await p.bus.js.publish(f"alerts.{p.tenant_id}.raised", bytes(payload), headers={"Nats-Msg-Id": str(uuid.uuid4())})
    await asyncio.sleep(0.5)
    await drained(p)
    async with department_pool.acquire() as conn:
        recorded = await conn.fetchrow("SELECT * FROM clips WHERE alert_id = $1", alert_id)
    assert recorded is not None
    again = ClipRecorded(tenant_id=p.tenant_id, clip_id=recorded["id"], camera_id=camera_id, alert_id=alert_id,
                         start_at=recorded["start_at"], end_at=recorded["end_at"], sha256=recorded["sha256"])
    await p.alert_clips.handle(again)
    await p.alert_clips.handle(again)
    assert await counts(department_pool, alert_id) == {"clips": 1, "logbook": 1, "outbox": 1}
    assert (await alert_row(department_pool, alert_id))["clip_id"] == clip["id"]

    # A camera nothing was ever recorded for, and a detection long enough ago that the wait is over: unavailable.
    silent = await world.camera("rtsp://127.0.0.1:9/never", tenant_id=p.tenant_id, site_id=p.site_id)
    lost = await raise_alert(app_pool, p.tenant_id, silent, datetime.now(UTC) - timedelta(minutes=2))
    await relay_all(p)
    row = await wait_clip_status(department_pool, lost, "unavailable", 30)
    assert row["clip_id"] is None
    await drained(p)
    assert await counts(department_pool, lost) == {"clips": 0, "logbook": 1, "outbox": 1}
