"""Rules on real footage against a hand annotation → bench/results/rules.json (precision and recall per rule).

Annotation (made by looking at 0.5 s contact sheets of vtest.avi, 0-20 s; times ±0.5 s): a "cordoned" zone east of
the vertical x = 600 px (768x576 picture) between y = 150 and 480 px, and the line x = 600 on the same span.
Each entry is a person's first presence in the zone (walking in, or appearing from the right edge while inside),
and each crossing a person's feet passing x = 600 with its direction on screen.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

from bench.detector import ROOT, CountingSink, ReplayReader, commit, vtest_frames
from inference.mediapipe import prepare_detector_model
from inference.model import CameraConfig, Rule, RuleParams, RuleType, Zone
from inference.onnx_detector import OnnxDetector
from inference.portable import PortableBackend
from inference.rtsp import ReaderOptions
from inference.settings import InferenceSettings

RESULTS = ROOT / "bench" / "results"
SPAN_S = 20.0
TOLERANCE_S = (1.0, 1.5)  # a hit may precede an annotated time by 1 s, or follow it by 1.5 s (tracker confirmation)

X = 600 / 768
TOP, BOTTOM = 150 / 576, 480 / 576
# (time s, person) of each entry into the zone, 0-20 s.
ENTRIES = [(0.0, "P1"), (1.5, "P2"), (2.0, "P3"), (4.5, "P4"), (11.5, "P6"), (13.0, "P7"), (13.5, "P8"),
           (18.0, "P9"), (19.5, "P10")]
# (time s, person, direction on screen) of each crossing of the line, 0-20 s.
CROSSINGS = [(0.7, "P1", "west"), (4.0, "P2", "west"), (4.2, "P3", "west"), (7.0, "P4", "west"),
             (13.0, "P6", "west"), (13.0, "P7", "east"), (15.0, "P8", "west"), (18.0, "P9", "east"),
             (19.5, "P10", "east")]


def match(hits: list[float], truth: list[float]) -> dict[str, float | int]:
    """Greedy one-to-one matching in time order within the tolerance window."""
    unmatched = sorted(truth)
    matched = 0
    for hit in sorted(hits):
        for t in unmatched:
            if t - TOLERANCE_S[0] <= hit <= t + TOLERANCE_S[1]:
                unmatched.remove(t)
                matched += 1
                break
    return {"annotated": len(truth), "hits": len(hits), "matched": matched,
            "precision": round(matched / len(hits), 3) if hits else 0.0,
            "recall": round(matched / len(truth), 3) if truth else 0.0}


async def main() -> None:
    files = prepare_detector_model(ROOT / "var" / "models")
    settings = InferenceSettings()
    detector = OnnxDetector(files.onnx, files.labels, score_threshold=settings.score_threshold,
                            iou_threshold=settings.nms_iou_threshold, tracked_labels=settings.tracked_labels)
    frames = vtest_frames(int(SPAN_S * 5))
    tenant, camera_id = uuid.uuid4(), uuid.uuid4()
    zone = Zone(id=uuid.uuid4(), tenant_id=tenant, camera_id=camera_id, name="east", kind="zone",
                points=((X, TOP), (1.0, TOP), (1.0, BOTTOM), (X, BOTTOM)))
    line = Zone(id=uuid.uuid4(), tenant_id=tenant, camera_id=camera_id, name="x600", kind="line",
                points=((X, TOP), (X, BOTTOM)))
    intrusion = Rule(id=uuid.uuid4(), tenant_id=tenant, camera_id=camera_id, rule_type=RuleType.INTRUSION,
                     zone_id=zone.id)
    # a→b points down the screen: its left-hand side is the screen's east, so "left_to_right" is a walk west.
    westward = Rule(id=uuid.uuid4(), tenant_id=tenant, camera_id=camera_id, rule_type=RuleType.LINE_CROSSING,
                    zone_id=line.id, params=RuleParams(direction="left_to_right"))
    eastward = Rule(id=uuid.uuid4(), tenant_id=tenant, camera_id=camera_id, rule_type=RuleType.LINE_CROSSING,
                    zone_id=line.id, params=RuleParams(direction="right_to_left"))
    config = CameraConfig(camera_id=camera_id, tenant_id=tenant, name="vtest", stream_url="rtsp://replay/sub",
                          zones=(zone, line), rules=(intrusion, westward, eastward))
    readers: dict[uuid.UUID, ReplayReader] = {}

    def factory(camera: uuid.UUID, url: str, options: ReaderOptions, on_change: object,
                on_frame: object) -> ReplayReader:
        readers[camera] = ReplayReader(camera, frames, lockstep=True)
        return readers[camera]

    sink = CountingSink()
    hits: dict[uuid.UUID, list[float]] = {intrusion.id: [], westward.id: [], eastward.id: []}
    original_submit = sink.submit

    def record(event: object, camera: uuid.UUID, picture: object = None) -> None:
        rule_id = getattr(event, "rule_id", None)
        if rule_id in hits:
            hits[rule_id].extend([reader_time[0]] * len(getattr(event, "track_ids", ())))
        original_submit(event, camera, picture)  # type: ignore[arg-type]

    reader_time = [0.0]
    sink.submit = record  # type: ignore[method-assign,assignment]
    settings_all = InferenceSettings(keepalive_s=0.0)  # every frame detected: the rules see the full footage
    backend = PortableBackend(detector, sink, settings_all, reader_factory=factory)  # type: ignore[arg-type]
    backend.apply([config])
    reader = readers[camera_id]
    for index in range(len(frames)):
        reader_time[0] = index / 5
        reader.advance()
        await backend.step()
    backend.close()
    crossings = match(hits[westward.id] + hits[eastward.id], [t for t, _, _ in CROSSINGS])
    result = {
        "footage": "vtest.avi 0-20 s at 5 fps (sub stream size 384x288)",
        "intrusion": match(hits[intrusion.id], [t for t, _ in ENTRIES]),
        "line_crossing": crossings,
        "line_crossing_westward": match(hits[westward.id], [t for t, _, d in CROSSINGS if d == "west"]),
        "line_crossing_eastward": match(hits[eastward.id], [t for t, _, d in CROSSINGS if d == "east"]),
        "tolerance_s": list(TOLERANCE_S),
        "not_evaluated": ("loitering, crowd, abandoned object, person on ground, tamper: this footage has no "
                          "annotated instance; they are covered by unit tests on synthetic tracks"),
        "commit": commit(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rules.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
