"""Motion gating and picture statistics on a small grey image: decides which frames deserve the detector.

Frame differencing against a slowly adapting background, as Frigate does; a change over most of the picture
(lights switched, IR mode, camera moved) re-learns the background instead of waking the detector on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from inference.model import FrameStats

GreyImage = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class MotionResult:
    has_motion: bool
    changed_share: float
    scene_changed: bool


class MotionGate:
    """Per-camera background model; call `observe` with every decoded grey frame (same size each time)."""

    def __init__(self, *, pixel_threshold: int = 25, min_changed: float = 0.002, scene_change: float = 0.6,
                 learning_rate: float = 0.05) -> None:
        self._pixel_threshold = pixel_threshold
        self._min_changed = min_changed
        self._scene_change = scene_change
        self._learning_rate = learning_rate
        self._background: npt.NDArray[np.float32] | None = None
        self.last_changed_share = 0.0

    def observe(self, grey: GreyImage) -> MotionResult:
        frame = grey.astype(np.float32)
        if self._background is None or self._background.shape != frame.shape:
            # First frame, or the stream changed resolution: nothing to compare with yet, so look at it.
            self._background = frame
            return MotionResult(True, 1.0, False)
        changed = np.abs(frame - self._background) > self._pixel_threshold
        share = float(changed.mean())
        self.last_changed_share = share
        if share >= self._scene_change:
            self._background = frame
            return MotionResult(False, share, True)
        # Learn only where nothing moves, so a person standing still is not absorbed into the background at once.
        rate = np.where(changed, self._learning_rate * 0.1, self._learning_rate).astype(np.float32)
        self._background += rate * (frame - self._background)
        return MotionResult(share >= self._min_changed, share, False)

    def reset(self) -> None:
        self._background = None


def frame_stats(grey: GreyImage, scene_change: float, previous: GreyImage | None = None) -> FrameStats:
    """Luma, contrast, sharpness and flat-area share of a small grey frame, for the camera-tamper rule, and its
    difference with the `previous` sampled frame (the frozen-picture check)."""
    image = grey.astype(np.float32)
    delta = None
    if previous is not None and previous.shape == grey.shape:
        delta = float(np.abs(image - previous.astype(np.float32)).mean())
    laplacian = np.abs(4 * image[1:-1, 1:-1] - image[:-2, 1:-1] - image[2:, 1:-1] - image[1:-1, :-2]
                       - image[1:-1, 2:])
    h, w = image.shape
    block = 8
    blocks = image[: h - h % block, : w - w % block].reshape(h // block, block, w // block, block)
    flat_share = float((blocks.std(axis=(1, 3)) < 2.0).mean()) if blocks.size else 0.0
    return FrameStats(mean_luma=float(image.mean()), contrast=float(image.std()),
                      sharpness=float(laplacian.mean()) if laplacian.size else 0.0,
                      scene_change=scene_change, flat_share=flat_share, frame_delta=delta,
                      histogram=tuple(float(v) for v in np.bincount(grey.ravel() >> 4, minlength=16) / grey.size))
