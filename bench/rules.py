"""Rules and detector against the ground truth of bench/data → bench/results/rules.json (python -m bench.rules)."""

# For every annotated clip (bench/data/*.json, format in bench/data/README.md) the portable backend runs as in
# production (sub-stream size, 5 fps, motion gating) with the clip's zones and rules; each alert is matched to an
# annotated event of its rule (one alert per person, from 1 s before to 1.5 s after). Per rule: precision, recall
# and false alerts per camera-hour over the clips that annotate the rule; the detector's person AP@0.5 on the
# annotated frames; false alerts per camera-hour of every rule on quiet footage (bench/quiet.py: still, light
# changes, infrared night, a shaking mast, rain, day/infrared switches, foliage in the wind). Each lever is measured
# alone, in the same run, against the same baseline (the pipeline before the levers). A few minutes on 2 cores.


from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np

from bench.detector import (
    ROOT,
    CountingSink,
    ReplayReader,
    commit,
    load_detector,
    model_argument,
    prepare,
    results_name,
)
from bench.quiet import DESCRIPTIONS, QUIET_KINDS, NightClip, QuietFootage, QuietKind, plate_of
from bench.scenes import scene_path
from camsim.footage import source_path
from core.events import Event
from inference.events import Box
from inference.lying_people import PoseScorer
from inference.model import CameraConfig, Rule, RuleParams, RuleType, Zone, covered
from inference.motion import MotionGate
from inference.onnx_detector import OnnxDetector
from inference.portable import Detector, PortableBackend
from inference.pose import pose_from_settings
from inference.rtsp import ReaderOptions
from inference.settings import InferenceSettings, ModelKind
from inference.ssd import iou_matrix, unletterbox

RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "bench" / "data"
DETECT_FPS = 5.0
SUB_WIDTH = 384  # wider clips are scaled to this width (a camera's sub stream); narrower ones are kept
TOLERANCE_S = (1.0, 1.5)  # an alert may precede an annotated time by 1 s, or follow it by 1.5 s
QUIET_MINUTES = 10.0
NIGHT_STRETCHES = {"dark": 1.0, "stretched": 2.5}  # the night picture as it is, and with the camera's gain
# What the abandoned-object rule watches, in each model's vocabulary: the annotations name the SSD's classes (the
# Open Images subset has no bag), NanoDet's COCO classes include backpack, handbag and suitcase.
LEFT_OBJECT_CLASSES: dict[str, tuple[str, ...]] = {
    "ssd": ("Box", "Bottle", "Laptop", "Book", "Camera"),
    "nanodet": ("Backpack", "Handbag", "Suitcase", "Bottle", "Laptop", "Book"),
}


def footage_path(clip: dict[str, Any]) -> Path:
    if "scene" in clip:  # built by bench.scenes, rendered into its cache on first use
        return scene_path(clip["clip"])
    return source_path(clip["clip"])


# Rules whose annotation is a start instant or an interval (format in bench/data/README.md), not the alert's time.
BUILT_RULES = ("loitering", "abandoned_object", "person_on_ground", "excessive_density")


def expected_alerts(kind: str, spec: dict[str, Any]) -> list[float]:
    """When an operator should be told, from a rule's annotation: an entry's time; for loitering, dwell_s after
    entering the zone (when the stay lasts that long); for an abandoned object, stationary_s after it is left; for a
    fall, hold_s after it (when the person stays down that long); for a crowd, hold_s after the count first goes
    over max_objects (when it stays over that long)."""
    params = RuleParams(**spec.get("params", {}))
    if kind == "loitering":
        return [start + params.dwell_s for start, end in spec["intervals"] if end - start >= params.dwell_s]
    if kind == "abandoned_object":
        return [t + params.stationary_s for t, removed in spec["drops"]
                if removed is None or removed - t >= params.stationary_s]
    if kind == "person_on_ground":
        return [t + params.hold_s for t, up in spec["falls"] if up is None or up - t >= params.hold_s]
    if kind == "excessive_density":
        return [start + params.hold_s for start, end in spec["intervals"] if end - start >= params.hold_s]
    return list(spec["times"])


