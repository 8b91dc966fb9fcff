"""Left objects without a detector class: regions that changed against a slow background but are still in a fast one."""

# The classic dual-background method. A fast background absorbs anything that stops moving within a second or two;
# a slow one only learns where the picture matches it (lighting drift), so a left object stays foreground for it.
# Pixels foreground for the slow background and background for the fast one are "static": something arrived and
# stopped. How long it has been there is the age of its pixels against the slow background, so an object counts
# from the moment it appeared, not from when the fast background took it in. Everything runs on the small luma
# image the motion gate already reads (about 128x96), in 16-bit fixed point; regions are grouped on a grid of
# 4x4-pixel blocks, which closes the gaps a textured object leaves and keeps the labelling to a few hundred cells.
# A region can also be a hole in the slow background (someone standing in the first frame walks off): the edge test
# tells it apart, the object's outline being in the picture and the hole's in the background, and the picture is
# taken into the background there. The model does not know what a region is: a person standing still is one too,
# and the rule drops regions under a tracked person (inference/analytics.py).

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from inference.model import StaticRegion
from inference.motion import FIXED_SHIFT, GreyImage

BLOCK = 4  # pixels of the small grey image per block side
BLOCK_MIN_PIXELS = 4  # static pixels (of 16) for a block to count
NOT_SEEN = math.inf
# A change of light within these (of the picture's spread; grey levels of its mean) is left to the slow
# background's learning.
GAIN_TOLERANCE = 0.03
OFFSET_TOLERANCE = 4
CURVE_POINTS = 33  # quantiles matched between the background and the picture
CLIPPED_WHITE, CLIPPED_BLACK = 250, 4  # grey levels at which a background pixel holds a bound, not a level
UNEXPLAINED_SHARE = 0.1  # of the picture still different once the light is matched: not a change of light alone
# A region that appeared with a change of light is that light (not an object) when, over its box, the picture is a
# straight line of the background: explaining this share of its variance, with a slope a light gives, over a
# background with this spread (grey levels) to read a line off.
RELIT_FIT = 0.9
RELIT_SLOPES = (0.5, 2.0)
RELIT_MIN_SPREAD = 8


