"""SSD pre/post-processing of the MediaPipe SSD-MobileNetV2: 300x300 input in [-1, 1], 1917 anchors, box decoding, NMS.

Parameters are those of MediaPipe's object_detection_oid_v4 graph (SsdAnchorsCalculator and
TensorsToDetectionsCalculator options), so the numbers match the model as it was trained.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

INPUT_SIZE = 300
NUM_ANCHORS = 1917
BOX_SCALES = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AnchorOptions:
    num_layers: int = 6
    min_scale: float = 0.2
    max_scale: float = 0.95
    input_size: int = INPUT_SIZE
    strides: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    offset: float = 0.5
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = True


def _scale(options: AnchorOptions, index: int) -> float:
    if options.num_layers == 1:
        return (options.min_scale + options.max_scale) / 2
    return options.min_scale + (options.max_scale - options.min_scale) * index / (options.num_layers - 1)


def ssd_anchors(options: AnchorOptions = AnchorOptions()) -> FloatArray:
    """Anchors as rows (y_center, x_center, height, width) in [0, 1], in the model's output order."""
    rows: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < options.num_layers:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < options.num_layers and options.strides[last] == options.strides[layer]:
            scale = _scale(options, last)
            if last == 0 and options.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for ratio in options.aspect_ratios:
                    ratios.append(ratio)
                    scales.append(scale)
                if options.interpolated_scale_aspect_ratio > 0:
                    following = 1.0 if last == options.num_layers - 1 else _scale(options, last + 1)
                    scales.append(math.sqrt(scale * following))
                    ratios.append(options.interpolated_scale_aspect_ratio)
            last += 1
        sizes = [(s / math.sqrt(r), s * math.sqrt(r)) for s, r in zip(scales, ratios, strict=True)]
        stride = options.strides[layer]
        cells = math.ceil(options.input_size / stride)
        for y in range(cells):
            for x in range(cells):
                for height, width in sizes:
                    rows.append(((y + options.offset) / cells, (x + options.offset) / cells, height, width))
        layer = last
    return np.asarray(rows, dtype=np.float32)


def normalised_planes(rgb_frames: list[npt.NDArray[np.uint8]], channels: tuple[int, int, int],
                      scales: tuple[float, float, float], offsets: tuple[float, float, float]) -> FloatArray:
    """Square RGB frames (HWC, uint8, any strides) → one NCHW float batch whose plane p is
    frame[..., channels[p]] * scales[p] - offsets[p]."""
    planes = np.empty((len(rgb_frames), 3, *rgb_frames[0].shape[:2]), dtype=np.float32)
    # One pass per output plane straight from each frame's uint8 pixels: converting, scaling and transposing the
    # whole float batch took five passes over 4 MB and was the backend's costliest stage after inference
    # (bench.detector); frames are not stacked first, as they may be views of wider (BGRA) pixels.
    for index, pixels in enumerate(rgb_frames):
        for plane, (channel, scale, offset) in enumerate(zip(channels, scales, offsets, strict=True)):
            np.multiply(pixels[..., channel], np.float32(scale), out=planes[index, plane])
            planes[index, plane] -= np.float32(offset)
    return planes


def preprocess(rgb_frames: list[npt.NDArray[np.uint8]]) -> FloatArray:
    """Frames already resized to 300x300 RGB (HWC, uint8, any strides) → one NCHW float batch in [-1, 1]."""
    return normalised_planes(rgb_frames, (0, 1, 2), (1.0 / 127.5,) * 3, (1.0,) * 3)


def letterbox_size(width: int, height: int, max_stretch: float = 1.0, input_size: int = INPUT_SIZE
                   ) -> tuple[int, int]:
    """The picture's size inside the model's square input (`input_size` pixels a side), distorting its aspect
    ratio by at most `max_stretch` (1: kept exactly); the rest of the square is padding.

    Stretching a 640x272 picture (2.35:1) to a square squeezes people to a shape the model rarely saw; but padding
    a 4:3 picture costs a quarter of the input's pixels, and on vtest that lost more than the mild stretch did
    (bench/results/rules.json), hence a bound on the stretch rather than none.
    """
    aspect = width / max(height, 1)
    if aspect >= 1:
        content_aspect = max(1.0, aspect / max_stretch)
        return input_size, max(1, round(input_size / content_aspect))
    content_aspect = min(1.0, aspect * max_stretch)
    return max(1, round(input_size * content_aspect)), input_size


def unletterbox(box: tuple[float, float, float, float], content: tuple[int, int], input_size: int = INPUT_SIZE
                ) -> tuple[float, float, float, float]:
    """A box in fractions of the padded square → fractions of the picture that filled `content` pixels of it."""
    sx, sy = input_size / content[0], input_size / content[1]
    x1, y1, x2, y2 = box
    return (min(x1 * sx, 1.0), min(y1 * sy, 1.0), min(x2 * sx, 1.0), min(y2 * sy, 1.0))