@dataclass(frozen=True)
class Variant:
    """One configuration of the levers: settings of the worker and parameters added to every rule."""

    name: str
    settings: dict[str, Any]
    rule_params: dict[str, Any]


BASELINE: dict[str, Any] = {"max_stretch": 10.0, "track_min_hits": 2, "track_min_displacement": 0.0,
                            "join_fragments": False}
VARIANTS = [
    Variant("baseline: stretched input, tracks after 2 hits", BASELINE, {}),
    Variant("letterbox (no stretch at all)", {**BASELINE, "max_stretch": 1.0}, {}),
    Variant("letterbox beyond a 1.5 stretch", {**BASELINE, "max_stretch": 1.5}, {}),
    Variant("confirmation: 3 hits and 3 % displacement", {**BASELINE, "track_min_hits": 3,
                                                          "track_min_displacement": 0.03}, {}),
    Variant("fragments joined", {**BASELINE, "join_fragments": True}, {}),
    Variant("rule min score 0.5", BASELINE, {"min_score": 0.5}),
    Variant("rule min box height 8 %", BASELINE, {"min_box_height": 0.08}),
    Variant("default settings", {}, {}),
]


def sub_size(width: int, height: int) -> tuple[int, int]:
    if width <= SUB_WIDTH:
        return width, height
    return SUB_WIDTH, round(SUB_WIDTH * height / width / 2) * 2


def clip_frames(path: Path) -> tuple[list[av.VideoFrame], float]:
    """The clip sampled at DETECT_FPS and scaled to a sub stream's size, and the source frame rate."""
    frames: list[av.VideoFrame] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        step = max(1, round(fps / DETECT_FPS))
        for index, frame in enumerate(container.decode(video=0)):
            if index % step == 0:
                width, height = sub_size(frame.width, frame.height)
                frames.append(frame.reformat(width=width, height=height, format="yuv420p"))
    return frames, fps


@dataclass
class Alert:
    time: float
    rule_type: str
    direction: str  # for line crossings: "east" or "west" on screen; "" otherwise


def match(alerts: Sequence[float], truth: Sequence[float], ambiguous: Sequence[Sequence[float]]
          ) -> tuple[int, int, int]:
    """(matched events, false alerts, ignored alerts): greedy one-to-one in time order within the tolerance; an
    unmatched alert inside an ambiguous interval is ignored."""
    unmatched = sorted(truth)
    matched = false = ignored = 0
    for alert in sorted(alerts):
        for t in unmatched:
            if t - TOLERANCE_S[0] <= alert <= t + TOLERANCE_S[1]:
                unmatched.remove(t)
                matched += 1
                break
        else:
            if any(start - TOLERANCE_S[0] <= alert <= end + TOLERANCE_S[1] for start, end in ambiguous):
                ignored += 1
            else:
                false += 1
    return matched, false, ignored


def zones_of(clip: dict[str, Any], tenant: uuid.UUID, camera: uuid.UUID) -> dict[str, Zone]:
    return {name: Zone(id=uuid.uuid4(), tenant_id=tenant, camera_id=camera, name=name, kind=z["kind"],
                       points=tuple((float(x), float(y)) for x, y in z["points"]))
            for name, z in clip["zones"].items()}


