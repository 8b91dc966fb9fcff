"""The detector's view of a camera's health, judged on the sub stream it decodes: frame differences (frozen),
sharpness and histogram statistics (tampered), frame rate and undecodable frames (degraded), and the real simulator's
freeze, blackout and garble."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from camsim.simulator import CameraSimulator, CameraSpec, SimulatedCamera
from inference.model import FrameStats
from inference.picture_health import PictureHealthMonitor
from inference.rtsp import ReaderOptions, RtspCameraReader, StreamChange, StreamState

SCENE = (1 / 16,) * 16


def stats(*, delta: float | None = 2.0, luma: float = 110, contrast: float = 40, sharpness: float = 12,
          scene: float = 0.01, flat: float = 0.05, histogram: tuple[float, ...] = SCENE) -> FrameStats:
    return FrameStats(mean_luma=luma, contrast=contrast, sharpness=sharpness, scene_change=scene, flat_share=flat,
                      frame_delta=delta, histogram=histogram)


def feed(monitor: PictureHealthMonitor, start: float, seconds: float, make: FrameStats, *, fps: float = 5.0,
         decoded_fps: float = 25.0, decoded_from: int = 0) -> list[tuple[str, str | None]]:
    changes = []
    for n in range(int(seconds * fps)):
        t = start + n / fps
        change = monitor.on_frame(t, make, decoded_from + int((t - start) * decoded_fps))
        if change is not None:
            changes.append(change)
    return changes


def test_a_still_picture_is_frozen_only_once_it_lasted() -> None:
    monitor = PictureHealthMonitor(hold_s=4.0)
    assert feed(monitor, 0.0, 5.0, stats()) == [("online", None)]
    assert feed(monitor, 5.0, 3.0, stats(delta=0.0)) == []  # not yet: under hold_s
    frozen = feed(monitor, 8.0, 3.0, stats(delta=0.0))
    assert [state for state, _ in frozen] == ["frozen"]
    # Moving again: back online after hold_s.
    assert [s for s, _ in feed(monitor, 11.0, 6.0, stats())] == ["online"]
    # Where still scenes last (a denoising encoder at night), a still picture is given longer.
    patient = PictureHealthMonitor(hold_s=4.0, frozen_hold_s=30.0)
    feed(patient, 0.0, 5.0, stats())
    assert feed(patient, 5.0, 20.0, stats(delta=0.0)) == []
    assert [s for s, _ in feed(patient, 25.0, 12.0, stats(delta=0.0))] == ["frozen"]


def test_covered_blurred_or_turned_away_is_tampered() -> None:
    dark = (0.9,) + (0.1 / 15,) * 15
    for tampered in (stats(luma=5, contrast=2, delta=0.0), stats(sharpness=1.0), stats(histogram=dark)):
        monitor = PictureHealthMonitor(hold_s=2.0)
        feed(monitor, 0.0, 5.0, stats())
        changes = feed(monitor, 5.0, 4.0, tampered)
        assert [s for s, _ in changes] == ["tampered"], tampered
        assert changes[0][1] is not None
        assert "masquée" in changes[0][1]


def test_fewer_frames_than_the_profile_is_degraded() -> None:
    monitor = PictureHealthMonitor(hold_s=2.0, expected_fps=25.0)
    assert [s for s, _ in feed(monitor, 0.0, 4.0, stats(), decoded_fps=25.0)] == ["online"]
    changes = feed(monitor, 4.0, 6.0, stats(), decoded_fps=6.0, decoded_from=100)
    assert [s for s, _ in changes] == ["degraded"]
    assert changes[0][1] is not None
    assert "sous le profil" in changes[0][1]
    # Without a profile, no frame rate is "too low".
    unprofiled = PictureHealthMonitor(hold_s=2.0)
    assert [s for s, _ in feed(unprofiled, 0.0, 8.0, stats(), decoded_fps=6.0)] == ["online"]


def test_a_lost_stream_says_why() -> None:
    monitor = PictureHealthMonitor()
    frozen = monitor.on_stream_lost("no data for 5 s (stalled)")
    assert frozen is not None
    assert frozen[0] == "frozen"
    assert monitor.on_stream_lost("undecodable frames (corrupt stream)") is not None
    assert monitor.state == "degraded"
    assert monitor.on_stream_lost("connection refused") is not None
    assert monitor.state == "offline"
    assert monitor.on_stream_lost("connection refused") is None  # no news


@pytest.fixture
def watched_camera(camera_simulator: CameraSimulator) -> Iterator[SimulatedCamera]:
    name = f"health-{uuid.uuid4().hex[:6]}"
    camera = camera_simulator.add_camera(CameraSpec(name, "vtest"))
    yield camera
    camera_simulator.remove_camera(name)


class Watched:
    """A reader on the simulated camera's sub stream, its frames and stream changes fed to a monitor."""

    def __init__(self, url: str) -> None:
        self.monitor = PictureHealthMonitor(hold_s=2.0)
        self.states: list[str] = []
        self._lock = threading.Lock()
        self._changes: list[StreamChange] = []
        options = ReaderOptions(open_timeout_s=3.0, read_timeout_s=2.0, reconnect_base_s=0.2, reconnect_cap_s=1.0,
                                offline_after_s=1.0)
        self.reader = RtspCameraReader(uuid.uuid4(), url, options, self._on_change)

    def _on_change(self, change: StreamChange) -> None:
        with self._lock:
            self._changes.append(change)

    def until(self, state: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                changes, self._changes = self._changes, []
            for change in changes:
                if change.state is StreamState.OFFLINE:
                    self._note(self.monitor.on_stream_lost(change.reason))
            frame = self.reader.slot.take()
            if frame is not None:
                counters = self.reader.counters
                self._note(self.monitor.on_frame(frame.timestamp, frame.stats, counters.decoded,
                                                 counters.corrupt_frames + counters.corrupt_packets))
            if self.monitor.state == state:
                return
            time.sleep(0.02)
        raise AssertionError(f"still {self.monitor.state} ({self.monitor.detail}) after {timeout_s} s, "
                             f"not {state}; went through {self.states}")

    def _note(self, change: tuple[str, str | None] | None) -> None:
        if change is not None:
            self.states.append(change[0])


@pytest.mark.integration
def test_the_simulators_blackout_garble_and_freeze_are_seen_on_the_sub_stream(
        watched_camera: SimulatedCamera) -> None:
    watched = Watched(watched_camera.sub_url)
    watched.reader.start()
    try:
        watched.until("online", 20)
        watched_camera.toggle_blackout()  # the lens is covered
        watched.until("tampered", 20)
        assert "masquée" in (watched.monitor.detail or "")
        watched_camera.toggle_blackout()
        watched.until("online", 20)
        watched_camera.toggle_corruption()  # a flaky link garbles every access unit
        watched.until("degraded", 20)
        watched_camera.toggle_corruption()
        watched.until("online", 20)
        watched_camera.freeze()  # the camera hangs: its connection stays open, nothing comes
        try:
            watched.until("frozen", 20)
        finally:
            watched_camera.thaw()
        watched.until("online", 30)
        watched_camera.kill()
        watched.until("offline", 20)
    finally:
        watched.reader.stop()
    assert watched.states[:4] == ["online", "tampered", "online", "degraded"]
