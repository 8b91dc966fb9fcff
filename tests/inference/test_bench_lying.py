"""bench.lying's bookkeeping: which looks count as true, what each look decides with and without the pose model."""

from __future__ import annotations

import uuid
from typing import Any

from bench.lying import LookRecord, RecordingLyingPeople, during_fall, share, with_ground_rule
from inference.lying_people import Look, LyingOptions, LyingPeople, Place
from inference.model import CameraConfig, RuleType

FALLS: dict[str, Any] = {"clip": "scene-ground", "duration_s": 50.0,
                         "events": {"person_on_ground": {"falls": [[8.1, 22.0], [30.1, None]]}}}
REGION = (0.45, 0.5, 0.55, 0.54)
LYING = ((0.45, 0.49, 0.56, 0.55), 0.5)


def test_a_look_is_true_from_a_fall_until_getting_up_or_the_clip_s_end() -> None:
    assert [during_fall(FALLS, t) for t in (8.0, 8.1, 15.0, 22.0, 25.0, 30.1, 49.9)] == [
        False, True, True, True, False, True, True]
    assert not during_fall({"clip": "vtest", "duration_s": 80.0, "events": {}}, 10.0)


def test_each_look_is_kept_with_what_it_decides_alone_and_with_the_pose_model() -> None:
    records: list[LookRecord] = []
    watch = RecordingLyingPeople(LyingPeople(LyingOptions()), FALLS, records)
    frame = (384, 288)
    for t, pose_score in ((10.0, 0.1), (11.0, 0.4), (25.0, None)):
        place = Place(track_id=1, region=REGION, seen_at=t, looked_at=t)
        lying = (LYING,) if pose_score is not None else ()
        watch.found(place, Look(region=REGION, lying=lying, upright=(), pose_score=pose_score), frame)
    assert [(r.t, r.detector_lying, r.kept, r.during_fall) for r in records] == [
        (10.0, True, False, True), (11.0, True, True, True), (25.0, False, False, False)]
    assert records[0].detector_score == 0.5
    assert share(records, "detector_lying") == {"true_looks": 2, "of_true_looks": 2, "false_looks": 0,
                                                "of_false_looks": 1}
    assert share(records, "kept")["true_looks"] == 1


def test_the_ground_rule_is_added_once() -> None:
    camera = CameraConfig(camera_id=uuid.uuid4(), tenant_id=uuid.uuid4(), name="c", stream_url="rtsp://x/sub")
    once = with_ground_rule(camera)
    assert [r.rule_type for r in once.rules] == [RuleType.PERSON_ON_GROUND]
    assert with_ground_rule(once) == once
