"""What the DeepStream backend does to a frame's RGBA pixels (privacy masks, picture health): pure numpy, no pyds."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.masks import mask_boxes
from inference.motion import GREY_MAX_WIDTH, GreyImage, frame_stats
from inference.picture_health import PictureHealthMonitor

Masks = tuple[tuple[tuple[float, float], ...], ...]
RgbaImage = npt.NDArray[np.uint8]  # (height, width, 4), what pyds.get_nvds_buf_surface maps


@functools.lru_cache(maxsize=256)
def _cover(masks: Masks, width: int, height: int) -> tuple[tuple[int, int, int, int], ...]:
    # The probe sees every frame of every masked camera; the cover changes only with the masks or the muxer's size.
    return mask_boxes(masks, width, height)


def paint_masks(surface: RgbaImage, masks: Masks) -> None:
    """Black out the cover of `masks` in an RGBA frame, in place, at the frame's own size.

    The size is read from the surface, not from the frame's metadata: nvmultiurisrcbin scales every camera to the
    muxer's size, and `source_frame_width` is the camera's. Only the cover's boxes are written (the rest of a frame
    in CUDA unified memory is not touched from the CPU), and alpha is left as it is: nvinfer reads RGB only.
    """
    if not masks:
        return
    height, width = surface.shape[:2]
    for x0, y0, x1, y1 in _cover(masks, width, height):
        surface[y0:y1, x0:x1, :3] = 0


def rgba_luma(surface: RgbaImage, max_width: int = GREY_MAX_WIDTH) -> GreyImage:
    """The small grey image the portable reader takes from a decoded stream's luma plane (`motion.small_grey`): every
    n-th pixel of every n-th row, n the smallest step that fits `max_width`, in BT.601 studio range (16 to 235, what
    an H.264 camera's Y plane holds), integer arithmetic only."""
    step = max(1, math.ceil(surface.shape[1] / max_width))
    sampled = surface[::step, ::step, :3].astype(np.uint16)
    weighted = 66 * sampled[..., 0] + 129 * sampled[..., 1] + 25 * sampled[..., 2] + 128
    return np.ascontiguousarray(((weighted >> 8) + 16).astype(np.uint8))


@dataclass
class SurfacePictureHealth:
    """One camera's PictureHealthMonitor, fed from the RGBA frames DeepStream batches as the portable reader feeds it
    from its decoded frames: every frame counted, one sampled per 1/detect_fps, judged on its small grey image."""

    monitor: PictureHealthMonitor
    detect_fps: float
    decoded: int = 0
    _previous: GreyImage | None = None
    _next_due: float = 0.0

    def frame_arrived(self, t: float) -> bool:
        """Count a frame at monotonic `t`; True when it is due for a sample (so its pixels are mapped only then)."""
        self.decoded += 1
        if t + 1e-3 < self._next_due:
            return False
        period = 1.0 / self.detect_fps
        self._next_due = max(self._next_due + period, t - period)
        return True

    def sample(self, t: float, grey: GreyImage) -> tuple[str, str | None] | None:
        """The monitor's new state when this frame (its small grey image, `rgba_luma`) changed it."""
        # The motion gate's changed share is only the tamper rule's "scene change", which the monitor ignores (it
        # judges a moved camera by its learnt histogram): no motion gate is kept here for it.
        stats = frame_stats(grey, 0.0, self._previous)
        self._previous = grey
        return self.monitor.on_frame(t, stats, self.decoded)
