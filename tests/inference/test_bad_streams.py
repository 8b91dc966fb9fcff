"""Bad camera input: resolution changes mid-stream, corrupt bytes, URLs that are not RTSP. The reader survives."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from camsim.simulator import CameraSimulator, CameraSpec, SimulatedCamera
from inference.rtsp import ReaderOptions, RtspCameraReader, StreamChange, StreamState

pytestmark = pytest.mark.integration


class Changes:
    def __init__(self) -> None:
        self.items: list[StreamChange] = []
        self._lock = threading.Lock()

    def __call__(self, change: StreamChange) -> None:
        with self._lock:
            self.items.append(change)


def reader_for(url: str, changes: Changes) -> RtspCameraReader:
    options = ReaderOptions(open_timeout_s=3.0, read_timeout_s=2.0, reconnect_base_s=0.2, reconnect_cap_s=1.0,
                            offline_after_s=1.0)
    return RtspCameraReader(uuid.uuid4(), url, options, changes)


def sizes_for(reader: RtspCameraReader, seconds: float) -> list[tuple[int, int]]:
    sizes = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = reader.slot.take()
        if frame is not None:
            sizes.append(frame.frame_size)
        time.sleep(0.05)
    return sizes


@pytest.fixture
def mixed_camera(camera_simulator: CameraSimulator) -> Iterator[SimulatedCamera]:
    name = f"mixed-{uuid.uuid4().hex[:6]}"
    # 3 s of vtest (384x288) then 3 s of bikes (320x136) on the same sub stream, in a loop.
    camera = camera_simulator.add_camera(CameraSpec(name, "vtest", then=("bikes",), clip_seconds=3.0))
    yield camera
    camera_simulator.remove_camera(name)


def test_a_stream_that_changes_resolution_keeps_being_read(mixed_camera: SimulatedCamera) -> None:
    changes = Changes()
    reader = reader_for(mixed_camera.sub_url, changes)
    reader.start()
    try:
        sizes = sizes_for(reader, 9.0)
    finally:
        reader.stop()
    assert {(384, 288), (320, 136)} <= set(sizes)
    assert reader.counters.size_changes >= 1
    assert reader.counters.reconnects == 0  # handled in-stream, not by dropping the connection
    assert changes.items == []


def test_corrupt_bytes_do_not_stop_the_reader_and_it_recovers(mixed_camera: SimulatedCamera) -> None:
    changes = Changes()
    reader = reader_for(mixed_camera.sub_url, changes)
    reader.start()
    try:
        assert sizes_for(reader, 2.0)
        mixed_camera.toggle_corruption()
        sizes_for(reader, 3.0)
        mixed_camera.toggle_corruption()
        time.sleep(1.5)  # the next keyframe cleans the picture
        after = sizes_for(reader, 3.0)
        assert reader.alive
        assert reader.counters.corrupt_frames > 0  # the garbage reached the decoder, and was set aside
    finally:
        reader.stop()
    assert after, "no frame after the corruption stopped"
    assert reader.state is StreamState.ONLINE


def test_a_url_that_is_not_rtsp_is_reported_offline_with_the_reason() -> None:
    changes = Changes()
    reader = reader_for("http://127.0.0.1:9/stream", changes)
    reader.start()
    try:
        deadline = time.monotonic() + 5
        while not changes.items and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        reader.stop()
    assert [c.state for c in changes.items] == [StreamState.OFFLINE]
    assert "not an RTSP URL" in changes.items[0].reason