def build_config(clip: dict[str, Any], params: dict[str, Any], kind_of_model: ModelKind = "ssd"
                 ) -> tuple[CameraConfig, dict[uuid.UUID, tuple[str, str]]]:
    """The camera with the clip's zones and one rule per annotated rule type (one per direction for lines), and
    what each rule id stands for: (rule type, direction on screen or "")."""
    tenant, camera = uuid.uuid4(), uuid.uuid4()
    zones = zones_of(clip, tenant, camera)
    events = clip["events"]
    meaning: dict[uuid.UUID, tuple[str, str]] = {}
    rules = []
    if "intrusion" in events:
        rule_id = uuid.uuid4()
        meaning[rule_id] = ("intrusion", "")
        rules.append(Rule(id=rule_id, tenant_id=tenant, camera_id=camera, rule_type=RuleType.INTRUSION,
                          zone_id=zones[events["intrusion"]["zone"]].id, params=RuleParams(**params)))
    if "line_crossing" in events:
        line = zones[events["line_crossing"]["zone"]]
        (_, ay), (_, by) = line.points
        # Image y points down: with a→b drawn downwards, its left-hand side is the screen's east, so
        # "left_to_right" (from a→b's left to its right) is a walk west; drawn upwards, the reverse.
        sides: tuple[Literal["left_to_right", "right_to_left"], ...] = (
            ("left_to_right", "right_to_left") if by > ay else ("right_to_left", "left_to_right"))
        for direction, side in zip(("west", "east"), sides, strict=True):
            rule_id = uuid.uuid4()
            meaning[rule_id] = ("line_crossing", direction)
            rules.append(Rule(id=rule_id, tenant_id=tenant, camera_id=camera, rule_type=RuleType.LINE_CROSSING,
                              zone_id=line.id, params=RuleParams(**params, direction=side)))
    for kind in BUILT_RULES:
        if kind not in events:
            continue
        spec = events[kind]
        own = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.get("params", {}).items()}
        if "classes" in own and kind == "abandoned_object":
            own["classes"] = LEFT_OBJECT_CLASSES[kind_of_model]
        rule_id = uuid.uuid4()
        meaning[rule_id] = (kind, "")
        rules.append(Rule(id=rule_id, tenant_id=tenant, camera_id=camera, rule_type=RuleType(kind),
                          zone_id=zones[spec["zone"]].id if "zone" in spec else None,
                          params=RuleParams(**{**own, **params})))
    config = CameraConfig(camera_id=camera, tenant_id=tenant, name=clip["clip"], stream_url="rtsp://replay/sub",
                          zones=tuple(zones.values()), rules=tuple(rules))
    return config, meaning