def passes_class_threshold(score: float, label: str, thresholds: dict[str, float]) -> bool:
    """Whether a detection clears its label's own threshold (the model-wide score_threshold was applied before)."""
    return score >= thresholds.get(label, 0.0)


@dataclass(frozen=True)
class RawDetection:
    """One decoded box in normalised image coordinates (x1, y1, x2, y2 in [0, 1])."""

    class_id: int
    score: float
    box: tuple[float, float, float, float]


def decode_boxes(encodings: FloatArray, anchors: FloatArray) -> FloatArray:
    """(ty, tx, th, tw) encodings → (x1, y1, x2, y2) boxes, clipped to the image."""
    y_scale, x_scale, h_scale, w_scale = BOX_SCALES
    y_center = encodings[:, 0] / y_scale * anchors[:, 2] + anchors[:, 0]
    x_center = encodings[:, 1] / x_scale * anchors[:, 3] + anchors[:, 1]
    half_h = np.exp(encodings[:, 2] / h_scale) * anchors[:, 2] / 2
    half_w = np.exp(encodings[:, 3] / w_scale) * anchors[:, 3] / 2
    boxes = np.stack([x_center - half_w, y_center - half_h, x_center + half_w, y_center + half_h], axis=1)
    clipped: FloatArray = np.clip(boxes, 0.0, 1.0).astype(np.float32)
    return clipped


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise intersection over union of (x1, y1, x2, y2) boxes."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def non_max_suppression(boxes: FloatArray, scores: FloatArray, iou_threshold: float,
                        classes: npt.NDArray[np.int64] | None = None) -> list[int]:
    """Indices kept by greedy NMS, highest score first; with `classes`, a box suppresses boxes of its own class
    only (score ties then go to the lower class id)."""
    # One IoU matrix for all the candidates, then the greedy pass over its rows: the same boxes are kept as when
    # each kept box's overlaps are computed in turn, without a numpy call per kept box. A box's fate depends only on
    # the better boxes of its own class, so with `classes` one pass keeps what a pass per class would.
    order = np.argsort(-scores) if classes is None else np.lexsort((classes, -scores))
    suppressing = iou_matrix(boxes, boxes) > iou_threshold
    if classes is not None:
        suppressing &= classes[:, None] == classes[None, :]
    suppressed = np.zeros(len(order), dtype=bool)
    kept: list[int] = []
    for best in order:
        if suppressed[best]:
            continue
        kept.append(int(best))
        suppressed |= suppressing[best]
    return kept


def per_class_detections(boxes: FloatArray, scores: FloatArray, class_ids: npt.NDArray[np.int64],
                         iou_threshold: float, max_detections: int) -> list[RawDetection]:
    """Candidates kept by non-maximum suppression within each class, non-empty boxes only, best first."""
    detections: list[RawDetection] = []
    for best in non_max_suppression(boxes, scores, iou_threshold, class_ids):
        x1, y1, x2, y2 = boxes[best].tolist()
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            continue
        detections.append(RawDetection(int(class_ids[best]), float(scores[best]), (x1, y1, x2, y2)))
        if len(detections) == max_detections:
            break
    return detections


@functools.lru_cache(maxsize=8)
def _class_table(classes: frozenset[int], count: int) -> npt.NDArray[np.bool_]:
    """True at each class id in `classes`, for `count` classes: a lookup instead of np.isin for every image."""
    table = np.zeros(count, dtype=bool)
    table[[c for c in classes if 0 <= c < count]] = True
    return table


def postprocess(
    encodings: FloatArray,
    logits: FloatArray,
    anchors: FloatArray,
    *,
    score_threshold: float,
    iou_threshold: float,
    allowed_classes: frozenset[int] | None = None,
    max_detections: int = 100,
) -> list[RawDetection]:
    """One image's raw outputs ([1917, 4], [1917, C]) → detections after sigmoid, threshold and per-class NMS."""
    # Class 0 is the background: the best foreground class decides each anchor. Classes as rows, so that the
    # reductions run along the 1917 anchors (an argmax across 24 columns per row is ten times slower), and the
    # threshold is compared in logit space, so the sigmoid is computed for the candidates only.
    foreground = np.ascontiguousarray(logits.T[1:])
    best_logit = foreground.max(axis=0)
    candidates = np.nonzero(best_logit >= math.log(score_threshold / (1.0 - score_threshold)))[0]
    if candidates.size == 0:
        return []
    class_ids = np.argmax(foreground[:, candidates], axis=0) + 1
    scores = np.zeros(logits.shape[0], dtype=np.float32)
    scores[candidates] = 1.0 / (1.0 + np.exp(-best_logit[candidates]))
    if allowed_classes is not None:
        mask = _class_table(allowed_classes, logits.shape[1])[class_ids]
        candidates, class_ids = candidates[mask], class_ids[mask]
    boxes = decode_boxes(encodings[candidates], anchors[candidates])
    candidate_scores = scores[candidates].astype(np.float32)
    return per_class_detections(boxes, candidate_scores, class_ids, iou_threshold, max_detections)
