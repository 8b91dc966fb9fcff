"""NanoDet decoding (grid, GFL distances, boxes, thresholds, NMS) and its detector wiring, on synthetic tensors."""

from __future__ import annotations

import uuid
from pathlib import Path

import av
import numpy as np
import pytest

from inference import nanodet, ssd
from inference.errors import ModelAssetError
from inference.nanodet import (
    COCO_LABELS,
    INPUT_SIZE,
    NUM_CLASSES,
    REG_BINS,
    decode_boxes,
    grid_points,
    output_cells,
    postprocess,
    preprocess,
    side_distances,
)
from inference.onnx_detector import OnnxDetector
from inference.rtsp import DecodedFrame
from inference.settings import MODEL_INPUT_SIZE, TRACKED_LABELS, InferenceSettings

PERSON, SUITCASE = COCO_LABELS.index("Person"), COCO_LABELS.index("Suitcase")
CELLS = sum(output_cells().values()) // 2


def peaked(bins: tuple[int, int, int, int], sharpness: float = 30.0) -> np.ndarray:
    """One cell's [44] logits whose softmax puts (almost) all the weight on one bin per side."""
    logits = np.zeros((4, REG_BINS), dtype=np.float32)
    for side, b in enumerate(bins):
        logits[side, b] = sharpness
    return logits.ravel()


def cell_index(stride: int, row: int, column: int) -> int:
    """Where a stride's cell lies in the concatenated outputs (strides 8, 16, 32, rows then columns)."""
    offset = 0
    for s in nanodet.STRIDES:
        cells = INPUT_SIZE // s
        if s == stride:
            return offset + row * cells + column
        offset += cells * cells
    raise ValueError(stride)


def test_the_grid_has_one_centred_point_per_cell_of_each_stride_in_output_order() -> None:
    centres, strides = grid_points()
    assert centres.shape == (52 * 52 + 26 * 26 + 13 * 13, 2) == (CELLS, 2)
    assert centres[0] == pytest.approx([4.0, 4.0])
    assert strides[0] == 8
    assert centres[1] == pytest.approx([12.0, 4.0])  # along the row first
    assert centres[52] == pytest.approx([4.0, 12.0])
    assert centres[cell_index(16, 0, 0)] == pytest.approx([8.0, 8.0])
    assert strides[cell_index(16, 0, 0)] == 16
    assert centres[-1] == pytest.approx([12.5 * 32, 12.5 * 32])
    assert strides[-1] == 32


def test_each_side_is_the_expected_bin_of_its_softmax_times_the_stride() -> None:
    one_hot = side_distances(peaked((0, 1, 5, 10))[None], np.asarray([16.0], dtype=np.float32))[0]
    assert one_hot == pytest.approx([0.0, 16.0, 80.0, 160.0], abs=1e-3)
    uniform = side_distances(np.zeros((1, 4 * REG_BINS), dtype=np.float32), np.asarray([8.0], dtype=np.float32))
    assert uniform[0] == pytest.approx([5 * 8.0] * 4)  # the mean of 0..10
    # Two equal bins: the expectation lies half-way between them.
    halves = np.zeros((4, REG_BINS), dtype=np.float32)
    halves[:, [2, 3]] = 30.0
    assert side_distances(halves.ravel()[None], np.asarray([8.0], dtype=np.float32))[0] == pytest.approx([20.0] * 4)


def test_distances_from_the_cell_centre_make_a_normalised_clipped_box() -> None:
    centres = np.asarray([[200.0, 100.0], [4.0, 4.0]], dtype=np.float32)
    strides = np.asarray([16.0, 8.0], dtype=np.float32)
    distributions = np.stack([peaked((2, 1, 3, 4)), peaked((10, 10, 1, 1))])
    boxes = decode_boxes(distributions, centres, strides)
    assert boxes[0] == pytest.approx(np.asarray([200 - 32, 100 - 16, 200 + 48, 100 + 64]) / INPUT_SIZE, abs=1e-4)
    assert boxes[1] == pytest.approx([0.0, 0.0, 12 / INPUT_SIZE, 12 / INPUT_SIZE], abs=1e-4)  # clipped at 0