class RecordingSink(CountingSink):
    """Counts events like CountingSink and keeps each rule alert with the replay's clock."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.alerts: list[tuple[float, uuid.UUID, int]] = []
        self.crop_images = 0  # detector inputs the replay spent on crops (people on the ground)

    def submit(self, event: Event, camera_id: uuid.UUID, picture: object = None) -> None:
        rule_id = getattr(event, "rule_id", None)
        if rule_id is not None:
            self.alerts.append((self.now, rule_id, len(getattr(event, "track_ids", ())) or 1))
        super().submit(event, camera_id, picture)


async def replay(detector: Detector, frames: Sequence[av.VideoFrame], config: CameraConfig,
                 settings: InferenceSettings, *, pose: PoseScorer | None = None,
                 watch: Callable[[PortableBackend], None] | None = None) -> RecordingSink:
    """Every frame through the portable backend in lockstep, as a camera at DETECT_FPS would deliver them (`pose`:
    the second stage for people on the ground); `watch` sees the backend once its camera is set up."""
    readers: dict[uuid.UUID, ReplayReader] = {}

    def factory(camera: uuid.UUID, url: str, options: ReaderOptions, on_change: object,
                on_frame: object) -> ReplayReader:
        readers[camera] = ReplayReader(camera, frames, lockstep=True, max_stretch=options.max_stretch,
                                       input_size=options.input_size, fresh=False)
        return readers[camera]

    sink = RecordingSink()
    backend = PortableBackend(detector, sink, settings, reader_factory=factory,  # type: ignore[arg-type]
                              pose=pose)
    backend.apply([config])
    if watch is not None:
        watch(backend)
    reader = readers[config.camera_id]
    for index in range(len(frames)):
        sink.now = index / DETECT_FPS
        reader.advance()
        await backend.step()
    backend.close()
    sink.crop_images = backend.crop_images
    return sink


def score_rules(per_clip: list[tuple[dict[str, Any], dict[uuid.UUID, tuple[str, str]], RecordingSink]]
                ) -> dict[str, dict[str, float | int]]:
    totals: dict[str, dict[str, float]] = {}
    for clip, meaning, sink in per_clip:
        hours = clip["duration_s"] / 3600
        for kind in {k for k, _ in meaning.values()}:
            spec = clip["events"][kind]
            if kind == "line_crossing":
                groups = {d: [t for t, dd in spec["crossings"] if dd == d] for d in ("east", "west")}
            else:
                groups = {"": expected_alerts(kind, spec)}
            row = totals.setdefault(kind, {"events": 0, "alerts": 0, "matched": 0, "false": 0, "ignored": 0,
                                           "hours": 0.0})
            row["hours"] += hours
            for direction, truth in groups.items():
                # A crowd alert is one alert whatever the number of people it names; the others, one per person.
                alerts = [t for t, rule_id, n in sink.alerts if meaning.get(rule_id) == (kind, direction)
                          for _ in range(1 if kind == "excessive_density" else n)]
                matched, false, ignored = match(alerts, truth, spec.get("ambiguous", []))
                row["events"] += len(truth)
                row["alerts"] += len(alerts)
                row["matched"] += matched
                row["false"] += false
                row["ignored"] += ignored
    result: dict[str, dict[str, float | int]] = {}
    for kind, row in totals.items():
        counted = row["matched"] + row["false"]
        result[kind] = {
            "precision": round(row["matched"] / counted, 3) if counted else 0.0,
            "recall": round(row["matched"] / row["events"], 3) if row["events"] else 0.0,
            "false_alerts_per_camera_hour": round(row["false"] / row["hours"], 1),
            "events": int(row["events"]), "alerts": int(row["alerts"]), "matched": int(row["matched"]),
            "false_alerts": int(row["false"]), "ignored_in_ambiguous_spans": int(row["ignored"]),
            "footage_hours": round(row["hours"], 4),
        }
    return result


def average_precision(scored: list[tuple[float, bool]], positives: int) -> float:
    """All-point interpolated AP (PASCAL VOC 2010+) from (score, is true positive) pairs."""
    if positives == 0:
        return 0.0
    scored.sort(key=lambda s: -s[0])
    tp = np.cumsum([1.0 if ok else 0.0 for _, ok in scored])
    fp = np.cumsum([0.0 if ok else 1.0 for _, ok in scored])
    recall = np.concatenate([[0.0], tp / positives, [1.0]]) if scored else np.array([0.0, 1.0])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1e-9), [0.0]]) if scored else np.array([1.0, 0.0])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def score_detections(found: list[tuple[float, Box]], truth: list[Box], ignore: list[Box]) -> list[tuple[float, bool]]:
    """Each detection of one frame (score, normalised box; best first) as a true or false positive at IoU 0.5,
    each annotated box taken once; a detection that matches no box and lies at least half inside an ignore region
    (someone too small, hidden or cut off to demand) is neither and is left out."""
    scored: list[tuple[float, bool]] = []
    truth_array = np.asarray(truth, dtype=np.float32).reshape(-1, 4)
    taken: set[int] = set()
    for score, box in found:
        overlaps = iou_matrix(np.asarray([box], dtype=np.float32), truth_array)[0] if len(truth) else np.zeros(0)
        best = int(np.argmax(overlaps)) if overlaps.size else -1  # PASCAL: the best box, even when taken
        if best >= 0 and overlaps[best] >= 0.5 and best not in taken:
            taken.add(best)
            scored.append((score, True))
        elif not any(covered(box, region) >= 0.5 for region in ignore):
            scored.append((score, False))
    return scored


def ap_summary(scored: list[tuple[float, bool]], positives: int, threshold: float) -> dict[str, Any]:
    """AP@0.5, and precision and recall at the live score threshold."""
    hits = sum(1 for score, ok in scored if ok and score >= threshold)
    kept = sum(1 for score, _ in scored if score >= threshold)
    return {"person_ap50": round(average_precision(scored, positives), 3), "person_boxes": positives,
            f"precision_at_{threshold}": round(hits / max(kept, 1), 3),
            f"recall_at_{threshold}": round(hits / max(positives, 1), 3)}


def normalised(boxes: list[list[int]], width: int, height: int) -> list[Box]:
    """Pixel boxes → fractions of the picture."""
    return [(x1 / width, y1 / height, x2 / width, y2 / height) for x1, y1, x2, y2 in boxes]


def detector_ap(settings: InferenceSettings, clips: list[dict[str, Any]], *, max_stretch: float) -> dict[str, Any]:
    """Person AP@0.5 of the detector alone on the annotated frames, at sub-stream size: all clips, and per clip."""
    detector = OnnxDetector(settings.onnx_path, settings.labels_file, score_threshold=0.05, iou_threshold=0.45,
                            tracked_labels=("Person",), kind=settings.model_kind)
    size = detector.input_size
    person = detector.labels.index("Person")
    threshold = InferenceSettings().score_threshold
    every: list[tuple[float, bool]] = []
    positives = 0
    per_clip: dict[str, Any] = {}
    for clip in clips:
        wanted = {round(float(t) * clip["fps"]): boxes for t, boxes in clip["person_boxes"].items()}
        ignored = {round(float(t) * clip["fps"]): boxes for t, boxes in clip.get("person_ignore", {}).items()}
        if not wanted:
            continue
        width, height = clip["size"]
        scored: list[tuple[float, bool]] = []
        boxes = 0
        with av.open(str(footage_path(clip))) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index not in wanted:
                    continue
                sub_w, sub_h = sub_size(frame.width, frame.height)
                # The detector's input made by the backend's own code, as a camera's sampled frame.
                sampled = prepare(uuid.uuid4(), frame.reformat(width=sub_w, height=sub_h), MotionGate(), 0.0,
                                  max_stretch=max_stretch, input_size=size)
                content = sampled.detector_content
                found = [(d.score, unletterbox(d.box, content, size))
                         for d in detector.detect([sampled.detector_input])[0] if d.class_id == person]
                scored += score_detections(found, normalised(wanted[index], width, height),
                                           normalised(ignored.get(index, []), width, height))
                boxes += len(wanted[index])
        per_clip[clip["clip"]] = ap_summary(scored, boxes, threshold)
        every += scored
        positives += boxes
    return {**ap_summary(every, positives, threshold), "per_clip": per_clip}


def quiet_config(settings: InferenceSettings, params: dict[str, Any]) -> CameraConfig:
    """One camera watching its whole picture with every rule that quiet footage can raise falsely."""
    tenant, camera = uuid.uuid4(), uuid.uuid4()
    zone = Zone(id=uuid.uuid4(), tenant_id=tenant, camera_id=camera, name="all", kind="zone",
                points=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)))
    line = Zone(id=uuid.uuid4(), tenant_id=tenant, camera_id=camera, name="mid", kind="line",
                points=((0.5, 0.1), (0.5, 0.9)))
    kinds = [RuleType.INTRUSION, RuleType.LOITERING, RuleType.LINE_CROSSING, RuleType.EXCESSIVE_DENSITY,
             RuleType.ABANDONED_OBJECT, RuleType.PERSON_ON_GROUND, RuleType.CAMERA_TAMPER]
    rules = []
    for kind in kinds:
        zone_id = line.id if kind is RuleType.LINE_CROSSING else (
            zone.id if kind in (RuleType.INTRUSION, RuleType.LOITERING, RuleType.EXCESSIVE_DENSITY) else None)
        extra: dict[str, Any] = {"max_objects": 3} if kind is RuleType.EXCESSIVE_DENSITY else {}
        if kind is RuleType.ABANDONED_OBJECT:
            extra["classes"] = LEFT_OBJECT_CLASSES[settings.model_kind]
        rules.append(Rule(id=uuid.uuid4(), tenant_id=tenant, camera_id=camera, rule_type=kind, zone_id=zone_id,
                          params=RuleParams(**{**params, **extra})))
    return CameraConfig(camera_id=camera, tenant_id=tenant, name="quiet", stream_url="rtsp://replay/sub",
                        zones=(zone, line), rules=tuple(rules))


def quiet_kind(footage_kind: QuietKind, seed: int, plate: np.ndarray, minutes: float, settings: InferenceSettings,
               params: dict[str, Any]) -> dict[str, Any]:
    """One kind of quiet footage on a new camera with every rule quiet footage can raise falsely, gating as in
    production; its own detector, so that kinds can run in separate processes."""
    config = quiet_config(settings, params)
    length = int(minutes * 60 * DETECT_FPS)
    footage = QuietFootage(plate, footage_kind, length, DETECT_FPS, seed)
    sink = asyncio.run(replay(detector_for(settings), footage, config, settings, pose=pose_from_settings(settings)))
    kind_of = {r.id: r.rule_type.value for r in config.rules}
    counts = {r.rule_type.value: 0 for r in config.rules}
    for _, rule_id, n in sink.alerts:
        counts[kind_of[rule_id]] += n
    return {"what": DESCRIPTIONS[footage_kind], "footage_hours": round(length / DETECT_FPS / 3600, 3),
            "false_alerts": counts, "alerts": [[round(t, 1), kind_of[r]] for t, r, _ in sink.alerts]}


def quiet(vtest: list[av.VideoFrame], settings: InferenceSettings, params: dict[str, Any],
          minutes: float = QUIET_MINUTES, jobs: int = 1, only: Sequence[QuietKind] = ()) -> dict[str, Any]:
    """False alerts per camera-hour of every rule on `minutes` of each kind of quiet footage (vtest's place without
    its passers-by, in each of bench.quiet's QUIET_KINDS: still, light changes, infrared night, a shaking mast, rain,
    day/infrared switches, foliage in the wind), each kind on a new camera; `jobs` kinds at once, each in its own
    process (the footage is mostly gated out, so one kind keeps about one core busy); `only` those kinds. Each kind
    has its own seed, whatever `jobs` and `only` are."""
    plate = plate_of(vtest)
    kinds = [(seed, kind) for seed, kind in enumerate(QUIET_KINDS, start=1) if not only or kind in only]
    if jobs == 1:
        runs = [quiet_kind(kind, seed, plate, minutes, settings, params) for seed, kind in kinds]
    else:
        # Spawned, not forked: onnxruntime's threads in this process would not survive a fork.
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(quiet_kind, [k for _, k in kinds], [s for s, _ in kinds], itertools.repeat(plate),
                                 itertools.repeat(minutes), itertools.repeat(settings), itertools.repeat(params)))
    by_footage = {kind: run for (_, kind), run in zip(kinds, runs, strict=True)}
    totals: dict[str, int] = {}
    for run in runs:
        for rule, n in run["false_alerts"].items():
            totals[rule] = totals.get(rule, 0) + n
    hours = sum(run["footage_hours"] for run in runs)
    return {"footage_hours": round(hours, 3),
            "false_alerts_per_camera_hour": {k: round(v / hours, 2) for k, v in totals.items()},
            "false_alerts": totals, "by_footage": by_footage}


async def night(detector: OnnxDetector, clips: list[dict[str, Any]], footage: dict[str, list[av.VideoFrame]],
                settings: InferenceSettings, params: dict[str, Any]) -> dict[str, Any]:
    """The rules on the real clips shown as an infrared camera at night would show them (bench.quiet.NightClip): as
    dark as that, and stretched back by the camera's automatic gain (noise and all)."""
    results: dict[str, Any] = {}
    for name, stretch in NIGHT_STRETCHES.items():
        per_clip = []
        for seed, clip in enumerate(clips, start=1):
            config, meaning = build_config(clip, params, settings.model_kind)
            frames = NightClip(footage[clip["clip"]], seed, stretch)
            per_clip.append((clip, meaning, await replay(detector, frames, config, settings,
                                                         pose=pose_from_settings(settings))))
        results[name] = {"stretch": stretch, "rules": score_rules(per_clip)}
    return results


