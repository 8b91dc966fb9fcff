"""GPU outputs reach the rules exactly as the CPU's would: sparse outputs, run.py's inputs, the recorded replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import numpy as np
import pytest

from bench.gpu.agreement import (
    RecordedDetector,
    evaluate,
    input_hash,
    onnxruntime_outputs,
    portable_inputs,
    write_cpu_outputs,
)
from bench.gpu.pipeline_parts import DROPPED_LOGIT, SparseOutputs, replay_input, replay_pictures, sparse_outputs
from bench.rules import DETECT_FPS, SUB_WIDTH, clip_frames
from camsim.footage import source_path
from inference.mediapipe import DetectorModelFiles
from inference.onnx_detector import OnnxDetector
from inference.settings import InferenceSettings
from inference.ssd import NUM_ANCHORS, postprocess, ssd_anchors

MODELS_DIR = Path(__file__).resolve().parents[2] / "var" / "models"


def test_sparse_outputs_keep_every_detection_above_their_floor() -> None:
    rng = np.random.default_rng(11)
    encodings = rng.normal(0, 1, size=(3, NUM_ANCHORS, 4)).astype(np.float32)
    logits = rng.normal(-6, 2, size=(3, NUM_ANCHORS, 25)).astype(np.float32)
    logits[1] = -9.0  # a frame where nothing scores
    sparse = sparse_outputs(encodings, logits, min_score=0.2)
    assert sparse.frames == 3
    assert sparse.offsets[2] == sparse.offsets[1]  # the empty frame keeps no anchor
    assert 0 < sparse.anchor_ids.size < 3 * NUM_ANCHORS // 4
    anchors = ssd_anchors()
    for frame in range(3):
        dense_encodings, dense_logits = sparse.dense(frame, NUM_ANCHORS)
        dropped = np.ones(NUM_ANCHORS, dtype=bool)
        dropped[sparse.anchor_ids[sparse.offsets[frame]:sparse.offsets[frame + 1]]] = False
        assert (dense_logits[dropped] == DROPPED_LOGIT).all()
        for threshold in (0.2, 0.4, 0.6):
            expected = postprocess(encodings[frame], logits[frame], anchors, score_threshold=threshold,
                                   iou_threshold=0.45)
            found = postprocess(dense_encodings, dense_logits, anchors, score_threshold=threshold,
                                iou_threshold=0.45)
            assert found == expected, (frame, threshold)
    assert any(postprocess(encodings[f], logits[f], anchors, score_threshold=0.4, iou_threshold=0.45)
               for f in range(3))


def test_sparse_outputs_survive_a_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    sparse = sparse_outputs(rng.normal(0, 1, (2, 50, 4)), rng.normal(-1, 2, (2, 50, 5)), 0.3)
    np.savez_compressed(tmp_path / "o.npz", **sparse.arrays("clip__fp16"))
    again = SparseOutputs.from_arrays(np.load(tmp_path / "o.npz"), "clip__fp16")
    for name in ("offsets", "anchor_ids", "encodings", "logits"):
        np.testing.assert_array_equal(getattr(again, name), getattr(sparse, name))


def test_run_py_makes_the_backends_own_detector_inputs() -> None:
    """run.py carries its own copy of the replay's sampling and letterbox: the same bytes, or the GPU would be
    compared on other pictures than the CPU's."""
    settings = InferenceSettings(models_dir=MODELS_DIR)
    frames, _ = clip_frames(source_path("bikes"))
    pictures = replay_pictures(av, source_path("bikes"), DETECT_FPS, SUB_WIDTH)
    assert len(pictures) == len(frames) == 50
    ours = [input_hash(replay_input(av, p, settings.max_stretch, settings.input_size)) for p in pictures]
    assert ours == [input_hash(image) for image in portable_inputs(frames, settings)]


def test_an_image_without_recorded_outputs_is_refused(detector_model: DetectorModelFiles) -> None:
    settings = InferenceSettings(models_dir=MODELS_DIR)
    decoder = OnnxDetector.from_settings(settings)
    frames, _ = clip_frames(source_path("bikes"))
    inputs = portable_inputs(frames[:3], settings)
    recorded = RecordedDetector(decoder, onnxruntime_outputs(decoder, inputs, 0.2),
                                {input_hash(image): i for i, image in enumerate(inputs)})
    assert recorded.detect(inputs[1:2]) == decoder.detect(inputs[1:2])
    with pytest.raises(LookupError):
        recorded.detect([np.zeros_like(inputs[0])])


def test_recorded_outputs_replay_to_the_cpu_alerts_and_a_blinded_copy_does_not(
        detector_model: DetectorModelFiles, tmp_path: Path) -> None:
    settings = InferenceSettings(models_dir=MODELS_DIR)
    path = tmp_path / "gpu-outputs.npz"
    write_cpu_outputs(path, settings, 0.2, "copy", clips=("bikes",))
    arrays = dict(np.load(path))
    # A second variant that sees nothing from the 25th frame on (5 s of the clip's 10, at 5 frames a second).
    blind = SparseOutputs.from_arrays(arrays, "bikes__copy")
    cut = int(blind.offsets[25])
    offsets = np.minimum(blind.offsets, cut)
    arrays.update(SparseOutputs(offsets, blind.anchor_ids[:cut], blind.encodings[:cut],
                                blind.logits[:cut]).arrays("bikes__blind"))
    np.savez_compressed(path, **arrays)

    result = asyncio.run(evaluate(path, settings, clips=("bikes",)))

    assert result["clips"]["bikes"] == {"frames": 50, "inputs_identical_to_this_machines": 50}
    cpu, copy, blinded = (result["variants"][v] for v in ("cpu_onnxruntime", "copy", "blind"))
    assert cpu["rules"]["intrusion"]["matched"] > 0
    assert copy["rules"] == cpu["rules"]
    assert copy["same_alerts_as_cpu"]
    detections = copy["detections_against_cpu"]["bikes"]
    assert detections["paired"] == detections["reference_detections"] == detections["detections"] > 0
    assert not blinded["same_alerts_as_cpu"]
    assert blinded["alerts_only_one_side"]["bikes"]["cpu"]
    assert blinded["detections_against_cpu"]["bikes"]["frames_with_the_same_detections"] < 50
