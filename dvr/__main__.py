"""`python -m dvr`: record the cameras this process leases, upload segments, sweep retention, cut alerts' clips, build
requested exports, anchor the access journal and cut its lines past three years (the department jobs that need the
object store)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys

from prometheus_client import REGISTRY

from alerts.events import ALERT_EVENTS, ALERTS_STREAM
from core.bus import Bus
from core.crypto import SecretBox
from core.db import open_database
from core.errors import VigieError
from core.events import Event, EventCodec
from core.logging import configure_logging
from core.metrics import serve_metrics
from core.objectstore_settings import ObjectStoreSettings, open_object_store
from core.settings import get_settings
from dvr.alert_clips import AlertClipRecorder, clip_consumer
from dvr.events import DVR_STREAM, subject_for
from dvr.export_builder import ExportBuilder
from dvr.fleet import FleetRecorder, new_recorder_id
from dvr.metrics import RecorderCollector
from dvr.retention import RetentionService
from dvr.service import EvidenceService
from dvr.settings import DvrSettings
from dvr.uploader import SegmentUploader, Spool
from dvr.workers import (
    health_event,
    minimum_lock,
    record_until,
    run_health_watch,
    run_journal_retention,
    run_sweeper,
)
from health.watch import HealthWatch, PublishedTransition
from journal.anchors import JournalAnchorer, anchor_space
from journal.retention import JournalRetention


async def main() -> None:
    settings, dvr = get_settings(), DvrSettings()
    configure_logging(settings.log_level)
    # Runtime role for clips and retention lookups (row-level security); department role for the leases, the
    # recording index and the retention sweep, which span every tenant.
    db = await open_database(settings.database.app_dsn, settings.database.department_dsn,
                             app_pool_size=(1, 4), department_pool_size=(2, 10))
    bus = await Bus.connect_as(settings, "dvr")
    # Streams are declared by `vigie bus provision`; a process only checks them, so it never downgrades one.
    await bus.require_streams((DVR_STREAM, ALERTS_STREAM))
    store = open_object_store(ObjectStoreSettings())
    recorder_id, spool, stop = new_recorder_id(), Spool(dvr.spool_dir), asyncio.Event()
    secret_box = SecretBox(settings.data_key.get_secret_value())

    async def publish(event: Event) -> None:
        await bus.publish(subject_for(event), event)

    uploader = SegmentUploader(store=store, db=db, spool=spool, recorder_id=recorder_id, publish=publish,
                               retain_until=minimum_lock(db), high_water_bytes=dvr.spool_high_water_bytes,
                               workers=dvr.upload_workers, publish_segments=dvr.publish_segments)
    fleet = FleetRecorder(settings=dvr, db=db, uploader=uploader, spool=spool, publish=publish,
                          secret_box=secret_box, recorder_id=recorder_id, tenant_ids=dvr.tenant_ids or None)
    clips = AlertClipRecorder(EvidenceService(db=db, store=store, settings=dvr, secret_box=secret_box), publish, dvr)
    REGISTRY.register(RecorderCollector(fleet, uploader))
    serve_metrics(dvr.metrics_address, process="dvr")
    exports = ExportBuilder(db=db, store=store, settings=dvr, secret_box=secret_box)
    anchorer = JournalAnchorer(db=db, store=store, secret_box=secret_box,
                               space=anchor_space(settings.database.name), interval_s=dvr.journal_anchor_interval_s)

    async def publish_health(transition: PublishedTransition) -> None:
        await publish(health_event(transition))

    health_watch = HealthWatch(db=db, publish=publish_health)
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await uploader.recover()
    # What start-up built (modules, classes, pools, clients) lives as long as the process: moved out of the
    # collector's reach, it is no longer traversed by every full collection, which took about a third of the
    # event loop's CPU while recording.
    gc.collect()
    gc.freeze()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(record_until(stop, fleet, uploader),
                             run_sweeper(RetentionService(db=db, store=store), dvr.sweep_interval_s, stop),
                             exports.run(stop), anchorer.run(stop),
                             run_journal_retention(JournalRetention(db=db, anchorer=anchorer),
                                                   dvr.journal_retention_interval_s, stop),
                             run_health_watch(health_watch, dvr.health_watch_interval_s, stop),
                             bus.consume(clip_consumer(dvr), EventCodec(*ALERT_EVENTS), clips.handle, stop=stop))
    await bus.close()
    await db.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except VigieError as exc:  # streams not provisioned, a dependency down: say which, without a traceback
        sys.exit(f"dvr: {exc.detail}")
