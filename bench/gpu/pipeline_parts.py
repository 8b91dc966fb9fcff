"""The parts of bench/gpu/run.py that need only numpy (or PyTorch, through the same code): geometry, SSD decode, NMS."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CAMERA_FPS = 25
ANALYSIS_FPS = 5


@dataclass(frozen=True)
class ArrayBackend:
    """numpy or torch as `xp`: the functions below use only what both spell alike (exp, stack, amax, argmax,
    argsort, zeros_like, maximum, minimum, operators), plus the one gather they spell differently."""

    xp: Any
    take_along: Callable[[Any, Any, int], Any]


NUMPY = ArrayBackend(np, np.take_along_axis)


def content_size(width: int, height: int, max_stretch: float, input_size: int) -> tuple[int, int]:
    """Pixels (width, height) of the model's square input that a width x height picture fills when its aspect
    ratio may be distorted by at most `max_stretch`: the portable backend's letterbox rule, padding right/bottom."""
    aspect = width / max(height, 1)
    # The aspect nearest to square that the permitted stretch reaches, in either direction.
    content_aspect = min(max(1.0, aspect / max_stretch), aspect * max_stretch)
    if content_aspect >= 1:
        return input_size, max(1, round(input_size / content_aspect))
    return max(1, round(input_size * content_aspect)), input_size


def yuv_to_rgb(y: Any, u: Any, v: Any, backend: ArrayBackend) -> Any:
    """Limited-range BT.601 YUV planes (floats, same shape) → RGB stacked on axis 1, 0-255: the conversion
    swscale applies to an untagged stream, as the portable backend's `to_ndarray(format="rgb24")` does."""
    luma = (y - 16.0) * 1.164383
    u, v = u - 128.0, v - 128.0
    red = luma + 1.596027 * v
    green = luma - 0.391762 * u - 0.812968 * v
    blue = luma + 2.017232 * u
    return backend.xp.stack([red, green, blue], 1).clip(0.0, 255.0)


def decode_boxes(encodings: Any, anchors: Any, box_scales: Sequence[float], backend: ArrayBackend) -> Any:
    """SSD (ty, tx, th, tw) encodings [..., 4] on anchors (y, x, h, w) [..., 4] → clipped (x1, y1, x2, y2)."""
    y_scale, x_scale, h_scale, w_scale = box_scales
    y_center = encodings[..., 0] / y_scale * anchors[..., 2] + anchors[..., 0]
    x_center = encodings[..., 1] / x_scale * anchors[..., 3] + anchors[..., 1]
    half_height = backend.xp.exp(encodings[..., 2] / h_scale) * anchors[..., 2] / 2
    half_width = backend.xp.exp(encodings[..., 3] / w_scale) * anchors[..., 3] / 2
    corners = [x_center - half_width, y_center - half_height, x_center + half_width, y_center + half_height]
    return backend.xp.stack(corners, -1).clip(0.0, 1.0)


def pairwise_iou(boxes: Any, backend: ArrayBackend) -> Any:
    """Intersection over union of every pair of (x1, y1, x2, y2) boxes of each image: [B, K, 4] → [B, K, K]."""
    xp = backend.xp
    first, second = boxes[:, :, None, :], boxes[:, None, :, :]
    width = (xp.minimum(first[..., 2], second[..., 2]) - xp.maximum(first[..., 0], second[..., 0])).clip(0.0, None)
    height = (xp.minimum(first[..., 3], second[..., 3]) - xp.maximum(first[..., 1], second[..., 1])).clip(0.0, None)
    inter = width * height
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    union = area[:, :, None] + area[:, None, :] - inter
    return inter / union.clip(1e-12, None)


def greedy_nms(boxes: Any, class_ids: Any, valid: Any, iou_threshold: float, backend: ArrayBackend) -> Any:
    """Which of each image's boxes (sorted by score, best first) greedy per-class NMS keeps: [B, K] booleans.
    One candidate per step for the whole batch, so K small steps whatever the batch size."""
    # Coordinates lie in [0, 1]: moving each class 2 further apart keeps classes from suppressing each other.
    shifted = boxes + class_ids[..., None] * 2.0
    overlapping = pairwise_iou(shifted, backend) > iou_threshold
    keep = backend.xp.zeros_like(valid)
    for index in range(valid.shape[1]):
        suppressed = (overlapping[:, :index, index] & keep[:, :index]).any(-1)
        keep[:, index] = valid[:, index] & ~suppressed
    return keep


