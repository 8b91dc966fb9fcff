"""The portable backend runs its batches on the event loop: the loop's other tasks still run between batches."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import av
import numpy as np
import numpy.typing as npt

from inference.model import CameraConfig
from inference.motion import MotionResult, frame_stats, small_grey
from inference.portable import PortableBackend
from inference.rtsp import DecodedFrame, ReaderCounters, StreamState
from inference.settings import InferenceSettings

BATCHES = 20


class EndlessSlot:
    """A saturated camera: a new frame with motion whenever the backend takes one."""

    def __init__(self, camera_id: uuid.UUID) -> None:
        self._camera_id = camera_id
        self._picture = av.VideoFrame.from_ndarray(np.full((48, 64), 90, dtype=np.uint8), format="gray")
        self._taken = 0

    def take(self) -> DecodedFrame:
        self._taken += 1
        grey = small_grey(self._picture)
        return DecodedFrame(camera_id=self._camera_id, timestamp=self._taken / 5, captured_at=datetime.now(UTC),
                            frame_size=(64, 48), motion=MotionResult(True, 1.0, False), stats=frame_stats(grey, 1.0),
                            picture=self._picture, grey=grey)


class SaturatedReader:
    def __init__(self, camera_id: uuid.UUID, *_: object) -> None:
        self.camera_id = camera_id
        self.counters = ReaderCounters()
        self.slot = EndlessSlot(camera_id)
        self.state = StreamState.ONLINE
        self.last_error = ""
        self.masks: tuple[tuple[tuple[float, float], ...], ...] = ()

    def start(self) -> None:
        pass

    def stop(self, timeout_s: float = 10.0) -> None:
        pass


class Discard:
    def submit(self, *_: object) -> None:
        pass


class SlowDetector:
    """Holds the thread as inference does, and stops the backend after BATCHES batches."""

    labels = ["Person"]

    def __init__(self, stop: asyncio.Event) -> None:
        self.batches = 0
        self._stop = stop

    def detect(self, frames: list[npt.NDArray[np.uint8]]) -> list[list[object]]:
        time.sleep(0.002)
        self.batches += 1
        if self.batches == BATCHES:
            self._stop.set()
        return [[] for _ in frames]


def test_the_loops_other_tasks_run_between_batches_while_every_camera_has_a_frame_waiting() -> None:
    async def scenario() -> tuple[int, int]:
        stop = asyncio.Event()
        detector = SlowDetector(stop)
        backend = PortableBackend(detector, Discard(), InferenceSettings(max_batch=2),  # type: ignore[arg-type]
                                  reader_factory=SaturatedReader)  # type: ignore[arg-type]
        tenant = uuid.uuid4()
        backend.apply([CameraConfig(camera_id=uuid.uuid4(), tenant_id=tenant, name=f"cam{i}",
                                    stream_url=f"rtsp://cam{i}/sub") for i in range(3)])
        ticks = 0

        async def other_task() -> None:  # stands for the publisher, the leases and the reloads
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        await asyncio.gather(backend.run(stop), other_task())
        return detector.batches, ticks

    batches, ticks = asyncio.run(scenario())
    assert batches == BATCHES
    # At least one turn of the other task between two batches: a loop held from batch to batch would give it one.
    assert ticks >= BATCHES - 1
