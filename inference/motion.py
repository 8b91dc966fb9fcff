"""Motion gating and picture statistics on a small integer grey image: decides which frames deserve the detector."""

# Frame differencing against a slowly adapting background, as Frigate does; a change over most of the picture
# (lights switched, IR mode, camera moved) re-learns the background instead of waking the detector on every frame.
# Everything runs on the luma plane read in place and subsampled by an integer step, in 16-bit fixed point: no
# colour conversion, no interpolation, no floats, so the check costs well under a millisecond per frame.


from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

from inference.conversions import frame_to_array
from inference.model import FrameStats

GreyImage = npt.NDArray[np.uint8]
GREY_MAX_WIDTH = 128
FIXED_SHIFT = 4  # the background is kept as grey level x 16
_PLANAR_LUMA = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21",
                          "gray"})


def small_grey(frame: av.VideoFrame, max_width: int = GREY_MAX_WIDTH) -> GreyImage:
    """The frame's luma, every n-th pixel of every n-th row (n the smallest step that fits `max_width`)."""
    step = max(1, math.ceil(frame.width / max_width))
    if frame.format.name in _PLANAR_LUMA:
        plane = frame.planes[0]
        luma = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
        luma = luma[: frame.height, : frame.width]
        return np.ascontiguousarray(luma[::step, ::step])
    width = max(1, frame.width // step)
    height = max(1, frame.height // step)
    return frame_to_array(frame, width, height, "gray")


@dataclass(frozen=True)
class MotionResult:
    has_motion: bool
    changed_share: float
    scene_changed: bool


class MotionGate:
    """Per-camera background model; call `observe` with every decoded grey frame (same size each time)."""

    def __init__(self, *, pixel_threshold: int = 25, min_changed: float = 0.002, scene_change: float = 0.6,
                 learning_shift: int = 4) -> None:
        self._threshold = pixel_threshold << FIXED_SHIFT
        self._min_changed = min_changed
        self._scene_change = scene_change
        # Where nothing moves the background moves 1/2**learning_shift of the way to the frame; under something
        # moving, 8 times slower, so a person standing still is not absorbed into the background at once.
        self._shift = learning_shift
        self._background: npt.NDArray[np.int16] | None = None
        self.last_changed_share = 0.0

    def observe(self, grey: GreyImage) -> MotionResult:
        frame = grey.astype(np.int16) << FIXED_SHIFT
        if self._background is None or self._background.shape != frame.shape:
            # First frame, or the stream changed resolution: nothing to compare with yet, so look at it.
            self._background = frame
            return MotionResult(True, 1.0, False)
        diff = frame - self._background
        changed = np.abs(diff) > self._threshold
        share = np.count_nonzero(changed) / changed.size
        self.last_changed_share = share
        if share >= self._scene_change:
            self._background = frame
            return MotionResult(False, share, True)
        step = diff >> self._shift
        if share:
            step[changed] = diff[changed] >> (self._shift + 3)
        self._background += step
        return MotionResult(share >= self._min_changed, share, False)

    def reset(self) -> None:
        self._background = None


def frame_stats(grey: GreyImage, scene_change: float, previous: GreyImage | None = None) -> FrameStats:
    """Luma, contrast, sharpness and flat-area share of a small grey frame, for the camera-tamper rule, and its
    difference with the `previous` sampled frame (the frozen-picture check)."""
    # Every sampled frame of every camera pays this in its reader's thread, beside the detector: so few numpy calls,
    # integers where they are exact, and the mean, spread and histogram all read off one 256-level count.
    pixels = grey.size
    counts = np.bincount(grey.ravel(), minlength=256)
    mean = float(counts @ _LEVELS) / pixels
    spread = math.sqrt(max(float(counts @ _SQUARED_LEVELS) / pixels - mean * mean, 0.0))
    wide = grey.astype(np.int16)
    delta = None
    if previous is not None and previous.shape == grey.shape:
        delta = float(np.abs(wide - previous).mean())
    laplacian = 4 * wide[1:-1, 1:-1] - wide[:-2, 1:-1] - wide[2:, 1:-1] - wide[1:-1, :-2] - wide[1:-1, 2:]
    return FrameStats(mean_luma=mean, contrast=spread,
                      sharpness=float(np.abs(laplacian).mean()) if laplacian.size else 0.0,
                      scene_change=scene_change, flat_share=_flat_share(grey), frame_delta=delta,
                      histogram=tuple((counts.reshape(16, 16).sum(axis=1) / pixels).tolist()))


_LEVELS = np.arange(256, dtype=np.float64)
_SQUARED_LEVELS = _LEVELS * _LEVELS
_FLAT_BLOCK = 8


def _flat_share(grey: GreyImage) -> float:
    """Share of the 8x8 blocks whose luma spreads by less than 2 levels (standard deviation)."""
    height, width = (side - side % _FLAT_BLOCK for side in grey.shape)
    if not height or not width:
        return 0.0
    rows, columns = _block_summers(height, width)
    image = grey[:height, :width].astype(np.float32)
    # Block sums as two matrix products: reductions over 8-long axes cost numpy three times as much. Sums of up to
    # 64 squared levels stay below 2**24, so float32 holds them exactly.
    sums = (rows @ image @ columns).astype(np.float64)
    squares = (rows @ (image * image) @ columns).astype(np.float64)
    area = _FLAT_BLOCK * _FLAT_BLOCK
    # std < 2 <=> area * sum(x^2) - sum(x)^2 < 4 * area^2, in integers.
    return float((area * squares - sums * sums < 4 * area * area).mean())


@functools.lru_cache(maxsize=16)
def _block_summers(height: int, width: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Matrices that sum a (height, width) image over 8x8 blocks: rows @ image @ columns."""
    ones = np.ones(_FLAT_BLOCK, dtype=np.float32)
    rows = np.kron(np.eye(height // _FLAT_BLOCK, dtype=np.float32), ones[None, :])
    columns = np.kron(np.eye(width // _FLAT_BLOCK, dtype=np.float32), ones[:, None])
    return rows, columns
