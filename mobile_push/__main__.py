"""`python -m mobile_push`: the dispatcher (alerts.> → FCM), its durable retries and the outbox relay to PUSH."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from alerts.events import ALERT_EVENTS, ALERTS_STREAM
from core.bus import Bus
from core.crypto import SecretBox
from core.db import open_database
from core.errors import VigieError
from core.events import EventCodec
from core.logging import configure_logging
from core.metrics import serve_metrics
from core.outbox import OutboxRelay
from core.settings import get_settings
from mobile_push.dispatcher import PushDispatcher
from mobile_push.events import PUSH_STREAM
from mobile_push.fcm import FcmSender
from mobile_push.repository import PUSH_OUTBOX
from mobile_push.settings import PushSettings, orders_consumer


async def main() -> None:
    settings, own = get_settings(), PushSettings()
    configure_logging(settings.log_level)
    serve_metrics(own.metrics_address, process="mobile_push")
    if own.local_endpoint_port is not None:  # demo: the project's local FCM endpoint, in this process
        from mobile_push.fcm_endpoint import start_local

        own = own.model_copy(update={"fcm_base_url": start_local(own.service_account_file, own.local_endpoint_port)})
    sender = FcmSender(json.loads(own.service_account_file.read_text()), base_url=own.fcm_base_url,
                       timeout_s=own.http_timeout_s, sdk_max_retries=own.sdk_max_retries)
    # The department role serves the relay, the retry scan and the force directory; the rest is scoped.
    db = await open_database(settings.database.app_dsn, settings.database.department_dsn,
                             app_pool_size=(2, 8), department_pool_size=(1, 4))
    bus = await Bus.connect_as(settings, "mobile_push")
    # Streams are declared by `vigie bus provision`; a process only checks them, so it never downgrades one.
    await bus.require_streams((ALERTS_STREAM, PUSH_STREAM))
    relay = OutboxRelay(db, bus, PUSH_OUTBOX, idle_s=own.outbox_poll_s)
    secrets = SecretBox(settings.data_key.get_secret_value())
    dispatcher = PushDispatcher(db, sender, secrets, own, committed=relay.wake)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(bus.consume(orders_consumer(), EventCodec(*ALERT_EVENTS), dispatcher.handle, stop=stop))
            tasks.create_task(dispatcher.run_retries(stop))
            tasks.create_task(relay.run(stop))
            tasks.create_task(relay.watch_lag(stop))
    finally:
        await sender.close()
        await bus.close()
        await db.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except VigieError as exc:  # streams not provisioned, a dependency down: say which, without a traceback
        sys.exit(f"mobile_push: {exc.detail}")