def detector_for(settings: InferenceSettings) -> OnnxDetector:
    return OnnxDetector(settings.onnx_path, settings.labels_file, score_threshold=settings.score_threshold,
                        iou_threshold=settings.nms_iou_threshold, tracked_labels=settings.tracked_labels,
                        kind=settings.model_kind)


def quiet_only(kind: ModelKind, minutes: float, jobs: int, kinds: Sequence[QuietKind] = ()) -> None:
    """Quiet footage alone, with the chosen settings, into bench/results/quiet.json (quiet-<model>.json; some
    `kinds` only: quiet-<kinds>.json): the long runs that bound the false-alert rate."""
    load_before = os.getloadavg()
    measured_commit = commit()
    load_detector(kind)
    variant = VARIANTS[-1]
    settings = InferenceSettings(**variant.settings, model_kind=kind, models_dir=ROOT / "var" / "models")
    vtest = json.loads((DATA / "vtest.json").read_text())
    started = time.perf_counter()
    result = quiet(clip_frames(footage_path(vtest))[0], settings, variant.rule_params, minutes, jobs, kinds)
    result |= {"settings": variant.name, "model": kind, "jobs": jobs,
               "wall_minutes": round((time.perf_counter() - started) / 60, 1),
               "load_average_1_5_15_min": {"before": [round(v, 2) for v in load_before],
                                           "after": [round(v, 2) for v in os.getloadavg()]},
               "commit": measured_commit, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    # A run of some kinds only does not overwrite the run of all of them.
    stem = "-".join(["quiet", *kinds]) if kinds and set(kinds) != set(QUIET_KINDS) else "quiet"
    (RESULTS / results_name(stem, kind)).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "by_footage"}, indent=2))


