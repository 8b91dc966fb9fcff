"""The built scenes of bench/scenes.py: reproducible from their seed, and evaluated by bench.rules end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from bench import scenes
from camsim.footage import FootageUnavailable


@pytest.fixture(scope="module")
def material() -> scenes.Material:
    try:
        return scenes.material()
    except FootageUnavailable as exc:
        pytest.skip(str(exc))


def frames_digest(scene: scenes.Scene, material: scenes.Material, seed: int, count: int) -> str:
    digest = hashlib.sha256()
    for frame in scenes.render_frames(scene, material, seed, limit=count):
        digest.update(frame.tobytes())
    return digest.hexdigest()


def test_same_seed_same_ground_truth_and_frames(material: scenes.Material) -> None:
    first, again = scenes.scenes(scenes.SEED), scenes.scenes(scenes.SEED)
    assert [scenes.ground_truth(s) for s in first] == [scenes.ground_truth(s) for s in again]
    # The committed annotations are what the generator writes.
    for scene in first:
        committed = json.loads((scenes.DATA / f"{scene.name}.json").read_text())
        assert committed == json.loads(json.dumps(scenes.ground_truth(scene)))
    # Frames 5 s in, where people are on screen: the same seed draws the same pixels.
    crowd = next(s for s in first if s.rule == "excessive_density")
    assert frames_digest(crowd, material, scenes.SEED, 52) == frames_digest(crowd, material, scenes.SEED, 52)
    assert frames_digest(crowd, material, scenes.SEED, 52) != frames_digest(crowd, material, scenes.SEED + 1, 52)
    other = scenes.scenes(scenes.SEED + 1)
    assert [s.truth for s in other] != [s.truth for s in first]


@pytest.mark.bench  # about 70 s on the shared 2-core box, on top of the material: out of the default run
def test_bench_rules_scores_a_built_scene(material: scenes.Material, tmp_path: Path) -> None:
    """A shortened fall scene: rendered with ffmpeg, replayed through the portable backend, scored."""
    from bench import rules
    from inference.mediapipe import prepare_detector_model
    from inference.onnx_detector import OnnxDetector
    from inference.settings import InferenceSettings

    scene = dataclasses.replace(scenes.scene_named("scene-ground"), duration_s=20.0)
    path = scenes.render(scene, tmp_path / "ground.mp4", material)
    clip = scenes.ground_truth(scene)
    clip["events"]["person_on_ground"]["falls"] = [[8.1, 20.0]]  # the second fall is past the cut
    clip["duration_s"] = 20.0
    frames, fps = rules.clip_frames(path)
    assert fps == scenes.FPS
    assert len(frames) == 100
    files = prepare_detector_model(rules.ROOT / "var" / "models")
    settings = InferenceSettings()
    detector = OnnxDetector(files.onnx, files.labels, score_threshold=settings.score_threshold,
                            iou_threshold=settings.nms_iou_threshold, tracked_labels=settings.tracked_labels)
    config, meaning = rules.build_config(clip, {})
    assert [r.rule_type.value for r in config.rules] == ["person_on_ground"]
    sink = asyncio.run(rules.replay(detector, frames, config, settings))
    scored = rules.score_rules([(clip, meaning, sink)])["person_on_ground"]
    assert scored["events"] == 1
    assert 0.0 <= scored["precision"] <= 1.0
    assert 0.0 <= scored["recall"] <= 1.0
    assert scored["footage_hours"] == round(20.0 / 3600, 4)


def test_expected_alerts_follow_the_rule_parameters() -> None:
    from bench.rules import expected_alerts

    assert expected_alerts("loitering", {"params": {"dwell_s": 15.0}, "intervals": [[5.0, 30.0], [10.0, 20.0]]}) \
        == [20.0]
    assert expected_alerts("abandoned_object", {"params": {"stationary_s": 20.0}, "drops": [[8.0, None]]}) == [28.0]
    assert expected_alerts("person_on_ground", {"params": {"hold_s": 5.0}, "falls": [[8.0, 10.0], [30.0, None]]}) \
        == [35.0]
    assert expected_alerts("excessive_density", {"params": {"hold_s": 5.0}, "intervals": [[15.0, 45.0]]}) == [20.0]
