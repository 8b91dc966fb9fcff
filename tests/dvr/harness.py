"""A recorder assembled as `python -m dvr` assembles it, with test-sized timings, running in the test's loop."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from core.crypto import SecretBox
from core.db import Database
from core.events import Event
from core.objectstore import ObjectStore
from core.settings import Settings
from dvr.fleet import FleetRecorder
from dvr.model import Segment
from dvr.repository import DvrRepository
from dvr.settings import DvrSettings
from dvr.uploader import SegmentUploader, Spool
from dvr.workers import minimum_lock, record_until


def fast_settings(spool: Path, **overrides: object) -> DvrSettings:
    values: dict[str, object] = {
        "segment_s": 2, "spool_dir": spool, "lease_ttl_s": 3.0, "lease_poll_s": 0.5, "backoff_cap_s": 2.0,
        "offline_after_s": 2.0, "stall_after_s": 4.0, "rtsp_timeout_s": 3.0, "gap_tolerance_s": 1.0,
    }
    values.update(overrides)
    return DvrSettings(**values)  # type: ignore[arg-type]


@dataclass
class RunningRecorder:
    fleet: FleetRecorder
    uploader: SegmentUploader
    events: list[Event] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[object] | None = None

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, timeout=30)


def start_recorder(settings: Settings, dvr: DvrSettings, db: Database, store: ObjectStore,
                   tenants: list[uuid.UUID]) -> RunningRecorder:
    spool = Spool(dvr.spool_dir)
    events: list[Event] = []

    async def publish(event: Event) -> None:
        events.append(event)

    uploader = SegmentUploader(store=store, db=db, spool=spool, recorder_id="", publish=publish,
                               retain_until=minimum_lock(db), high_water_bytes=dvr.spool_high_water_bytes,
                               workers=2)
    fleet = FleetRecorder(settings=dvr, db=db, uploader=uploader, spool=spool, publish=publish,
                          secret_box=SecretBox(settings.data_key.get_secret_value()), tenant_ids=tenants)
    uploader._recorder_id = fleet.recorder_id
    running = RunningRecorder(fleet, uploader, events)
    running.task = asyncio.ensure_future(record_until(running.stop, fleet, uploader))
    return running


async def segments(pool: asyncpg.Pool, camera_id: uuid.UUID) -> list[Segment]:
    async with pool.acquire() as conn:
        return await DvrRepository().segments_between(conn, camera_id, datetime(2000, 1, 1, tzinfo=UTC),
                                                      datetime(2100, 1, 1, tzinfo=UTC))


async def wait_for(predicate: object, timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    assert callable(predicate)
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.2)


async def object_sha256(store: ObjectStore, tenant_id: uuid.UUID, seg: Segment) -> str:
    return hashlib.sha256(await store.get(tenant_id, seg.object_key, version_id=seg.version_id)).hexdigest()
