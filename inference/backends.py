"""The detection backend VIGIE_INFERENCE_BACKEND names: portable (PyAV + onnxruntime) or DeepStream (GPU nodes)."""

from __future__ import annotations

from inference.deepstream import DeepStreamBackend, require_deepstream
from inference.mediapipe import prepare_detector_model
from inference.onnx_detector import OnnxDetector, read_labels
from inference.portable import PortableBackend
from inference.publisher import EventSink
from inference.rules import check_model_classes
from inference.settings import InferenceSettings
from inference.worker import Backend


def make_backend(settings: InferenceSettings, sink: EventSink) -> Backend:
    """Both run the same model, rules and events; DeepStream is refused at once where its SDK is missing."""
    if settings.backend == "deepstream":
        require_deepstream()
        if settings.model_path is None:
            prepare_detector_model(settings.models_dir)
        labels = read_labels(settings.labels_file)
        check_model_classes(labels)
        return DeepStreamBackend(settings=settings, sink=sink, labels=labels)
    return PortableBackend(OnnxDetector.from_settings(settings), sink, settings)
