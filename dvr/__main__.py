"""`python -m dvr`: record the cameras this process leases, upload segments, sweep retention."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from core.bus import Bus, StreamSpec, tenant_subject
from core.crypto import SecretBox
from core.db import create_pool
from core.events import Event
from core.logging import configure_logging
from core.objectstore_settings import ObjectStoreSettings, open_object_store
from core.settings import get_settings
from dvr.recorder import FleetRecorder, new_recorder_id
from dvr.service import RetentionService
from dvr.settings import DvrSettings
from dvr.uploader import SegmentUploader, Spool
from dvr.workers import minimum_lock, record_until, run_sweeper

DVR_STREAM = StreamSpec("DVR", ["dvr.>"])


async def main() -> None:
    settings, dvr = get_settings(), DvrSettings()
    configure_logging(settings.log_level)
    pool = await create_pool(settings.database.department_dsn, min_size=2, max_size=10)
    bus = await Bus.connect(settings.nats.url, name="dvr")
    await bus.ensure_stream(DVR_STREAM)
    store = open_object_store(ObjectStoreSettings())
    recorder_id, spool, stop = new_recorder_id(), Spool(dvr.spool_dir), asyncio.Event()

    async def publish(event: Event) -> None:
        await bus.publish(tenant_subject("dvr", event.tenant_id, type(event).__name__), event)

    uploader = SegmentUploader(store=store, pool=pool, spool=spool, recorder_id=recorder_id, publish=publish,
                               retain_until=minimum_lock(pool), high_water_bytes=dvr.spool_high_water_bytes,
                               workers=dvr.upload_workers, publish_segments=dvr.publish_segments)
    fleet = FleetRecorder(settings=dvr, pool=pool, uploader=uploader, spool=spool, publish=publish,
                          secret_box=SecretBox(settings.data_key.get_secret_value()), recorder_id=recorder_id,
                          tenant_ids=dvr.tenant_ids or None)
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await uploader.recover()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(record_until(stop, fleet, uploader),
                             run_sweeper(RetentionService(pool=pool, store=store), dvr.sweep_interval_s, stop))
    await bus.close()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