@dataclass(frozen=True)
class Detections:
    """The best `candidates` anchors of each image, best first, and which of them are detections."""

    boxes: Any  # [B, K, 4] x1, y1, x2, y2 in fractions of the model input
    scores: Any  # [B, K]
    class_ids: Any  # [B, K], 1.. (0 is the background)
    kept: Any  # [B, K] booleans


def detect(encodings: Any, logits: Any, anchors: Any, backend: ArrayBackend, *, box_scales: Sequence[float],
           score_threshold: float, iou_threshold: float, candidates: int) -> Detections:
    """A batch's raw SSD outputs ([B, A, 4], [B, A, C], float32) → detections after the best foreground class,
    the score threshold, box decoding and per-class NMS, as inference.ssd.postprocess does one image at a time.

    Only the `candidates` best anchors of each image are decoded: greedy NMS decides a box from better boxes
    only, so the detections among them are exactly inference.ssd's; an image with more anchors above the
    threshold loses its weakest detections."""
    xp = backend.xp
    foreground = logits[..., 1:]
    best_logit = xp.amax(foreground, -1)
    order = xp.argsort(-best_logit, -1)[:, :candidates]
    best_logit = backend.take_along(best_logit, order, 1)
    class_ids = backend.take_along(xp.argmax(foreground, -1), order, 1) + 1
    boxes = decode_boxes(backend.take_along(encodings, order[..., None], 1), anchors[order], box_scales, backend)
    # The threshold compared in logit space, as inference.ssd does, so both pick the same boundary anchors.
    valid = best_logit >= math.log(score_threshold / (1.0 - score_threshold))
    kept = greedy_nms(boxes, class_ids, valid, iou_threshold, backend)
    kept = kept & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    scores = 1.0 / (1.0 + xp.exp(-best_logit))
    return Detections(boxes=boxes, scores=scores, class_ids=class_ids, kept=kept)


# The rules bench's detector inputs, and the model's outputs kept sparse ---------------------------------------------

def replay_pictures(av: Any, path: Path, detect_fps: float, sub_width: int) -> list[Any]:
    """A clip as bench.rules replays it (its clip_frames): sampled at `detect_fps`, scaled to a sub stream's size
    (`sub_width` wide when wider, even height), yuv420p. `av` is PyAV, passed in: this module imports numpy only."""
    pictures: list[Any] = []
    with av.open(str(path)) as container:
        fps = float(container.streams.video[0].average_rate or CAMERA_FPS)
        step = max(1, round(fps / detect_fps))
        for index, frame in enumerate(container.decode(video=0)):
            if index % step:
                continue
            width, height = frame.width, frame.height
            if width > sub_width:
                width, height = sub_width, round(sub_width * height / width / 2) * 2
            pictures.append(frame.reformat(width=width, height=height, format="yuv420p"))
    return pictures


def replay_input(av: Any, picture: Any, max_stretch: float, input_size: int) -> np.ndarray:
    """The model's square RGB input for one picture, as the portable backend makes it (inference.rtsp's
    DecodedFrame.detector_input: one swscale bilinear pass to BGRA at the letterbox content, black padding
    right/bottom, seen as RGB)."""
    width, height = content_size(picture.width, picture.height, max_stretch, input_size)
    converted = av.video.reformatter.VideoReformatter().reformat(picture, width=width, height=height,
                                                                 format="bgra", threads=1)
    square = np.zeros((input_size, input_size, 4), dtype=np.uint8)
    square[:height, :width] = converted.to_ndarray()
    return square[..., 2::-1]