def synthetic_outputs() -> tuple[np.ndarray, np.ndarray]:
    """A person on a stride-16 cell, the same person seen less surely by its neighbour, a suitcase elsewhere."""
    scores = np.zeros((CELLS, NUM_CLASSES), dtype=np.float32)
    distributions = np.zeros((CELLS, 4 * REG_BINS), dtype=np.float32)
    person, neighbour, suitcase = cell_index(16, 10, 5), cell_index(16, 10, 6), cell_index(32, 3, 9)
    scores[person, PERSON] = 0.9
    scores[person, SUITCASE] = 0.2  # a weaker class on the same cell does not make a second box
    distributions[person] = peaked((2, 4, 2, 6))  # 32 px left and right, 64 up, 96 down
    scores[neighbour, PERSON] = 0.6
    distributions[neighbour] = peaked((3, 4, 1, 6))  # the same box seen from the next cell (16 px to the right)
    scores[suitcase, SUITCASE] = 0.7
    distributions[suitcase] = peaked((1, 1, 1, 1))
    return scores, distributions


def test_postprocess_keeps_the_best_box_per_object_and_class_above_the_threshold() -> None:
    scores, distributions = synthetic_outputs()
    centres, strides = grid_points()
    found = postprocess(scores, distributions, centres, strides, score_threshold=0.4, iou_threshold=0.45)
    assert [(d.class_id, d.score) for d in found] == [(PERSON, pytest.approx(0.9)), (SUITCASE, pytest.approx(0.7))]
    cx, cy = 5.5 * 16, 10.5 * 16
    assert found[0].box == pytest.approx(((cx - 32) / 416, (cy - 64) / 416, (cx + 32) / 416, (cy + 96) / 416),
                                         abs=1e-4)
    sx, sy = 9.5 * 32, 3.5 * 32
    assert found[1].box == pytest.approx(((sx - 32) / 416, (sy - 32) / 416, (sx + 32) / 416, (sy + 32) / 416),
                                         abs=1e-4)
    # Without NMS overlap (threshold 1), the neighbour's box survives; above its score, it is not a candidate.
    loose = postprocess(scores, distributions, centres, strides, score_threshold=0.4, iou_threshold=1.0)
    assert sorted(d.score for d in loose) == pytest.approx([0.6, 0.7, 0.9])
    assert len(postprocess(scores, distributions, centres, strides, score_threshold=0.95, iou_threshold=0.45)) == 0


def test_postprocess_ignores_untracked_classes_before_choosing_a_cell_s_class() -> None:
    scores, distributions = synthetic_outputs()
    centres, strides = grid_points()
    only_bags = postprocess(scores, distributions, centres, strides, score_threshold=0.15, iou_threshold=0.45,
                            allowed_classes=frozenset({SUITCASE}))
    # The person's cell now offers its suitcase score (0.2); the person itself is gone.
    assert sorted((d.class_id, round(d.score, 2)) for d in only_bags) == [(SUITCASE, 0.2), (SUITCASE, 0.7)]


def test_preprocess_turns_rgb_into_normalised_bgr_planes() -> None:
    frame = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 200, 100, 50  # R, G, B
    batch = preprocess([frame, frame])
    assert batch.shape == (2, 3, INPUT_SIZE, INPUT_SIZE)
    assert batch.flags.c_contiguous
    assert batch[1, :, 7, 9] == pytest.approx([(50 - 103.53) / 57.375, (100 - 116.28) / 57.12,
                                               (200 - 123.675) / 58.395])
    # The backend hands frames as RGB views of BGRA pixels (inference.rtsp): read through the view alike.
    bgra = np.zeros((INPUT_SIZE, INPUT_SIZE, 4), dtype=np.uint8)
    bgra[..., :3] = frame[..., ::-1]
    assert np.array_equal(preprocess([bgra[..., 2::-1], frame]), batch)


def test_the_settings_size_and_track_what_each_model_has() -> None:
    assert MODEL_INPUT_SIZE == {"ssd": ssd.INPUT_SIZE, "nanodet": nanodet.INPUT_SIZE}
    assert set(TRACKED_LABELS["nanodet"]) <= set(COCO_LABELS)
    chosen = InferenceSettings(model_kind="nanodet")
    assert chosen.input_size == 416
    assert "Suitcase" in chosen.tracked_labels
    assert chosen.onnx_path.name == "nanodet_g_coco.onnx"
    assert InferenceSettings(model_kind="nanodet", tracked_labels=("Person",)).tracked_labels == ("Person",)
    assert InferenceSettings().tracked_labels == TRACKED_LABELS["ssd"]


