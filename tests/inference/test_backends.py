"""VIGIE_INFERENCE_BACKEND selects what `python -m inference` builds: the portable backend, or DeepStream where its
SDK is installed; anything else is refused before the worker starts."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.events import Event
from core.settings import Settings
from inference.backends import make_backend
from inference.errors import BackendUnavailable
from inference.mediapipe import DetectorModelFiles
from inference.portable import PortableBackend
from inference.publisher import Picture
from inference.settings import InferenceSettings


class Discard:
    def submit(self, event: Event, camera_id: uuid.UUID, picture: Picture | None = None) -> None:
        return None


def test_an_unknown_backend_is_refused_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_INFERENCE_BACKEND", "tensorrt")
    with pytest.raises(ValidationError, match="backend"):
        InferenceSettings()


def test_deepstream_without_its_sdk_is_refused_before_any_model_work(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    monkeypatch.setenv("VIGIE_INFERENCE_BACKEND", "deepstream")
    settings = InferenceSettings(models_dir=tmp_path)
    assert settings.backend == "deepstream"
    with pytest.raises(BackendUnavailable, match=r"pyds.*VIGIE_INFERENCE_BACKEND=portable"):
        make_backend(settings, Discard())
    assert list(tmp_path.iterdir()) == []  # no model was fetched for a backend that cannot run


def test_deepstream_refuses_nanodet_whose_boxes_its_parser_cannot_read(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    settings = InferenceSettings(models_dir=tmp_path, backend="deepstream", model_kind="nanodet")
    with pytest.raises(BackendUnavailable, match="SSD only"):
        make_backend(settings, Discard())


def test_the_portable_backend_is_the_default(detector_model: DetectorModelFiles,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIE_INFERENCE_BACKEND", raising=False)
    settings = InferenceSettings(model_path=detector_model.onnx, labels_path=detector_model.labels, use_gpu=False)
    backend = make_backend(settings, Discard())
    assert isinstance(backend, PortableBackend)
    assert backend.meter.totals == {}


@pytest.mark.integration
async def test_python_m_inference_exits_with_the_reason_when_deepstream_cannot_run(settings: Settings,
                                                                                     tmp_path: Path) -> None:
    env = {**os.environ, "VIGIE_ENVIRONMENT": "test", "VIGIE_DATA_KEY": settings.data_key.get_secret_value(),
           "VIGIE_DATABASE__NAME": settings.database.name, "VIGIE_DATABASE__HOST": settings.database.host,
           "VIGIE_DATABASE__PORT": str(settings.database.port), "VIGIE_NATS__URL": settings.nats.url,
           "VIGIE_OBJECTSTORE_BACKEND": "fs", "VIGIE_OBJECTSTORE_ROOT": str(tmp_path / "objects"),
           "VIGIE_INFERENCE_BACKEND": "deepstream", "VIGIE_INFERENCE_MODELS_DIR": str(tmp_path / "models")}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "inference", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    last = stderr.decode().strip().splitlines()[-1]
    assert last.startswith("inference: VIGIE_INFERENCE_BACKEND=deepstream needs NVIDIA DeepStream"), last
