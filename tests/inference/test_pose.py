"""The pose model that confirms people on the ground: its committed asset, its input, and its scores on real pixels."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from core.settings import PROJECT_ROOT
from inference.conversions import array_to_array
from inference.errors import ModelAssetError
from inference.lying_people import LyingOptions, crop_box
from inference.pose import INPUT_SIZE, KEYPOINTS, LazyPoseModel, PoseModel, pose_from_settings, pose_input
from inference.settings import InferenceSettings

ASSETS = PROJECT_ROOT / "inference" / "assets"


def test_the_committed_model_is_what_its_script_makes_with_its_licence() -> None:
    onnx = ASSETS / "movenet_lightning.onnx"
    digest = hashlib.sha256(onnx.read_bytes()).hexdigest()
    manifest = json.loads((ASSETS / "movenet_lightning.json").read_text())
    assert manifest["onnx_sha256"] == digest
    script = (PROJECT_ROOT / "scripts" / "convert_movenet.py").read_text()
    assert re.search(rf'^ONNX_SHA256 = "{digest}"$', script, re.MULTILINE)
    assert "Apache-2.0" in manifest["licence"]
    assert (ASSETS / "movenet_lightning.LICENSE.txt").read_text().startswith("MIT License")
    assert InferenceSettings().pose_model_path == onnx


def test_a_picture_keeps_its_aspect_in_the_model_input() -> None:
    wide = np.full((50, 100, 3), 200, dtype=np.uint8)
    made = pose_input(wide)
    assert made.shape == (1, INPUT_SIZE, INPUT_SIZE, 3)
    assert made.dtype == np.int32
    assert (made[0, :96] == 200).all()  # 192 x 96: the picture, scaled
    assert (made[0, 96:] == 0).all()  # the rest: black


def test_the_stage_is_off_at_zero_and_a_missing_model_is_refused_when_the_worker_starts(tmp_path: Path) -> None:
    assert pose_from_settings(InferenceSettings(lying_pose_threshold=0.0)) is None
    assert isinstance(pose_from_settings(InferenceSettings()), LazyPoseModel)
    with pytest.raises(ModelAssetError, match="convert_movenet"):
        pose_from_settings(InferenceSettings(pose_model_path=tmp_path / "none.onnx"))


def test_the_model_scores_a_person_lying_on_the_floor_and_not_the_floor_alone() -> None:
    """scene-ground (bench.scenes: a real person cut out of vtest, lying on vtest's floor from 8.1 s), at the
    sub-stream's 384x288 as the backend sees it, cropped around the place as the backend crops it."""
    from bench import scenes
    from camsim.footage import FootageUnavailable

    try:
        material = scenes.material()
    except FootageUnavailable as exc:
        pytest.skip(str(exc))
    frames = list(scenes.render_frames(scenes.scene_named("scene-ground"), material, scenes.SEED, limit=123))
    options = LyingOptions()
    crop = crop_box((0.375, 0.458, 0.5, 0.5), (384, 288), options.pose_crop_scale, options.min_pose_crop_px)
    pose = PoseModel(InferenceSettings().pose_model_path)

    def score_at(index: int) -> float:
        return pose.lying_score(array_to_array(np.ascontiguousarray(frames[index]), 384, 288), crop)

    lying, floor = score_at(122), score_at(40)  # 12.2 s: lying for 4 s; 4.0 s: nobody there yet
    assert lying >= options.pose_threshold
    assert floor < 0.15
    keypoints = pose.keypoints(np.zeros((40, 40, 3), dtype=np.uint8))
    assert keypoints.shape == (KEYPOINTS, 3)
    assert float(keypoints[:, 2].mean()) < options.pose_threshold  # a black picture holds nobody