class StaticObjectModel:
    """Per-camera static-foreground model; call `observe` with every sampled grey frame (same size each time)."""

    def __init__(self, *, pixel_threshold: int = 25, min_area: float = 0.001, max_area: float = 0.05,
                 fast_shift: int = 2, slow_shift: int = 6, scene_change: float = 0.5,
                 forget_s: float = 600.0) -> None:
        self._threshold = pixel_threshold << FIXED_SHIFT
        self.min_area = min_area
        self.max_area = max_area
        # At 5 fps the fast background moves a quarter of the way per frame (an object is in it after ~2 s); the
        # slow one 1/64 per frame, and only where nothing differs from it.
        self._fast_shift = fast_shift
        self._slow_shift = slow_shift
        self._scene_change = scene_change
        # Something still there after this long is taken into the slow background (a parked car, moved furniture):
        # it has been reported by then, and would otherwise stay foreground forever.
        self.forget_s = forget_s
        self._fast: npt.NDArray[np.int16] | None = None
        self._slow: npt.NDArray[np.int16] | None = None
        self._since: npt.NDArray[np.float64] | None = None  # when each pixel began to differ from the slow one
        self._with_light: npt.NDArray[np.bool_] | None = None  # pixels that began to differ as the light changed

    def reset(self) -> None:
        self._fast = self._slow = self._since = self._with_light = None

    def observe(self, grey: GreyImage, t: float) -> tuple[StaticRegion, ...]:
        """The static regions after this frame (normalised boxes, with how long they have been there)."""
        frame = grey.astype(np.int16) << FIXED_SHIFT
        if (self._fast is None or self._slow is None or self._since is None or self._with_light is None
                or self._fast.shape != frame.shape):
            self._fast, self._slow = frame.copy(), frame.copy()
            self._since = np.full(frame.shape, NOT_SEEN)
            self._with_light = np.zeros(frame.shape, dtype=np.bool_)
            return ()
        curve = light_change(frame, self._slow)
        if curve is not None:
            # The scene's light changed (a cloud over the sun, lamps, the camera's exposure or its infrared mode): it
            # maps the grey levels through a curve, so bright surfaces change by more than the threshold while dark
            # ones do not, and they would stay foreground as object-sized regions. The backgrounds take it at once.
            self._slow = _retoned(self._slow, curve, frame)
            self._fast = _retoned(self._fast, curve, frame)
        to_slow = frame - self._slow
        to_fast = frame - self._fast
        foreground = np.abs(to_slow) > self._threshold
        changed = np.count_nonzero(foreground)
        if changed >= self._scene_change * foreground.size or (
                curve is not None and changed >= UNEXPLAINED_SHARE * foreground.size):
            # Lights switched, the camera moved, or a change of light that no curve explains (a light on one side
            # only, infrared turning green leaves bright): start over rather than report half the picture.
            self._fast, self._slow = frame.copy(), frame.copy()
            self._since.fill(NOT_SEEN)
            return ()
        since, with_light = self._since, self._with_light
        since[~foreground] = NOT_SEEN
        arrived = foreground & (since == NOT_SEEN)
        since[arrived] = t
        with_light[arrived] = curve is not None
        old = foreground & (t - since >= self.forget_s)
        if old.any():
            self._slow[old] = frame[old]
            since[old] = NOT_SEEN
            foreground &= ~old
        static = foreground & (np.abs(to_fast) <= self._threshold)
        # Rounded shifts, so that the backgrounds do not creep downwards by a fixed-point unit per frame.
        self._fast += (to_fast + (1 << (self._fast_shift - 1))) >> self._fast_shift
        learn = np.where(foreground, 0, (to_slow + (1 << (self._slow_shift - 1))) >> self._slow_shift)
        self._slow += learn.astype(np.int16)
        return self._regions(frame, self._slow, static, since, with_light, t)

    def _regions(self, frame: npt.NDArray[np.int16], slow: npt.NDArray[np.int16], static: npt.NDArray[np.bool_],
                 since: npt.NDArray[np.float64], with_light: npt.NDArray[np.bool_], t: float
                 ) -> tuple[StaticRegion, ...]:
        height, width = static.shape
        rows, cols = height // BLOCK, width // BLOCK
        if not rows or not cols:
            return ()
        cropped = static[: rows * BLOCK, : cols * BLOCK]
        counts = cropped.reshape(rows, BLOCK, cols, BLOCK).sum(axis=(1, 3), dtype=np.int16)
        active = counts >= BLOCK_MIN_PIXELS
        if not active.any():
            return ()
        labels = _components(active)
        regions = []
        total = float(height * width)
        for label in np.unique(labels[labels > 0]):
            cells = labels == label
            area = int(counts[cells].sum()) / total
            if not self.min_area <= area <= self.max_area:
                continue
            ys, xs = np.nonzero(cells)
            y1, y2 = int(ys.min()) * BLOCK, (int(ys.max()) + 1) * BLOCK
            x1, x2 = int(xs.min()) * BLOCK, (int(xs.max()) + 1) * BLOCK
            pixels = cropped[y1:y2, x1:x2] & np.repeat(np.repeat(cells, BLOCK, axis=0), BLOCK, axis=1)[y1:y2, x1:x2]
            came_with_light = np.count_nonzero(with_light[y1:y2, x1:x2][pixels]) * 2 > np.count_nonzero(pixels)
            if _ghost(frame, slow, (y1, y2, x1, x2)) or (
                    came_with_light and _relit(frame, slow, pixels, (y1, y2, x1, x2), self._threshold)):
                # Something that was in the background went away (someone standing in the first frame walked
                # off), or the region is the background under a light the picture's curve did not map (a
                # saturated colour, its channels clipped in the brighter light, is greyer than its level says):
                # the slow background is wrong there, not the picture. Take the picture in.
                slow[y1:y2, x1:x2][pixels] = frame[y1:y2, x1:x2][pixels]
                since[y1:y2, x1:x2][pixels] = NOT_SEEN
                continue
            # The median age of its static pixels: a few edge pixels flickering in and out do not make it younger.
            still_s = t - float(np.median(since[: rows * BLOCK, : cols * BLOCK][y1:y2, x1:x2][pixels]))
            regions.append(StaticRegion(box=(x1 / width, y1 / height, x2 / width, y2 / height),
                                        still_s=round(still_s, 3)))
        return tuple(regions)


