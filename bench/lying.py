"""People on the ground look by look → bench/results/lying.json (python -m bench.lying): the detector alone and with
the pose model as a second stage, on every clip of bench/data with a person-on-the-ground rule added.

A look is one check of a static place shaped like someone lying (inference.lying_people). It counts as a true one
when made during an annotated fall (scene-ground's `falls`, from the fall to getting up or the clip's end): every
look of that scene during its falls is at the fallen person's place (the listing in the results shows each look's
region). Every look of the other clips is a false one. Alerts are counted with the pose model and without it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from bench.detector import ROOT, commit
from bench.rules import DATA, RESULTS, build_config, clip_frames, expected_alerts, footage_path, replay
from inference.lying_people import Look, LyingPeople, Place, decide
from inference.model import CameraConfig, Rule, RuleParams, RuleType
from inference.onnx_detector import OnnxDetector
from inference.portable import PortableBackend
from inference.pose import LazyPoseModel
from inference.settings import InferenceSettings

HOLD_S = 5.0  # the built fall scene's own hold


@dataclass
class LookRecord:
    clip: str
    t: float
    region: tuple[float, float, float, float]
    detector_score: float  # the best Person of the turned crops on the region (0: none)
    detector_lying: bool  # what the detector's looks decide alone
    pose_score: float | None  # where the pose model looked (the detector said lying)
    kept: bool  # what the look decides with the pose model
    during_fall: bool


class RecordingLyingPeople(LyingPeople):
    """The camera's watch, keeping each look it is handed."""

    def __init__(self, watch: LyingPeople, clip: dict[str, Any], records: list[LookRecord]) -> None:
        super().__init__(watch.options)
        self._clip, self._records = clip, records

    def found(self, place: Place, look: Look, frame_size: tuple[int, int]) -> None:
        alone = decide(replace(look, pose_score=None), frame_size, self.options)
        kept = decide(look, frame_size, self.options)
        best = max((score for _, score in look.lying), default=0.0)
        self._records.append(LookRecord(
            clip=self._clip["clip"], t=round(place.looked_at, 2), region=rounded(place.region),
            detector_score=round(best, 3), detector_lying=alone is not None, pose_score=look.pose_score,
            kept=kept is not None, during_fall=during_fall(self._clip, place.looked_at)))
        super().found(place, look, frame_size)


class TimedPose:
    """The pose model, its calls timed."""

    def __init__(self, pose: LazyPoseModel) -> None:
        self._pose = pose
        self.seconds: list[float] = []

    def lying_score(self, rgb: npt.NDArray[np.uint8], crop: tuple[int, int, int, int]) -> float:
        started = time.perf_counter()
        score = self._pose.lying_score(rgb, crop)
        self.seconds.append(time.perf_counter() - started)
        return score


def recorder(camera_id: uuid.UUID, clip: dict[str, Any], records: list[LookRecord]
             ) -> Callable[[PortableBackend], None]:
    """What makes a replay's camera keep its looks in `records`."""
    def watch(backend: PortableBackend) -> None:
        runtime = backend.cameras[camera_id]
        if runtime.lying is not None:
            runtime.lying = RecordingLyingPeople(runtime.lying, clip, records)
    return watch


def rounded(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    return (round(box[0], 3), round(box[1], 3), round(box[2], 3), round(box[3], 3))


def during_fall(clip: dict[str, Any], t: float) -> bool:
    falls = clip["events"].get("person_on_ground", {}).get("falls", [])
    return any(fall <= t <= (up if up is not None else clip["duration_s"]) for fall, up in falls)


def with_ground_rule(config: CameraConfig) -> CameraConfig:
    if any(r.rule_type is RuleType.PERSON_ON_GROUND for r in config.rules):
        return config
    rule = Rule(id=uuid.uuid4(), tenant_id=config.tenant_id, camera_id=config.camera_id,
                rule_type=RuleType.PERSON_ON_GROUND, zone_id=None, params=RuleParams(hold_s=HOLD_S))
    return msgspec.structs.replace(config, rules=(*config.rules, rule))


def share(records: list[LookRecord], field: str) -> dict[str, int]:
    return {"true_looks": sum(1 for r in records if r.during_fall and getattr(r, field)),
            "of_true_looks": sum(1 for r in records if r.during_fall),
            "false_looks": sum(1 for r in records if not r.during_fall and getattr(r, field)),
            "of_false_looks": sum(1 for r in records if not r.during_fall)}


def score_range(values: list[float]) -> list[float] | None:
    return [round(min(values), 3), round(max(values), 3)] if values else None


async def main() -> None:
    load_before = os.getloadavg()
    measured_commit = commit()  # the code that runs, even if HEAD moves during a long run
    settings = InferenceSettings(models_dir=ROOT / "var" / "models")
    detector = OnnxDetector(settings.onnx_path, settings.labels_file, score_threshold=settings.score_threshold,
                            iou_threshold=settings.nms_iou_threshold, tracked_labels=settings.tracked_labels)
    pose = TimedPose(LazyPoseModel(settings.pose_model_path))
    records: list[LookRecord] = []
    alerts: dict[str, dict[str, Any]] = {}
    for path in sorted(DATA.glob("*.json")):
        clip = json.loads(path.read_text())
        frames = clip_frames(footage_path(clip))[0]
        config, _ = build_config(clip, {})
        config = with_ground_rule(config)
        ground = next(r.id for r in config.rules if r.rule_type is RuleType.PERSON_ON_GROUND)
        spec = clip["events"].get("person_on_ground")
        alerts[clip["clip"]] = {"expected": expected_alerts("person_on_ground", spec) if spec else []}
        recording = recorder(config.camera_id, clip, records)
        for name, used in (("with_pose", pose), ("detector_alone", None)):
            sink = await replay(detector, frames, config, settings, pose=used,
                                watch=recording if used is not None else None)
            alerts[clip["clip"]][name] = [round(t, 1) for t, rule_id, _ in sink.alerts if rule_id == ground]
    true_pose = [r.pose_score for r in records if r.during_fall and r.pose_score is not None]
    false_pose = [r.pose_score for r in records if not r.during_fall and r.pose_score is not None]
    result = {
        "looks": len(records),
        "detector_alone": share(records, "detector_lying"),
        "with_pose": share(records, "kept"),
        "pose_threshold": settings.lying_pose_threshold,
        "pose_score_range": {"true_looks": score_range(true_pose), "false_looks": score_range(false_pose)},
        "detector_score_range_of_looks_called_lying": {
            "true_looks": score_range([r.detector_score for r in records if r.during_fall and r.detector_lying]),
            "false_looks": score_range([r.detector_score for r in records
                                        if not r.during_fall and r.detector_lying])},
        "pose_ms_per_look": round(1000 * float(np.median(pose.seconds)), 2) if pose.seconds else None,
        "pose_looks": len(pose.seconds),
        "ground_alerts_s": alerts,
        "records": [r.__dict__ for r in records],
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        "load_average_1_5_15_min": {"before": [round(v, 2) for v in load_before],
                                    "after": [round(v, 2) for v in os.getloadavg()]},
        "commit": measured_commit, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lying.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
