"""A pose model (MoveNet SinglePose Lightning) confirming someone lies where the turned crops found a person."""

# The SSD's score for a Person in a turned crop does not separate a lying person from other wide still things: on
# the annotated and built footage it gave 0.40-0.61 to the two lying people and 0.41-0.49 to a railing, a parked
# bicycle and people walking by (docs/detection.md, "A pose model as a second stage"). MoveNet finds the 17
# keypoints of one person in a picture; on a tight crop around the place, turned a quarter each way so that a lying
# body stands up, its mean keypoint score was 0.32-0.50 on every look at the lying people and 0.08-0.23 on the
# other looks the detector called lying (python -m bench.lying).

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from inference.conversions import array_to_array
from inference.errors import ModelAssetError

if TYPE_CHECKING:
    from inference.settings import InferenceSettings

INPUT_SIZE = 192  # MoveNet Lightning's square input
KEYPOINTS = 17  # COCO's: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles
PixelBox = tuple[int, int, int, int]


def pose_input(picture: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    """An RGB picture scaled into MoveNet's square input, aspect kept, padded with black (right and bottom)."""
    height, width = picture.shape[:2]
    side = max(height, width)
    content_w, content_h = max(1, round(INPUT_SIZE * width / side)), max(1, round(INPUT_SIZE * height / side))
    padded = np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.int32)
    padded[0, :content_h, :content_w] = array_to_array(np.ascontiguousarray(picture), content_w, content_h)
    return padded


class PoseModel:
    """MoveNet in onnxruntime, one thread (it runs beside the detector, a few looks a second at most)."""

    def __init__(self, model_path: Path, *, use_gpu: bool = False) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        if not model_path.is_file():
            raise ModelAssetError(f"the pose model {model_path} is missing (scripts/convert_movenet.py makes it)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if use_gpu and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self._session = ort.InferenceSession(str(model_path), options, providers=providers)
        self._input = self._session.get_inputs()[0].name

    def keypoints(self, picture: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The 17 keypoints MoveNet finds in an RGB picture: rows of (y, x, score), y and x in its padded input."""
        found = self._session.run(None, {self._input: pose_input(picture)})[0]
        return np.asarray(found, dtype=np.float32).reshape(KEYPOINTS, 3)

    def lying_score(self, rgb: npt.NDArray[np.uint8], crop: PixelBox) -> float:
        """How surely a person's body is in the crop once turned upright: MoveNet's mean keypoint score on the crop
        turned a quarter each way, the better of the two."""
        left, top, right, bottom = crop
        picture = rgb[top:bottom, left:right]
        if picture.size == 0:
            return 0.0
        return max(float(self.keypoints(np.rot90(picture, turn))[:, 2].mean()) for turn in (1, 3))


class LazyPoseModel:
    """The pose model loaded on its first look, in the thread that scores: workers whose cameras have no
    person-on-the-ground rule never load it."""

    def __init__(self, model_path: Path, *, use_gpu: bool = False) -> None:
        self.model_path = model_path
        self._use_gpu = use_gpu
        self._model: PoseModel | None = None
        self._lock = threading.Lock()

    def lying_score(self, rgb: npt.NDArray[np.uint8], crop: PixelBox) -> float:
        with self._lock:
            if self._model is None:
                self._model = PoseModel(self.model_path, use_gpu=self._use_gpu)
        return self._model.lying_score(rgb, crop)


def pose_from_settings(settings: InferenceSettings) -> LazyPoseModel | None:
    """The second stage for people on the ground, unless `lying_pose_threshold` turns it off."""
    if settings.lying_pose_threshold <= 0:
        return None
    if not settings.pose_model_path.is_file():  # refused when the worker starts, not at its first look
        raise ModelAssetError(f"the pose model {settings.pose_model_path} is missing (scripts/convert_movenet.py "
                              "makes it; VIGIE_INFERENCE_LYING_POSE_THRESHOLD=0 runs without it)")
    return LazyPoseModel(settings.pose_model_path, use_gpu=settings.use_gpu)
