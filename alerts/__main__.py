"""`python -m alerts`: the alert engine, the outbox relay, the escalation timers and clip attachment (composition
root)."""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop

from alerts.clips import CLIP_EVENTS, AlertClipService, clip_consumers
from alerts.engine import AlertEngine
from alerts.escalation import EscalationDispatcher
from alerts.events import ALERTS_STREAM
from alerts.repository import ALERT_OUTBOX
from alerts.settings import AlertsSettings, detections_consumer, escalation_consumer
from core.bus import Bus
from core.db import open_database
from core.errors import VigieError
from core.events import EventCodec
from core.logging import configure_logging
from core.metrics import serve_metrics
from core.outbox import OutboxRelay
from core.settings import get_settings
from dvr.events import DVR_STREAM
from inference.events import DETECTION_EVENTS, DETECTIONS_STREAM
from mobile_push.events import PUSH_EVENTS, PUSH_STREAM


async def main() -> None:
    settings, own = get_settings(), AlertsSettings()
    configure_logging(settings.log_level)
    serve_metrics(own.metrics_address, process="alerts")
    # The department role serves the relay and the escalation timers, which see every tenant's rows.
    db = await open_database(settings.database.app_dsn, settings.database.department_dsn, app_pool_size=(2, 8),
                             department_pool_size=(1, 3))
    bus = await Bus.connect_as(settings, "alerts")
    # Streams are declared by `vigie bus provision`; a process only checks them, so it never downgrades one.
    await bus.require_streams((DETECTIONS_STREAM, ALERTS_STREAM, PUSH_STREAM, DVR_STREAM))
    relay = OutboxRelay(db, bus, ALERT_OUTBOX, batch=own.relay_batch)
    engine = AlertEngine(db, on_commit=relay.wake, publish_committed=relay.committed)
    escalation = EscalationDispatcher(db)
    clips = AlertClipService(db)
    detections = detections_consumer(own)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(bus.consume_batches(detections, EventCodec(*DETECTION_EVENTS), engine.on_batch,
                                                  stop=stop))
            tasks.create_task(bus.consume(escalation_consumer(own),
                                          EventCodec(*PUSH_EVENTS), escalation.handle_push, stop=stop))
            for clip_events in clip_consumers(own):
                tasks.create_task(bus.consume(clip_events, EventCodec(*CLIP_EVENTS), clips.handle, stop=stop))
            tasks.create_task(relay.run(stop))
            tasks.create_task(relay.watch_lag(stop))
            tasks.create_task(escalation.run(stop, own.timer_poll_s))
    finally:
        await bus.close()
        await db.close()


if __name__ == "__main__":
    # uvloop: the engine, relay and consumers are event-loop work on NATS and Postgres sockets.
    try:
        uvloop.run(main())
    except VigieError as exc:  # streams not provisioned, a dependency down: say which, without a traceback
        sys.exit(f"alerts: {exc.detail}")
