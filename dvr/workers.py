"""Background loops of the dvr process: the retention sweep, the journal's three-year cut and the camera health watch
(one leader at a time each), and the minimum-retention lock lookup."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from core.db import Database
from core.errors import Unavailable
from core.leadership import Leadership, Term
from core.logging import get_logger
from dvr.events import CameraHealthChanged
from dvr.fleet import FleetRecorder
from dvr.model import SpooledSegment, Tier
from dvr.repository import DvrRepository
from dvr.retention import RetentionService
from dvr.rules import Retention, effective_retention, minimum_lock_until
from dvr.uploader import SegmentUploader
from health.watch import HealthWatch, PublishedTransition
from journal.errors import EvidenceKeyMissing
from journal.retention import JournalRetention

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


# Every recorder process runs the sweeper; one at a time sweeps, the others wait to take over.
SWEEPER_LEADERSHIP = "dvr.retention_sweeper"


async def run_sweeper(service: RetentionService, interval_s: float, stop: asyncio.Event, *,
                      retry_s: float = 15.0) -> None:
    """The retention sweep every `interval_s` in the one recorder that leads; the others retry every `retry_s`."""

    async def sweep(term: Term) -> None:
        try:
            await service.sweep(term=term)
        except (Unavailable, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("dvr.sweep_failed", error=str(exc))

    await Leadership(service.db, SWEEPER_LEADERSHIP, retry_s=retry_s).run(stop, sweep, interval_s=interval_s)


HEALTH_WATCH_LEADERSHIP = "camera.health_watch"


async def run_health_watch(watch: HealthWatch, interval_s: float, stop: asyncio.Event, *,
                           retry_s: float = 15.0) -> None:
    """Camera health re-evaluated, transitions published and tickets opened every `interval_s` by one leader."""

    async def once(_term: Term) -> None:
        try:
            await watch.run_once()
        except (Unavailable, OSError, asyncpg.PostgresError) as exc:
            log.warning("health.watch_failed", error=str(exc))
        except Exception:
            # Retried at the next interval: a failed watch must not stop the recorders of this process.
            log.exception("health.watch_crashed")

    await Leadership(watch.db, HEALTH_WATCH_LEADERSHIP, retry_s=retry_s).run(stop, once, interval_s=interval_s)


def health_event(transition: PublishedTransition) -> CameraHealthChanged:
    """The event of a stored transition; its id derives from the transition, so a republish is a duplicate."""
    return CameraHealthChanged(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"urn:vigie:camera-health-transition:{transition.transition_id}"),
        tenant_id=transition.tenant_id, camera_id=transition.camera_id, from_state=transition.from_state,
        to_state=transition.to_state, detail=transition.detail, changed_at=transition.at)


JOURNAL_RETENTION_LEADERSHIP = "journal.retention"


async def run_journal_retention(retention: JournalRetention, interval_s: float, stop: asyncio.Event, *,
                                retry_s: float = 60.0) -> None:
    """The journal's three-year cut every `interval_s` in the one process that leads; a failed run is retried at
    the next interval (nothing is removed without its anchor)."""

    async def cut(_term: Term) -> None:
        try:
            await retention.cut_once()
        except EvidenceKeyMissing as exc:
            log.error("journal.retention_key_missing", error=str(exc))
        except (Unavailable, OSError, asyncpg.PostgresError) as exc:
            log.warning("journal.retention_failed", error=str(exc))
        except Exception:
            # Retried at the next interval (the cut rolled back): it must not stop the recorders of this process.
            log.exception("journal.retention_crashed")

    await Leadership(retention.db, JOURNAL_RETENTION_LEADERSHIP, retry_s=retry_s).run(stop, cut,
                                                                                      interval_s=interval_s)


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
