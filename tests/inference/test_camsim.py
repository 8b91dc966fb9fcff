"""The camera simulator serves real RTSP streams and fails the ways real cameras do."""

from __future__ import annotations

import time
from collections.abc import Iterator

import av
import numpy as np
import pytest

from camsim.footage import FOOTAGES
from camsim.simulator import CameraSimulator, CameraSpec, SimulatedCamera, SimulatorError

pytestmark = pytest.mark.integration

LIVE_OPTIONS = {"rtsp_transport": "tcp", "probesize": "8192"}


def read_frames(url: str, count: int, *, read_timeout_s: float = 5.0) -> list[av.VideoFrame]:
    with av.open(url, options=LIVE_OPTIONS, timeout=(5.0, read_timeout_s)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) >= count:
                break
        return frames


def test_each_camera_serves_a_main_and_a_sub_stream_at_their_resolutions(camera_simulator: CameraSimulator) -> None:
    for name in ("vtest", "bikes"):
        camera = camera_simulator.camera(name)
        footage = FOOTAGES[camera.spec.footage]
        main = read_frames(camera.main_url, 3)
        sub = read_frames(camera.sub_url, 3)
        assert (main[-1].width, main[-1].height) == (footage.main.width, footage.main.height)
        assert (sub[-1].width, sub[-1].height) == (footage.sub.width, footage.sub.height)
        # Real footage, not a test pattern: the picture has texture.
        assert float(np.std(sub[-1].to_ndarray(format="gray"))) > 10.0


def test_sub_stream_is_paced_like_a_live_camera(camera_simulator: CameraSimulator) -> None:
    camera = camera_simulator.camera("vtest")
    fps = FOOTAGES["vtest"].sub.fps
    with av.open(camera.sub_url, options=LIVE_OPTIONS, timeout=(5.0, 5.0)) as container:
        decoded = container.decode(video=0)
        next(decoded)
        started = time.monotonic()
        for _ in range(2 * fps):
            next(decoded)
        elapsed = time.monotonic() - started
    # 2 s of frames arrive over about 2 s: live pacing, not a file read as fast as possible.
    assert 1.2 < elapsed < 3.5


def test_camera_with_credentials_refuses_anonymous_viewers(camera_simulator: CameraSimulator) -> None:
    camera = camera_simulator.camera("vtest-auth")
    with pytest.raises(av.error.HTTPUnauthorizedError):
        read_frames(camera.sub_url, 1)
    frames = read_frames(camera.url("sub", with_credentials=True), 2)
    assert frames[-1].width == FOOTAGES["vtest"].sub.width


def drain(decoded: Iterator[av.VideoFrame], count: int) -> None:
    for _ in range(count):
        next(decoded)


@pytest.fixture
def own_camera(camera_simulator: CameraSimulator) -> Iterator[SimulatedCamera]:
    name = f"faulty-{time.monotonic_ns()}"
    camera = camera_simulator.add_camera(CameraSpec(name, "vtest"))
    yield camera
    camera_simulator.remove_camera(name)


def test_killed_camera_refuses_connections_and_restarts_on_the_same_url(own_camera: SimulatedCamera) -> None:
    url = own_camera.sub_url
    assert read_frames(url, 1)
    own_camera.kill()
    assert not own_camera.is_running
    with pytest.raises((ConnectionRefusedError, av.error.ConnectionRefusedError)):
        read_frames(url, 1)
    own_camera.restart()
    assert own_camera.sub_url == url
    assert read_frames(url, 2)


def test_frozen_camera_keeps_the_connection_but_sends_nothing(own_camera: SimulatedCamera) -> None:
    with av.open(own_camera.sub_url, options=LIVE_OPTIONS, timeout=(5.0, 2.0)) as container:
        decoded = container.decode(video=0)
        next(decoded)
        own_camera.freeze()
        assert own_camera.is_frozen
        started = time.monotonic()
        with pytest.raises((av.error.ExitError, av.error.EOFError, TimeoutError, StopIteration, OSError)):
            drain(decoded, 100)
        # The read gave up on the timeout, not because the server closed the connection.
        assert time.monotonic() - started >= 1.5
    own_camera.thaw()
    assert read_frames(own_camera.sub_url, 2)


def test_blackout_switches_the_picture_to_black_and_back(own_camera: SimulatedCamera) -> None:
    gop_s = 1.0
    own_camera.toggle_blackout()
    # The switch happens on the next keyframe; a viewer joining after it starts on a black keyframe.
    time.sleep(gop_s + 0.3)
    dark = read_frames(own_camera.sub_url, 1)[0].to_ndarray(format="gray")
    assert float(dark.mean()) < 25.0
    assert float(dark.std()) < 3.0
    own_camera.toggle_blackout()
    time.sleep(gop_s + 0.3)
    lit = read_frames(own_camera.sub_url, 1)[0].to_ndarray(format="gray")
    assert float(lit.std()) > 10.0


def test_starting_a_running_camera_or_controlling_a_stopped_one_is_an_error(own_camera: SimulatedCamera) -> None:
    with pytest.raises(SimulatorError, match="already running"):
        own_camera.start()
    own_camera.stop()
    with pytest.raises(SimulatorError, match="not running"):
        own_camera.freeze()