@dataclass(frozen=True)
class SparseOutputs:
    """A batch's raw SSD outputs at the anchors that can become detections: those whose best foreground score
    reaches the floor sparse_outputs was given; the others are dropped, as postprocess drops them at any threshold
    at or above that floor."""

    offsets: np.ndarray  # [N + 1]: frame i's anchors are rows offsets[i]:offsets[i + 1]
    anchor_ids: np.ndarray  # [M] int32
    encodings: np.ndarray  # [M, 4] float32
    logits: np.ndarray  # [M, C] float32

    def arrays(self, prefix: str) -> dict[str, Any]:
        return {f"{prefix}__{name}": getattr(self, name) for name in ("offsets", "anchor_ids", "encodings", "logits")}

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> SparseOutputs:
        return cls(*(np.asarray(arrays[f"{prefix}__{name}"]) for name in ("offsets", "anchor_ids", "encodings",
                                                                            "logits")))

    @property
    def frames(self) -> int:
        return len(self.offsets) - 1

    def dense(self, frame: int, anchor_count: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame `frame`'s outputs as the model gave them at the kept anchors; elsewhere logits so low that no
        threshold keeps them."""
        rows = slice(int(self.offsets[frame]), int(self.offsets[frame + 1]))
        encodings = np.zeros((anchor_count, 4), dtype=np.float32)
        logits = np.full((anchor_count, self.logits.shape[1]), DROPPED_LOGIT, dtype=np.float32)
        encodings[self.anchor_ids[rows]] = self.encodings[rows]
        logits[self.anchor_ids[rows]] = self.logits[rows]
        return encodings, logits


DROPPED_LOGIT = -60.0  # a score of 1e-26


def sparse_outputs(encodings: np.ndarray, logits: np.ndarray, min_score: float) -> SparseOutputs:
    """[N, A, 4] encodings and [N, A, C] logits (class 0 the background) → SparseOutputs."""
    best = logits[..., 1:].max(-1)
    kept = best >= math.log(min_score / (1.0 - min_score))
    frames, anchors = np.nonzero(kept)
    offsets = np.concatenate([[0], np.cumsum(kept.sum(-1))]).astype(np.int64)
    return SparseOutputs(offsets=offsets, anchor_ids=anchors.astype(np.int32),
                         encodings=encodings[frames, anchors].astype(np.float32),
                         logits=logits[frames, anchors].astype(np.float32))


# Masked re-encode -----------------------------------------------------------------------------------------------

def masked_encode_command(ffmpeg: str, source: Path, cover_filter: str, encoder_options: Sequence[str], frames: int,
                          *, cuda_decode: bool) -> list[str]:
    """One masked camera as the recorder re-encodes it (cover painted on the decoded frame, one filter thread),
    with the encoder's options given; the sample stream looped, `frames` frames, output discarded."""
    decoding = ["-hwaccel", "cuda"] if cuda_decode else ["-threads", "1"]
    return [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", *decoding,
            "-stream_loop", "-1", "-f", "h264", "-i", str(source), "-frames:v", str(frames),
            "-vf", cover_filter, "-filter_threads", "1", *encoder_options, "-an", "-f", "null", "-"]


# Result names ---------------------------------------------------------------------------------------------------

def pipeline_entry(streams: int, processed: int, batches: int, elapsed_s: float, decoded: int,
                   stage_s: dict[str, float]) -> dict[str, Any]:
    """The figures of one full-pipeline run (names documented in run.py's docstring)."""
    fps = processed / elapsed_s if elapsed_s > 0 else 0.0
    entry: dict[str, Any] = {
        "streams": streams, "processed_fps": round(fps, 1), "mean_batch": round(processed / max(batches, 1), 1),
        "decoded_fps": round(decoded / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "streams_at_5fps": int(fps // ANALYSIS_FPS), "streams_at_25fps": int(fps // CAMERA_FPS),
    }
    for stage, seconds in stage_s.items():
        entry[f"{stage}_ms_per_batch"] = round(seconds * 1000 / max(batches, 1), 2)
        entry[f"{stage}_ms_per_frame"] = round(seconds * 1000 / max(processed, 1), 3)
    return entry


def nvenc_entry(processes: int, frames: int, walls_s: Sequence[float], cpu_s: Sequence[float]) -> dict[str, Any]:
    """The figures of K masked re-encodes run side by side, each `frames` frames (names in run.py's docstring)."""
    fps = [frames / wall for wall in walls_s]
    aggregate = sum(fps)
    return {
        "processes": processes,
        "per_process_fps_mean": round(aggregate / len(fps), 1), "per_process_fps_min": round(min(fps), 1),
        "realtime_share_min": round(min(fps) / CAMERA_FPS, 2),
        "cpu_s_per_camera_s": round(sum(cpu_s) / (len(cpu_s) * frames / CAMERA_FPS), 3),
        "aggregate_fps": round(aggregate, 1),
        "masked_cameras_sustained": int(aggregate // CAMERA_FPS),
    }
