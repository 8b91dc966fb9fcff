"""Frame conversions: the same pixels as PyAV's own, through one swscale context per thread and geometry."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter

from inference import conversions
from inference.conversions import MAX_CONTEXTS_PER_THREAD, array_to_array, frame_to_array


def decoded_like(seed: int, width: int = 384, height: int = 288) -> av.VideoFrame:
    """A new yuv420p frame with random pixels, as a decoder hands out a new frame each time."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


@pytest.mark.parametrize(("width", "height", "target", "pixel_format"), [
    (384, 288, (300, 300), "rgb24"),
    (384, 288, (300, 225), "rgb24"),
    (640, 360, (416, 234), "rgb24"),
    (384, 288, (None, None), "rgb24"),
    (384, 288, (128, 96), "gray"),
])
def test_same_pixels_as_pyav(width: int, height: int, target: tuple[int | None, int | None],
                             pixel_format: str) -> None:
    for seed in range(3):
        frame = decoded_like(seed, width, height)
        expected = frame.to_ndarray(width=target[0], height=target[1], format=pixel_format)
        got = frame_to_array(decoded_like(seed, width, height), target[0], target[1], pixel_format)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)


def test_rgb_arrays_scaled_as_pyav_scales_them() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    expected = av.VideoFrame.from_ndarray(rgb, format="rgb24").to_ndarray(width=300, height=180, format="rgb24")
    np.testing.assert_array_equal(array_to_array(rgb, 300, 180), expected)


class CountingReformatter:
    """Stands for the VideoReformatter class (which cannot be subclassed): makes real ones and counts them."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self) -> VideoReformatter:
        self.made += 1
        return VideoReformatter()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> CountingReformatter:
    counter = CountingReformatter()
    monkeypatch.setattr(conversions, "VideoReformatter", counter)
    monkeypatch.setattr(conversions, "_local", threading.local())
    return counter


def test_one_context_per_geometry_for_every_new_frame(counted: CountingReformatter) -> None:
    for seed in range(6):
        frame_to_array(decoded_like(seed), 300, 300)
    assert counted.made == 1
    # A camera of another size in the same thread keeps its own context instead of rebuilding the first's.
    for seed in range(3):
        frame_to_array(decoded_like(seed, 640, 360), 300, 300)
        frame_to_array(decoded_like(seed), 300, 300)
    assert counted.made == 2


def test_each_thread_has_its_own_contexts(counted: CountingReformatter) -> None:
    frame_to_array(decoded_like(0), 300, 300)
    other = threading.Thread(target=lambda: frame_to_array(decoded_like(1), 300, 300))
    other.start()
    other.join()
    assert counted.made == 2


def test_the_least_recently_used_geometry_is_forgotten(counted: CountingReformatter) -> None:
    frame = decoded_like(0)
    for width in range(16, 16 + 2 * (MAX_CONTEXTS_PER_THREAD + 1), 2):
        frame_to_array(frame, width, 32)
    assert counted.made == MAX_CONTEXTS_PER_THREAD + 1
    frame_to_array(frame, 16 + 2 * MAX_CONTEXTS_PER_THREAD, 32)  # the newest: still kept
    assert counted.made == MAX_CONTEXTS_PER_THREAD + 1
    frame_to_array(frame, 16, 32)  # the first: evicted, made again
    assert counted.made == MAX_CONTEXTS_PER_THREAD + 2