def light_change(frame: npt.NDArray[np.int16], background: npt.NDArray[np.int16]
                 ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
    """How the light maps the background's grey levels to the picture's, as a curve through matching quantiles of
    the two on every other pixel (any global change that keeps the order of the grey levels: a cloud, the exposure,
    the infrared picture's own black level; what arrived or moved, a small share, barely bends it); None when the
    picture's mean and spread say the light has not changed beyond GAIN_TOLERANCE and OFFSET_TOLERANCE."""
    picture = frame[::2, ::2].ravel().astype(np.float32)
    reference = background[::2, ::2].ravel().astype(np.float32)
    spread, reference_spread = float(picture.std()), float(reference.std())
    if abs(float(picture.mean() - reference.mean())) <= OFFSET_TOLERANCE << FIXED_SHIFT and \
            abs(spread - reference_spread) <= GAIN_TOLERANCE * reference_spread:
        return None  # most frames
    ranks = np.linspace(0, picture.size - 1, CURVE_POINTS).astype(np.intp)
    before, after = np.sort(reference)[ranks], np.sort(picture)[ranks]
    rising = np.concatenate(([True], np.diff(before) > 0))  # np.interp needs rising abscissae
    return before[rising], after[rising]


def _retoned(background: npt.NDArray[np.int16], curve: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
             frame: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """The background under the new light. Where it was clipped (white or black) it held no level to map, only a
    bound: the picture is taken there instead (a white van at 255 under a brighter sky is not 280 when it darkens)."""
    table = np.rint(np.interp(np.arange(256 << FIXED_SHIFT), *curve)).astype(np.int16)  # every fixed-point level
    retoned = table[background]
    clipped = (background >= CLIPPED_WHITE << FIXED_SHIFT) | (background <= CLIPPED_BLACK << FIXED_SHIFT)
    retoned[clipped] = frame[clipped]
    return retoned


def _relit(frame: npt.NDArray[np.int16], slow: npt.NDArray[np.int16], pixels: npt.NDArray[np.bool_],
           box: tuple[int, int, int, int], threshold: int) -> bool:
    """Whether a region's picture is its background under another light: over its box, the picture is a straight
    line of the background (RELIT_FIT, a slope within RELIT_SLOPES, a background spread enough to read a line off),
    and the region's own pixels lie on it within the pixel threshold. An object brings its own levels instead."""
    y1, y2, x1, x2 = box
    background = slow[y1:y2, x1:x2].astype(np.float32)
    picture = frame[y1:y2, x1:x2].astype(np.float32)
    spread = float(background.std())
    if spread < RELIT_MIN_SPREAD << FIXED_SHIFT:
        return False
    slope = float(((background - background.mean()) * (picture - picture.mean())).mean()) / spread ** 2
    residual = picture - picture.mean() - slope * (background - background.mean())
    explained = 1.0 - float(residual.var()) / max(float(picture.var()), 1.0)
    return (RELIT_SLOPES[0] <= slope <= RELIT_SLOPES[1] and explained >= RELIT_FIT
            and float(np.median(np.abs(residual[pixels]))) <= threshold)


def _ghost(frame: npt.NDArray[np.int16], slow: npt.NDArray[np.int16], box: tuple[int, int, int, int]) -> bool:
    """Whether a region is a hole left in the slow background rather than an object in the picture: an object
    brings its outline into the picture, a hole has it in the background (the classic edge test). Compared over the
    region's box and one pixel around it."""
    y1, y2, x1, x2 = box
    y1, x1 = max(0, y1 - 1), max(0, x1 - 1)
    y2, x2 = min(frame.shape[0], y2 + 1), min(frame.shape[1], x2 + 1)
    return _edges(frame[y1:y2, x1:x2]) < _edges(slow[y1:y2, x1:x2])


def _edges(image: npt.NDArray[np.int16]) -> int:
    """Sum of absolute differences between neighbouring pixels: how much outline a patch holds."""
    wide = image.astype(np.int32)
    return int(np.abs(np.diff(wide, axis=0)).sum() + np.abs(np.diff(wide, axis=1)).sum())


def _components(active: npt.NDArray[np.bool_]) -> npt.NDArray[np.int32]:
    """4-connected components of a small boolean grid: each active cell takes the largest label among its active
    neighbours until nothing changes (a few passes for object-sized regions)."""
    rows, cols = active.shape
    labels = np.zeros((rows + 2, cols + 2), dtype=np.int32)
    inner = labels[1:-1, 1:-1]
    inner[active] = np.arange(1, int(active.sum()) + 1, dtype=np.int32)
    for _ in range(rows * cols):
        grown = np.maximum.reduce([inner, labels[:-2, 1:-1], labels[2:, 1:-1], labels[1:-1, :-2], labels[1:-1, 2:]])
        grown[~active] = 0
        if np.array_equal(grown, inner):
            break
        inner[...] = grown
    return np.ascontiguousarray(inner)
