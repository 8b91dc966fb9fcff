"""Background loops of the dvr process: the periodic retention sweep and the minimum-retention lock lookup."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from core.db import Database
from core.errors import Unavailable
from core.logging import get_logger
from dvr.fleet import FleetRecorder
from dvr.model import SpooledSegment, Tier
from dvr.repository import DvrRepository
from dvr.retention import RetentionService
from dvr.rules import Retention, effective_retention, minimum_lock_until
from dvr.uploader import SegmentUploader

log = get_logger(__name__)


def minimum_lock(db: Database, *, cache_s: float = 60.0) -> Callable[[SpooledSegment], Awaitable[datetime | None]]:
    """The object-lock retain-until enforcing each camera's authorised minimum retention (cached per camera)."""
    repo = DvrRepository()
    cache: dict[uuid.UUID, tuple[float, Retention | None]] = {}

    async def lookup(segment: SpooledSegment) -> datetime | None:
        hit = cache.get(segment.camera_id)
        if hit is None or time.monotonic() - hit[0] > cache_s:
            # Read on the runtime role in the segment's tenant. No camera check: a camera that left the tenant reads
            # as "no minimum", so its spooled footage still uploads instead of failing on every retry.
            async with db.for_tenants([segment.tenant_id], readonly=True) as conn:
                inputs = await repo.retention_inputs(conn, segment.camera_id, Tier.CONTINUOUS)
            hit = (time.monotonic(), effective_retention(inputs) if inputs else None)
            cache[segment.camera_id] = hit
        return minimum_lock_until(segment.end_at, hit[1]) if hit[1] else None

    return lookup


async def run_sweeper(service: RetentionService, interval_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await service.sweep()
        except (Unavailable, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("dvr.sweep_failed", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


async def record_until(stop: asyncio.Event, fleet: FleetRecorder, uploader: SegmentUploader, *,
                       drain_timeout_s: float = 30.0) -> None:
    """Record until `stop`; then let the recorders close their last segments and the uploader drain them, so a
    graceful stop leaves nothing in the spool (whatever cannot be uploaded in time stays there for next start)."""
    uploads_stop = asyncio.Event()
    uploads = asyncio.create_task(uploader.run(uploads_stop))
    try:
        await fleet.run(stop)
        if not await uploader.drain(drain_timeout_s):
            log.warning("dvr.spool_not_drained", backlog=uploader.backlog)
    finally:
        uploads_stop.set()
        await uploads
