"""`python -m inference`: the detection worker for every camera of the department (composition root)."""

from __future__ import annotations

import asyncio
import signal

from core.bus import Bus
from core.crypto import SecretBox
from core.db import create_pool
from core.logging import configure_logging
from core.objectstore_settings import ObjectStoreSettings, open_object_store
from core.settings import get_settings
from inference import service
from inference.mediapipe import prepare_detector_model
from inference.onnx_detector import OnnxDetector
from inference.portable import PortableBackend
from inference.publisher import DetectionPublisher
from inference.settings import InferenceSettings


async def main() -> None:
    settings, inference = get_settings(), InferenceSettings()
    configure_logging(settings.log_level)
    if inference.model_path is None:
        prepare_detector_model(inference.models_dir)
    detector = OnnxDetector(inference.onnx_path, inference.labels_file, score_threshold=inference.score_threshold,
                            iou_threshold=inference.nms_iou_threshold, tracked_labels=inference.tracked_labels,
                            use_gpu=inference.use_gpu, intra_op_threads=inference.intra_op_threads)
    pool = await create_pool(settings.database.department_dsn, min_size=1, max_size=3)
    bus = await Bus.connect(settings.nats.url, name="inference", replicas=settings.nats.stream_replicas)
    publisher = DetectionPublisher(bus, open_object_store(ObjectStoreSettings()),
                                   snapshot_quality=inference.snapshot_quality, queue_max=inference.publish_queue_max)
    await publisher.prepare()
    backend = PortableBackend(detector, publisher, inference)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(backend.run(stop))
            tasks.create_task(publisher.run(stop))
            tasks.create_task(service.keep_cameras_in_sync(
                pool, backend, secrets=SecretBox(settings.data_key.get_secret_value()),
                plan_weights=inference.plan_weights, timezone=inference.timezone,
                refresh_s=inference.config_refresh_s, stop=stop))
            tasks.create_task(service.flush_usage(pool, backend.meter, timezone=inference.timezone,
                                                  every_s=inference.usage_flush_s, stop=stop))
    finally:
        await bus.close()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