def test_a_frame_for_nanodet_is_letterboxed_into_416_pixels() -> None:
    picture = np.full((272, 640, 3), 255, dtype=np.uint8)
    frame = DecodedFrame(camera_id=uuid.uuid4(), timestamp=0.0, captured_at=None,  # type: ignore[arg-type]
                         frame_size=(640, 272), motion=None, stats=None,  # type: ignore[arg-type]
                         picture=av.VideoFrame.from_ndarray(picture, format="rgb24"), max_stretch=1.0,
                         input_size=INPUT_SIZE)
    assert frame.detector_content == (416, 177)
    assert frame.detector_input.shape == (416, 416, 3)
    assert frame.detector_input[:176].min() > 240
    assert frame.detector_input[178:].max() == 0
    assert ssd.unletterbox((0.0, 0.0, 1.0, 177 / 416), frame.detector_content, INPUT_SIZE) == pytest.approx(
        (0.0, 0.0, 1.0, 1.0))


def constant_model(path: Path, scores: np.ndarray, distributions: np.ndarray) -> None:
    """An ONNX model shaped like the converted NanoDet whose outputs are the given tensors for every frame."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3]),  # [N, 1, 1, 1]: the batch
             helper.make_node("Flatten", ["mean"], ["flat"], axis=1),
             helper.make_node("Unsqueeze", ["flat", "axis2"], ["batch_1_1"]),
             helper.make_node("Mul", ["batch_1_1", "zero"], ["zeros"])]
    initializers = [numpy_helper.from_array(np.asarray([2], dtype=np.int64), "axis2"),
                    numpy_helper.from_array(np.zeros((1, 1, 1), dtype=np.float32), "zero")]
    outputs = []
    offset = 0
    cells = output_cells()
    for name, count in cells.items():
        source = scores if name.startswith("scores") else distributions
        start = offset if name.startswith("scores") else offset - CELLS
        initializers.append(numpy_helper.from_array(source[None, start:start + count], f"{name}_value"))
        nodes.append(helper.make_node("Add", ["zeros", f"{name}_value"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", count, source.shape[1]]))
        offset += count
    graph = helper.make_graph(nodes, "constant_nanodet",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                             ["batch", 3, INPUT_SIZE, INPUT_SIZE])],
                              outputs, initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_the_detector_concatenates_the_strides_in_the_decoder_s_order(tmp_path: Path) -> None:
    scores, distributions = synthetic_outputs()
    constant_model(tmp_path / "model.onnx", scores, distributions)
    (tmp_path / "labels.txt").write_text("\n".join(COCO_LABELS) + "\n")
    detector = OnnxDetector(tmp_path / "model.onnx", tmp_path / "labels.txt", score_threshold=0.4,
                            iou_threshold=0.45, tracked_labels=("Person", "Suitcase"), use_gpu=False, kind="nanodet")
    frames = [np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)] * 2
    centres, strides = grid_points()
    expected = postprocess(scores, distributions, centres, strides, score_threshold=0.4, iou_threshold=0.45)
    assert detector.detect(frames) == [expected, expected]
    assert [detector.labels[d.class_id] for d in expected] == ["Person", "Suitcase"]


def test_a_model_that_is_not_the_converted_nanodet_is_refused(tmp_path: Path) -> None:
    scores, distributions = synthetic_outputs()
    constant_model(tmp_path / "model.onnx", scores, distributions)
    (tmp_path / "labels.txt").write_text("Person\nCar\n")
    with pytest.raises(ModelAssetError, match="labels name 2"):
        OnnxDetector(tmp_path / "model.onnx", tmp_path / "labels.txt", score_threshold=0.4, iou_threshold=0.45,
                     use_gpu=False, kind="nanodet")
    with pytest.raises(ModelAssetError, match="does not take"):
        OnnxDetector(tmp_path / "model.onnx", tmp_path / "labels.txt", score_threshold=0.4, iou_threshold=0.45,
                     use_gpu=False)
    with pytest.raises(ModelAssetError, match="convert_nanodet"):
        OnnxDetector(tmp_path / "absent.onnx", tmp_path / "labels.txt", score_threshold=0.4, iou_threshold=0.45,
                     kind="nanodet")
