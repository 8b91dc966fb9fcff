"""The detector on onnxruntime: batched SSD or NanoDet inference on CPU, or CUDA when onnxruntime-gpu sees a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]

from inference import nanodet
from inference.errors import ModelAssetError
from inference.mediapipe import prepare_detector_model
from inference.rules import check_model_classes
from inference.settings import InferenceSettings, ModelKind
from inference.ssd import INPUT_SIZE, NUM_ANCHORS, RawDetection, postprocess, preprocess, ssd_anchors


def read_labels(path: Path) -> list[str]:
    try:
        labels = [line.strip() for line in path.read_text().splitlines()]
    except OSError as exc:
        raise ModelAssetError(f"cannot read the label map {path}: {exc}") from exc
    while labels and not labels[-1]:
        labels.pop()
    return labels


class OnnxDetector:
    """Runs the SSD (300x300) or NanoDet (416x416) on batches of square RGB frames; returns per-frame detections."""

    def __init__(self, model_path: Path, labels_path: Path, *, score_threshold: float, iou_threshold: float,
                 tracked_labels: tuple[str, ...] | None = None, use_gpu: bool = True, intra_op_threads: int = 0,
                 thread_spinning: bool = True, kind: ModelKind = "ssd"):
        if not model_path.is_file():
            prepare = ("python scripts/convert_nanodet.py" if kind == "nanodet" else "python -m inference.mediapipe")
            raise ModelAssetError(f"no model at {model_path}: run `{prepare}` (or set VIGIE_INFERENCE_MODEL_PATH)")
        self.kind = kind
        self.input_size = nanodet.INPUT_SIZE if kind == "nanodet" else INPUT_SIZE
        self.labels = read_labels(labels_path)
        check_model_classes(self.labels)
        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if thread_spinning else "0")
        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if use_gpu and "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self._session = ort.InferenceSession(str(model_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions for bad files
            raise ModelAssetError(f"cannot load {model_path}: {exc}") from exc
        self.providers = self._session.get_providers()
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape[1:]) != [3, self.input_size, self.input_size]:
            raise ModelAssetError(f"{model_path} does not take [N,3,{self.input_size},{self.input_size}], the input "
                                  f"of a {kind} model")
        self._input = inputs[0].name
        self._outputs = (self._nanodet_outputs(model_path) if kind == "nanodet" else self._ssd_outputs(model_path))
        self._anchors = ssd_anchors()
        self._centres, self._strides = nanodet.grid_points()
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.allowed_classes = (None if tracked_labels is None
                                else frozenset(i for i, label in enumerate(self.labels) if label in tracked_labels))

    def _ssd_outputs(self, model_path: Path) -> list[str]:
        outputs = self._session.get_outputs()
        if len(outputs) != 2:
            raise ModelAssetError(f"{model_path} is not an SSD: {len(outputs)} outputs instead of 2")
        if outputs[1].shape[-1] != len(self.labels) or outputs[0].shape[1] != NUM_ANCHORS:
            raise ModelAssetError(f"{model_path} outputs do not match {len(self.labels)} labels and "
                                  f"{NUM_ANCHORS} anchors")
        return [o.name for o in outputs]

    def _nanodet_outputs(self, model_path: Path) -> list[str]:
        shapes = {o.name: o.shape for o in self._session.get_outputs()}
        wanted = {name: [cells, nanodet.NUM_CLASSES if name.startswith("scores") else 4 * nanodet.REG_BINS]
                  for name, cells in nanodet.output_cells().items()}
        if {name: shapes.get(name, [None])[1:] for name in wanted} != wanted or len(shapes) != len(wanted):
            raise ModelAssetError(f"{model_path} is not the NanoDet of scripts/convert_nanodet.py (outputs "
                                  f"{sorted(shapes)})")
        if len(self.labels) != nanodet.NUM_CLASSES:
            raise ModelAssetError(f"{model_path} detects {nanodet.NUM_CLASSES} classes, its labels name "
                                  f"{len(self.labels)}")
        return list(wanted)

    @classmethod
    def from_settings(cls, settings: InferenceSettings) -> OnnxDetector:
        """The configured model, or the MediaPipe SSD prepared under models_dir when none is configured (NanoDet is
        prepared beforehand by scripts/convert_nanodet.py)."""
        if settings.model_path is None and settings.model_kind == "ssd":
            prepare_detector_model(settings.models_dir)
        return cls(settings.onnx_path, settings.labels_file, score_threshold=settings.score_threshold,
                   iou_threshold=settings.nms_iou_threshold, tracked_labels=settings.tracked_labels,
                   use_gpu=settings.use_gpu, intra_op_threads=settings.intra_op_threads,
                   thread_spinning=settings.thread_spinning, kind=settings.model_kind)

    def preprocess(self, frames: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Square RGB frames of the model's size → its NCHW input batch."""
        return nanodet.preprocess(frames) if self.kind == "nanodet" else preprocess(frames)

    def run_raw(self, batch: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Model outputs for a preprocessed NCHW batch: (boxes, classes), i.e. the SSD's box encodings and class
        logits, or NanoDet's box distributions and class scores of all strides, concatenated."""
        found = [np.asarray(o, dtype=np.float32) for o in self._session.run(self._outputs, {self._input: batch})]
        if self.kind == "nanodet":
            scores, distributions = found[:3], found[3:]
            return np.concatenate(distributions, axis=1), np.concatenate(scores, axis=1)
        return found[0], found[1]

    def detect(self, frames: list[npt.NDArray[np.uint8]]) -> list[list[RawDetection]]:
        """Detections for each square RGB frame of the model's size, in order."""
        if not frames:
            return []
        return self.decode(*self.run_raw(self.preprocess(frames)))

    def decode(self, boxes: npt.NDArray[np.float32], classes: npt.NDArray[np.float32]) -> list[list[RawDetection]]:
        """run_raw's outputs → each frame's detections after the threshold and NMS."""
        if self.kind == "nanodet":
            return [nanodet.postprocess(classes[i], boxes[i], self._centres, self._strides,
                                        score_threshold=self.score_threshold, iou_threshold=self.iou_threshold,
                                        allowed_classes=self.allowed_classes)
                    for i in range(len(boxes))]
        return [postprocess(boxes[i], classes[i], self._anchors, score_threshold=self.score_threshold,
                            iou_threshold=self.iou_threshold, allowed_classes=self.allowed_classes)
                for i in range(len(boxes))]
