"""The detector on onnxruntime: batched SSD inference on CPU, or CUDA when onnxruntime-gpu sees a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]

from inference.errors import ModelAssetError
from inference.mediapipe import prepare_detector_model
from inference.rules import check_model_classes
from inference.settings import InferenceSettings
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
    """Runs the SSD on batches of 300x300 RGB frames and returns per-frame detections."""

    def __init__(self, model_path: Path, labels_path: Path, *, score_threshold: float, iou_threshold: float,
                 tracked_labels: tuple[str, ...] | None = None, use_gpu: bool = True, intra_op_threads: int = 0):
        if not model_path.is_file():
            raise ModelAssetError(f"no model at {model_path}: run `python -m inference.mediapipe` "
                                  "(or set VIGIE_INFERENCE_MODEL_PATH)")
        self.labels = read_labels(labels_path)
        check_model_classes(self.labels)
        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
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
        outputs = self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 2 or list(inputs[0].shape[1:]) != [3, INPUT_SIZE, INPUT_SIZE]:
            raise ModelAssetError(f"{model_path} is not an SSD with input [N,3,{INPUT_SIZE},{INPUT_SIZE}]")
        if outputs[1].shape[-1] != len(self.labels) or outputs[0].shape[1] != NUM_ANCHORS:
            raise ModelAssetError(f"{model_path} outputs do not match {len(self.labels)} labels and "
                                  f"{NUM_ANCHORS} anchors")
        self._input = inputs[0].name
        self._outputs = [o.name for o in outputs]
        self._anchors = ssd_anchors()
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.allowed_classes = (None if tracked_labels is None
                                else frozenset(i for i, label in enumerate(self.labels) if label in tracked_labels))

    @classmethod
    def from_settings(cls, settings: InferenceSettings) -> OnnxDetector:
        """The configured model, or the MediaPipe SSD prepared under models_dir when none is configured."""
        if settings.model_path is None:
            prepare_detector_model(settings.models_dir)
        return cls(settings.onnx_path, settings.labels_file, score_threshold=settings.score_threshold,
                   iou_threshold=settings.nms_iou_threshold, tracked_labels=settings.tracked_labels,
                   use_gpu=settings.use_gpu, intra_op_threads=settings.intra_op_threads)

    def run_raw(self, batch: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Model outputs for a preprocessed NCHW batch: (box encodings, class logits)."""
        boxes, logits = self._session.run(self._outputs, {self._input: batch})
        return np.asarray(boxes, dtype=np.float32), np.asarray(logits, dtype=np.float32)

    def detect(self, frames: list[npt.NDArray[np.uint8]]) -> list[list[RawDetection]]:
        """Detections for each 300x300 RGB frame, in order."""
        if not frames:
            return []
        boxes, logits = self.run_raw(preprocess(frames))
        return [postprocess(boxes[i], logits[i], self._anchors, score_threshold=self.score_threshold,
                            iou_threshold=self.iou_threshold, allowed_classes=self.allowed_classes)
                for i in range(len(frames))]
