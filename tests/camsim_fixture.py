"""Session fixture `camera_simulator`: real RTSP cameras (GStreamer) on loopback serving real footage.

Cameras: "vtest" (pedestrians), "bikes" (street traffic) and "vtest-auth" (pedestrians, basic auth user/secret).
A test that stops, kills, freezes or blacks out a shared camera restores it before returning; a test that wants a
camera of its own calls `camera_simulator.add_camera(CameraSpec(...))` and `remove_camera(name)` afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from camsim.simulator import CameraSimulator, CameraSpec

# Shared with `python -m camsim`: the footage is transcoded once per machine, not once per run.
FOOTAGE_CACHE = Path(__file__).resolve().parent.parent / "var" / "camsim"

SHARED_CAMERAS = [
    CameraSpec("vtest", "vtest"),
    CameraSpec("bikes", "bikes"),
    CameraSpec("vtest-auth", "vtest", username="user", password="secret"),
]


@pytest.fixture(scope="session")
def camera_simulator() -> Iterator[CameraSimulator]:
    simulator = CameraSimulator(SHARED_CAMERAS, cache_dir=FOOTAGE_CACHE)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()