async def main(only: Sequence[str] = (), kind: ModelKind = "ssd", default_only: bool = False,
               quiet_minutes: float = QUIET_MINUTES, jobs: int = 1) -> None:
    """Every clip and variant into bench/results/rules.json (rules-<model>.json for another model); with `only`
    (clip names), those clips with the baseline and the default settings, printed and not written; with
    `default_only`, the default settings alone (and quiet footage), into rules-default.json (rules-<model>-default.json
    for another model)."""
    load_before = os.getloadavg()
    measured_commit = commit()  # the code that runs, even if HEAD moves during a long run
    load_detector(kind)  # prepares the SSD when missing; fails early when NanoDet was not converted
    clips = [json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))]
    if only:
        clips = [c for c in clips if c["clip"] in only]
    footage = {clip["clip"]: clip_frames(footage_path(clip))[0] for clip in clips}
    results: dict[str, Any] = {}
    variants = [VARIANTS[-1]] if default_only else VARIANTS if not only else [VARIANTS[0], VARIANTS[-1]]
    for variant in variants:
        settings = InferenceSettings(**variant.settings, model_kind=kind, models_dir=ROOT / "var" / "models")
        detector = detector_for(settings)
        per_clip = []
        for clip in clips:
            config, meaning = build_config(clip, variant.rule_params, kind)
            per_clip.append((clip, meaning, await replay(detector, footage[clip["clip"]], config, settings,
                                                         pose=pose_from_settings(settings))))
        results[variant.name] = {
            "settings": variant.settings, "rule_params": variant.rule_params,
            "rules": score_rules(per_clip),
            "detector": detector_ap(settings, clips, max_stretch=settings.max_stretch),
        }
        if only:
            print(json.dumps({variant.name: results[variant.name]["rules"]}))
            for clip, meaning, sink in per_clip:
                print(clip["clip"], [(round(t, 1), meaning[r][0], n) for t, r, n in sink.alerts if r in meaning],
                      f"crop images {sink.crop_images} ({sink.crop_images / clip['duration_s']:.2f}/s)")
            continue
        if variant is VARIANTS[-1]:
            real = [clip for clip in clips if "scene" not in clip]
            results[variant.name]["night"] = await night(detector, real, footage, settings, variant.rule_params)
        if variant in (VARIANTS[0], VARIANTS[-1]):  # quiet footage is long: the baseline and the chosen set only
            # In a thread: each kind runs its own event loop (asyncio.run), which this running loop would refuse.
            results[variant.name]["quiet"] = await asyncio.to_thread(quiet, footage["vtest"], settings,
                                                                     variant.rule_params, quiet_minutes, jobs)
        print(json.dumps({variant.name: results[variant.name]["rules"]}))
    if only:
        return
    chosen = results[VARIANTS[-1].name]
    result = {
        **{kind: {k: row[k] for k in ("precision", "recall", "false_alerts_per_camera_hour")}
           for kind, row in chosen["rules"].items()},
        "quiet_false_alerts_per_camera_hour": chosen["quiet"]["false_alerts_per_camera_hour"],
        "night": {name: {rule: {k: row[k] for k in ("precision", "recall")} for rule, row in scores["rules"].items()}
                  for name, scores in chosen["night"].items()},
        "detector": chosen["detector"],
        "variants": results,
        "clips": {c["clip"]: {"duration_s": c["duration_s"], "rules": sorted(c["events"])} for c in clips},
        "tolerance_s": list(TOLERANCE_S),
        "not_evaluated": ("wrong way, crowd movement, camera tamper, fire, weapon: no annotated instance (only their "
                          "false alerts on quiet footage, where measured). Loitering, abandoned object, person on "
                          "the ground and crowd (excessive_density) are measured on scenes built by bench.scenes "
                          "(real cut-outs on vtest's plate), not on real incidents"),
        "method": ("each clip at 5 fps, scaled to 384 px wide when wider, through PortableBackend.step with motion "
                   "gating; one alert per track per rule hit; greedy matching within the tolerance; unmatched "
                   "alerts inside an annotated ambiguous span are ignored. Detector AP: PASCAL all-point AP at IoU "
                   "0.5 on the annotated person boxes."),
        "model": kind,
        "load_average_1_5_15_min": {"before": [round(v, 2) for v in load_before],
                                    "after": [round(v, 2) for v in os.getloadavg()]},
        "commit": measured_commit, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = results_name("rules", kind)
    (RESULTS / (name.replace(".json", "-default.json") if default_only else name)).write_text(
        json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "variants"}, indent=2))


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("clips", nargs="*", help="only these clips (printed, not written)")
    model_argument(arguments)
    arguments.add_argument("--default-only", action="store_true",
                           help="the default settings alone, not every lever (a model comparison)")
    arguments.add_argument("--quiet-minutes", type=float, default=QUIET_MINUTES,
                           help=f"minutes of each kind of quiet footage ({', '.join(QUIET_KINDS)}; default "
                                f"{QUIET_MINUTES:g})")
    arguments.add_argument("--quiet-only", action="store_true",
                           help="quiet footage alone, with the chosen settings, into bench/results/quiet.json")
    arguments.add_argument("--quiet-kinds", nargs="+", choices=QUIET_KINDS, default=[],
                           help="with --quiet-only, these kinds of quiet footage only (each keeps its seed)")
    arguments.add_argument("--jobs", type=int, default=1,
                           help="kinds of quiet footage replayed at once, each in its own process (default 1)")
    parsed = arguments.parse_args()
    if parsed.quiet_minutes <= 0:
        arguments.error("--quiet-minutes must be positive")
    if not 1 <= parsed.jobs <= len(QUIET_KINDS):
        arguments.error(f"--jobs must be between 1 and {len(QUIET_KINDS)}")
    if parsed.quiet_only and (parsed.clips or parsed.default_only):
        arguments.error("--quiet-only replays no clip: it takes neither clip names nor --default-only")
    if parsed.quiet_kinds and not parsed.quiet_only:
        arguments.error("--quiet-kinds goes with --quiet-only")
    if parsed.quiet_only:
        quiet_only(parsed.model, parsed.quiet_minutes, parsed.jobs, parsed.quiet_kinds)
    else:
        asyncio.run(main(parsed.clips, parsed.model, parsed.default_only, parsed.quiet_minutes, parsed.jobs))
