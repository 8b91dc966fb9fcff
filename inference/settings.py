"""Settings of the detection worker, read from VIGIE_INFERENCE_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import PROJECT_ROOT

# The default model: what `python -m inference.mediapipe` prepares under models_dir (the MediaPipe SSD, its labels).
ONNX_FILE = "ssd_mobilenetv2_oidv4.onnx"
LABELS_FILE = "ssd_mobilenetv2_oidv4.labels.txt"

# The models the worker can decode: "ssd" (MediaPipe's SSD-MobileNetV2, Open Images classes, the default) and
# "nanodet" (NanoDet-g, COCO classes, prepared by scripts/convert_nanodet.py).
ModelKind = Literal["ssd", "nanodet"]
MODEL_FILES: dict[str, tuple[str, str]] = {
    "ssd": (ONNX_FILE, LABELS_FILE),
    "nanodet": ("nanodet_g_coco.onnx", "nanodet_g_coco.labels.txt"),
}
MODEL_INPUT_SIZE: dict[str, int] = {"ssd": 300, "nanodet": 416}
# What each model's vocabulary calls the classes worth tracking (COCO has bags and no box, camera or "vehicle").
TRACKED_LABELS: dict[str, tuple[str, ...]] = {
    "ssd": ("Person", "Car", "Vehicle", "Bicycle", "Box", "Laptop", "Bottle", "Book", "Camera", "Dog"),
    "nanodet": ("Person", "Car", "Truck", "Bus", "Motorcycle", "Bicycle", "Backpack", "Handbag", "Suitcase",
                "Laptop", "Bottle", "Book", "Dog"),
}


class InferenceSettings(BaseSettings):
    """Model, decode, gating, fair-share and publishing knobs of `python -m inference`."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_INFERENCE_", env_nested_delimiter="__", extra="ignore",
                                      protected_namespaces=())

    backend: Literal["portable", "deepstream"] = "portable"
    # Prometheus metrics on their own listener (host:port, port 0: any free one); empty: not served.
    metrics_address: str = "127.0.0.1:9104"
    models_dir: Path = PROJECT_ROOT / "var" / "models"
    model_kind: ModelKind = "ssd"
    # Production points these at its own model; empty means the MediaPipe SSD prepared under models_dir.
    model_path: Path | None = None
    labels_path: Path | None = None
    score_threshold: float = Field(0.4, gt=0, lt=1)
    nms_iou_threshold: float = Field(0.45, gt=0, le=1)
    # Labels that produce tracks and ObjectDetected events; the rest of what the model sees is ignored.
    # Unset: the model kind's own list (TRACKED_LABELS).
    tracked_labels: tuple[str, ...] = TRACKED_LABELS["ssd"]
    # A label's own minimum score, above score_threshold (e.g. {"Car": 0.6}); labels not named use score_threshold.
    class_score_thresholds: dict[str, float] = Field(default_factory=dict)
    # How much the picture's aspect ratio may be distorted to fill the model's square input; beyond it the picture
    # is letterboxed (padded). 1: always letterbox; 4:3 sub streams (1.33) are stretched, 2.35:1 ones padded.
    max_stretch: float = Field(1.5, ge=1, le=10)
    # Track confirmation: frames a track must be matched in, and how far (frame fractions) a person must have
    # moved from where they were first seen, before the rules hear of them.
    track_min_hits: int = Field(2, ge=1, le=50)
    track_min_displacement: float = Field(0.0, ge=0, le=1)
    # A new track where a lost one stood continues its rule memory (no second alert for the same person).
    join_fragments: bool = True
    # The cameras' usual aspect ratio: DeepStream scales every stream to one muxer size, chosen from it.
    camera_aspect: tuple[int, int] = (16, 9)
    publish_object_events: bool = True
    detect_fps: float = Field(5.0, gt=0, le=30)
    max_batch: int = Field(8, ge=1, le=256)
    intra_op_threads: int = Field(0, ge=0)  # 0: onnxruntime decides
    # onnxruntime's threads spin between parallel sections (its default): the detector stage runs fastest so, but
    # the spinning costs CPU the camera readers' decoding could use (docs/detection.md, "Measured").
    thread_spinning: bool = True
    use_gpu: bool = True  # CUDA when onnxruntime-gpu and a GPU are present, else CPU
    # Motion gating: grey-level change per pixel, and the share of changed pixels that counts as motion.
    motion_pixel_threshold: int = 25
    motion_min_changed: float = 0.002
    motion_scene_change: float = 0.6
    # Abandoned objects without a detector class (inference.static_objects), on cameras with that rule: grey-level
    # change per pixel against the long-term background, the plausible size of an object in frame fractions, and
    # how long something still there is kept apart from the background (at least twice the rule's stationary_s).
    static_pixel_threshold: int = Field(25, ge=1, le=255)
    static_min_area: float = Field(0.001, gt=0, lt=1)
    static_max_area: float = Field(0.05, gt=0, le=1)
    static_forget_s: float = Field(600.0, gt=0)
    # People on the ground (inference.lying_people), on cameras with that rule: the detector's minimum score for a
    # Person in a turned crop around a static region (and for an upright one in the unturned crop to veto it; unset:
    # score_threshold, and never below it), the crop's side in the region's longer side, and how often each place is
    # looked at.
    lying_score_threshold: float | None = Field(None, gt=0, lt=1)
    lying_crop_scale: float = Field(2.5, ge=1, le=10)
    lying_recheck_s: float = Field(1.0, gt=0)
    # The second stage on what the turned crops found lying (inference.pose): MoveNet's mean keypoint score a
    # lying person must reach; 0 turns it off (the detector's turned crops alone decide).
    lying_pose_threshold: float = Field(0.28, ge=0, lt=1)
    pose_model_path: Path = PROJECT_ROOT / "inference" / "assets" / "movenet_lightning.onnx"
    # Without motion or moving tracks, still refresh stationary tracks this often (abandoned object, person down).
    keepalive_s: float = 5.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    reconnect_base_s: float = 0.5
    reconnect_cap_s: float = 30.0
    # A camera failing this long after its last frame is announced offline (short blips are not).
    offline_after_s: float = 3.0
    # How long a frozen, tampered or degraded picture must last before the camera's health says so.
    picture_hold_s: float = 20.0
    # A picture that stops changing while frames keep coming: judged over a longer time (static night scenes).
    picture_frozen_hold_s: float = 60.0
    config_refresh_s: float = 5.0
    # Several workers share the cameras by lease (inference.fleet): a dead worker's cameras move after the TTL.
    lease_ttl_s: float = Field(10.0, gt=0)
    lease_poll_s: float = Field(2.0, gt=0)
    usage_flush_s: float = 30.0
    snapshot_quality: int = Field(80, ge=30, le=95)
    timezone: str = "Europe/Paris"
    # Fair-share weight of each plan: a tenant on "premium" gets four times the detector share of "essential".
    plan_weights: dict[str, float] = Field(default_factory=lambda: {"essential": 1.0, "standard": 2.0,
                                                                    "premium": 4.0})
    publish_queue_max: int = 10_000

    @model_validator(mode="after")
    def _tracked_labels_of_the_model(self) -> Self:
        if "tracked_labels" not in self.model_fields_set:
            self.tracked_labels = TRACKED_LABELS[self.model_kind]
        return self

    @model_validator(mode="after")
    def _static_area_range(self) -> Self:
        if self.static_min_area >= self.static_max_area:
            raise ValueError("static_min_area must be below static_max_area: no left object could be reported")
        return self

    @model_validator(mode="after")
    def _lying_threshold_reachable(self) -> Self:
        if self.lying_score_threshold is not None and self.lying_score_threshold < self.score_threshold:
            # The crops go through the same detector call as the frames, which drops boxes below score_threshold.
            raise ValueError("lying_score_threshold must be at least score_threshold: the detector drops boxes "
                             "below score_threshold before the crops are read")
        return self

    @property
    def lying_threshold(self) -> float:
        """The minimum score of a Person in the crops around places where someone may lie."""
        return self.score_threshold if self.lying_score_threshold is None else self.lying_score_threshold

    @property
    def onnx_path(self) -> Path:
        return self.model_path or self.models_dir / MODEL_FILES[self.model_kind][0]

    @property
    def labels_file(self) -> Path:
        return self.labels_path or self.models_dir / MODEL_FILES[self.model_kind][1]

    @property
    def input_size(self) -> int:
        """The model's square input, pixels a side."""
        return MODEL_INPUT_SIZE[self.model_kind]
