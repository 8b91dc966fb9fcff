"""`python -m inference`: the detection worker for every camera of the department (composition root)."""

from __future__ import annotations

import asyncio
import signal
import sys

from prometheus_client import REGISTRY

from core.bus import Bus
from core.crypto import SecretBox
from core.db import open_database
from core.errors import VigieError
from core.logging import configure_logging
from core.metrics import serve_metrics
from core.objectstore_settings import ObjectStoreSettings, open_object_store
from core.settings import get_settings
from inference.backends import make_backend
from inference.fleet import DetectorFleet
from inference.metrics import QueueDepthCollector
from inference.portable import PortableBackend
from inference.publisher import DetectionPublisher
from inference.settings import InferenceSettings
from inference.worker import serve


async def main() -> None:
    settings, inference = get_settings(), InferenceSettings()
    configure_logging(settings.log_level)
    # Every query of the worker is a department job (configuration sync, usage metering): one runtime connection.
    db = await open_database(settings.database.app_dsn, settings.database.department_dsn,
                             app_pool_size=(1, 1), department_pool_size=(1, 4))
    bus = await Bus.connect_as(settings, "inference")
    publisher = DetectionPublisher(bus, open_object_store(ObjectStoreSettings()),
                                   snapshot_quality=inference.snapshot_quality, queue_max=inference.publish_queue_max)
    backend = make_backend(inference, publisher)
    if isinstance(backend, PortableBackend):  # DeepStream queues inside its pipeline (nvstreammux)
        REGISTRY.register(QueueDepthCollector(backend.queue_depth_by_tenant))
    serve_metrics(inference.metrics_address, process="inference")
    await publisher.prepare()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        # Every worker takes its share of the cameras by lease, so any number of copies can run.
        fleet = DetectorFleet(db, backend, ttl_s=inference.lease_ttl_s, poll_s=inference.lease_poll_s)
        await serve(db, backend, publisher, stop=stop, secrets=SecretBox(settings.data_key.get_secret_value()),
                    settings=inference, fleet=fleet)
    finally:
        await bus.close()
        await db.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except VigieError as exc:  # a missing database, bus, model or backend: say which, without a traceback
        sys.exit(f"inference: {exc.detail}")
