"""bench.rules: PASCAL matching at IoU 0.5, ignore regions, annotated boxes in their pictures, quiet footage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.detector import ROOT
from bench.quiet import QUIET_KINDS
from bench.rules import DATA, ap_summary, clip_frames, footage_path, normalised, quiet, score_detections
from inference.settings import InferenceSettings


def test_a_box_is_matched_once_and_a_duplicate_is_false() -> None:
    truth = [(0.1, 0.1, 0.3, 0.5)]
    found = [(0.9, (0.1, 0.1, 0.3, 0.5)), (0.8, (0.11, 0.1, 0.3, 0.52)), (0.7, (0.6, 0.6, 0.8, 0.9))]
    assert score_detections(found, truth, []) == [(0.9, True), (0.8, False), (0.7, False)]


def test_a_detection_mostly_inside_an_ignore_region_is_left_out() -> None:
    ignore = [(0.5, 0.5, 1.0, 1.0)]
    inside = (0.6, 0.6, 0.8, 0.9)
    half_out = (0.3, 0.6, 0.6, 0.9)  # two thirds of it outside the region
    assert score_detections([(0.9, inside), (0.8, half_out)], [], ignore) == [(0.8, False)]


def test_a_match_counts_even_inside_an_ignore_region() -> None:
    truth = [(0.6, 0.6, 0.8, 0.9)]
    assert score_detections([(0.9, truth[0])], truth, [(0.5, 0.5, 1.0, 1.0)]) == [(0.9, True)]


def test_ap_precision_and_recall_at_the_threshold() -> None:
    summary = ap_summary([(0.9, True), (0.8, False), (0.7, True)], positives=3, threshold=0.75)
    # all-point AP: recall 1/3 at precision 1, then 2/3 at precision 2/3
    assert summary["person_ap50"] == pytest.approx(1 / 3 + 2 / 9, abs=1e-3)
    assert summary["precision_at_0.75"] == 0.5
    assert summary["recall_at_0.75"] == pytest.approx(0.333, abs=1e-3)


def test_normalised_boxes_are_fractions_of_the_picture() -> None:
    assert normalised([[64, 27, 320, 272]], 640, 272) == [(0.1, 27 / 272, 0.5, 1.0)]


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.stem)
def test_annotated_boxes_lie_in_the_picture_on_sampled_frames(path: Path) -> None:
    clip = json.loads(path.read_text())
    width, height = clip["size"]
    sampled = {round(float(t) * clip["fps"]) for t in clip["person_boxes"]}
    assert len(sampled) == len(clip["person_boxes"]), "two sample times fall on one frame"
    for t in clip.get("person_ignore", {}):
        assert round(float(t) * clip["fps"]) in sampled, f"ignore regions at {t} s, a frame that is not sampled"
    for boxes in [*clip["person_boxes"].values(), *clip.get("person_ignore", {}).values()]:
        for x1, y1, x2, y2 in boxes:
            assert 0 <= x1 < x2 <= width, (x1, x2)
            assert 0 <= y1 < y2 <= height, (y1, y2)


def test_quiet_footage_gives_the_same_figures_in_spawned_processes(detector_model: object) -> None:
    # Four seconds of each kind: every kind replayed with its own seed whether in this process or two others.
    vtest = clip_frames(footage_path(json.loads((DATA / "vtest.json").read_text())))[0]
    settings = InferenceSettings(models_dir=ROOT / "var" / "models")
    here = quiet(vtest, settings, {}, minutes=4 / 60)
    spawned = quiet(vtest, settings, {}, minutes=4 / 60, jobs=2)
    assert spawned == here
    assert list(here["by_footage"]) == list(QUIET_KINDS)
    assert here["footage_hours"] == pytest.approx(len(QUIET_KINDS) * 4 / 3600, abs=1e-3)
    assert set(here["false_alerts"]) >= {"intrusion", "line_crossing", "abandoned_object", "person_on_ground"}
