"""The detection backend VIGIE_INFERENCE_BACKEND names: portable (PyAV + onnxruntime) or DeepStream (GPU nodes)."""

from __future__ import annotations

from inference.deepstream import DeepStreamBackend, require_deepstream
from inference.errors import BackendUnavailable
from inference.mediapipe import prepare_detector_model
from inference.onnx_detector import OnnxDetector, read_labels
from inference.portable import PortableBackend
from inference.pose import pose_from_settings
from inference.publisher import EventSink
from inference.rules import check_model_classes
from inference.settings import InferenceSettings
from inference.worker import Backend


def make_backend(settings: InferenceSettings, sink: EventSink) -> Backend:
    """Both run the same model, rules and events; DeepStream is refused at once where its SDK is missing."""
    if settings.backend == "deepstream":
        if settings.model_kind != "ssd":
            # nvinfer's configuration and box parsing are the SSD's (inference/deepstream_config.py).
            raise BackendUnavailable(f"the DeepStream backend runs the SSD only, not {settings.model_kind}: set "
                                     "VIGIE_INFERENCE_BACKEND=portable")
        require_deepstream()
        if settings.model_path is None:
            prepare_detector_model(settings.models_dir)
        labels = read_labels(settings.labels_file)
        check_model_classes(labels)
        return DeepStreamBackend(settings=settings, sink=sink, labels=labels, pose=pose_from_settings(settings))
    return PortableBackend(OnnxDetector.from_settings(settings), sink, settings, pose=pose_from_settings(settings))
