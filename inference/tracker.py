"""A small multi-object tracker (IoU matching on constant-velocity predictions), one instance per camera.

The maintained Python trackers did not fit: norfair pins numpy<2 and rich<15, and roboflow's `trackers` pulls
supervision, OpenCV and matplotlib. At 5 fps with tens of objects, greedy IoU matching is as good and costs
microseconds. DeepStream uses its own nvtracker; both hand the rules the same TrackedObject structs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inference.events import Box
from inference.model import TrackedObject
from inference.ssd import iou_matrix

# The DeepStream adapter's nvtracker drops targets after the same number of missed frames.
MAX_MISSES = 5


@dataclass
class _Track:
    track_id: int
    label: str
    score: float
    box: Box
    velocity: tuple[float, float, float, float]  # per second, for each box coordinate
    last_update: float
    hits: int = 1
    misses: int = 0

    def predicted(self, t: float) -> Box:
        dt = min(t - self.last_update, 1.0)  # a long gap makes extrapolation meaningless
        x1, y1, x2, y2 = (c + v * dt for c, v in zip(self.box, self.velocity, strict=True))
        return (x1, y1, x2, y2)


@dataclass(frozen=True)
class DetectedBox:
    """A detection before tracking: label, score and normalised box."""

    label: str
    score: float
    box: Box


def _feet(box: Box) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, box[3])


class DisplacementConfirmation:
    """Holds a reported track back from the rules until it has moved `min_displacement` (frame fractions) from
    where it was first reported, for the labels in `labels`; once through, it stays through when it stops.

    A lamp post the detector takes for a person never moves, so it never reaches the rules; a person does within
    a second or two. Both backends apply it after their tracker (IouTracker here, nvtracker on GPU nodes).
    """

    def __init__(self, min_displacement: float, labels: frozenset[str] = frozenset({"Person"}),
                 forget_after_s: float = 30.0) -> None:
        self._min_displacement = min_displacement
        self._labels = labels
        self._forget_after_s = forget_after_s
        self._first_seen: dict[int, tuple[float, float]] = {}
        self._confirmed: set[int] = set()
        self._last_seen: dict[int, float] = {}

    def filter(self, objects: Sequence[TrackedObject], t: float) -> list[TrackedObject]:
        kept = []
        for obj in objects:
            self._last_seen[obj.track_id] = t
            if obj.track_id not in self._confirmed:
                start = self._first_seen.setdefault(obj.track_id, _feet(obj.box))
                if obj.label in self._labels and math.dist(_feet(obj.box), start) < self._min_displacement:
                    continue
                self._confirmed.add(obj.track_id)
                self._first_seen.pop(obj.track_id, None)
            kept.append(obj)
        for track_id in [k for k, seen in self._last_seen.items() if t - seen > self._forget_after_s]:
            del self._last_seen[track_id]
            self._first_seen.pop(track_id, None)
            self._confirmed.discard(track_id)
        return kept


class IouTracker:
    """Follows objects across the frames the detector saw; a track is reported once confirmed by `min_hits`."""

    def __init__(self, *, iou_threshold: float = 0.2, min_hits: int = 2, max_misses: int = MAX_MISSES,
                 max_age_s: float = 30.0) -> None:
        self._iou_threshold = iou_threshold
        self._min_hits = min_hits
        self._max_misses = max_misses
        self._max_age_s = max_age_s
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def moving_tracks(self) -> int:
        """Tracks seen in the last detection whose boxes move by more than 2 % of the frame per second: those keep
        the detector awake. A track the detector no longer finds does not (it would keep a quiet scene busy)."""
        return sum(1 for tr in self._tracks if tr.misses == 0 and max(abs(v) for v in tr.velocity) > 0.02)

    @property
    def live_tracks(self) -> int:
        return len(self._tracks)

    @property
    def track_ids(self) -> set[int]:
        return {tr.track_id for tr in self._tracks}

    def update(self, detections: list[DetectedBox], t: float) -> list[TrackedObject]:
        """Match detections of one frame (taken at `t` seconds) and return the confirmed tracks seen in it."""
        matched_tracks: set[int] = set()
        matched_detections: set[int] = set()
        if self._tracks and detections:
            predicted = np.asarray([tr.predicted(t) for tr in self._tracks], dtype=np.float32)
            boxes = np.asarray([d.box for d in detections], dtype=np.float32)
            overlaps = iou_matrix(predicted, boxes)
            for ti, di in zip(*np.unravel_index(np.argsort(-overlaps, axis=None), overlaps.shape), strict=True):
                if overlaps[ti, di] < self._iou_threshold:
                    break
                if ti in matched_tracks or di in matched_detections:
                    continue
                if self._tracks[ti].label != detections[di].label:
                    continue
                matched_tracks.add(int(ti))
                matched_detections.add(int(di))
                self._refresh(self._tracks[ti], detections[di], t)
        for index, track in enumerate(self._tracks):
            if index not in matched_tracks:
                track.misses += 1
        for index, det in enumerate(detections):
            if index not in matched_detections:
                self._tracks.append(_Track(self._next_id, det.label, det.score, det.box, (0.0, 0.0, 0.0, 0.0), t))
                self._next_id += 1
        self._tracks = [tr for tr in self._tracks
                        if tr.misses <= self._max_misses and t - tr.last_update <= self._max_age_s]
        return [TrackedObject(track_id=tr.track_id, label=tr.label, score=tr.score, box=tr.box)
                for tr in self._tracks if tr.misses == 0 and tr.hits >= self._min_hits]

    def reset(self) -> None:
        """Forget every track (the camera reconnected or its picture changed size)."""
        self._tracks.clear()

    @staticmethod
    def _refresh(track: _Track, det: DetectedBox, t: float) -> None:
        dt = t - track.last_update
        if dt > 0:
            raw = tuple((n - o) / dt for n, o in zip(det.box, track.box, strict=True))
            # Smooth the velocity: single-frame box jitter is not motion.
            track.velocity = tuple(0.6 * v + 0.4 * r for v, r in zip(track.velocity, raw, strict=True))  # type: ignore[assignment]
        track.box = det.box
        track.score = det.score
        track.last_update = t
        track.hits += 1
        track.misses = 0
