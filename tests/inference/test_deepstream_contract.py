"""DeepStream backend pieces that run without DeepStream: generated configs and NvDs metadata → structs."""

from __future__ import annotations

import configparser
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest

from inference.deepstream import (
    UNTRACKED_OBJECT_ID,
    analytics_status,
    detections_from_tensors,
    frame_objects,
    tracked_object,
)
from inference.deepstream_config import (
    ANALYTICS_HEIGHT,
    ANALYTICS_WIDTH,
    NvinferOptions,
    analytics_label,
    nvdcf_config,
    nvdsanalytics_config,
    nvinfer_config,
    nvinfer_options,
    pipeline_geometry,
)
from inference.model import CameraConfig, Rule, RuleParams, RuleType, Zone
from inference.rtsp import DecodedFrame
from inference.settings import InferenceSettings
from inference.ssd import (
    INPUT_SIZE,
    NUM_ANCHORS,
    letterbox_size,
    passes_class_threshold,
    postprocess,
    ssd_anchors,
    unletterbox,
)
from inference.tracker import MAX_MISSES, DetectedBox, IouTracker

TENANT = uuid.uuid4()


def parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_nvinfer_config_normalises_like_the_portable_backend() -> None:
    config = parse(nvinfer_config(NvinferOptions(Path("/models/ssd.onnx"), Path("/models/labels.txt"),
                                                 num_classes=24, batch_size=16)))["property"]
    # x * net-scale-factor - offset * scale = x / 127.5 - 1, the portable preprocess.
    scale = float(config["net-scale-factor"])
    offset = float(config["offsets"].split(";")[0])
    for x in (0.0, 127.5, 255.0):
        assert scale * (x - offset) == pytest.approx(x / 127.5 - 1, abs=1e-6)
    assert config["infer-dims"] == "3;300;300"
    assert config["model-color-format"] == "0"  # RGB
    assert config["output-tensor-meta"] == "1"
    assert config["batch-size"] == "16"
    assert config["num-detected-classes"] == "24"
    assert config["model-engine-file"].endswith(".b16.fp16.engine")


def camera_with(zone: Zone, rule_type: RuleType, **params: object) -> CameraConfig:
    rule = Rule(id=uuid.uuid4(), tenant_id=TENANT, camera_id=zone.camera_id, rule_type=rule_type, zone_id=zone.id,
                params=RuleParams(**params))  # type: ignore[arg-type]
    return CameraConfig(camera_id=zone.camera_id, tenant_id=TENANT, name="c", stream_url="rtsp://h/s",
                        zones=(zone,), rules=(rule,))


def test_nvdsanalytics_sections_per_stream_in_config_pixels() -> None:
    camera_id = uuid.uuid4()
    square = Zone(id=uuid.uuid4(), tenant_id=TENANT, camera_id=camera_id, name="Parvis nord", kind="zone",
                  points=((0.25, 0.5), (0.75, 0.5), (0.75, 1.0), (0.25, 1.0)))
    line = Zone(id=uuid.uuid4(), tenant_id=TENANT, camera_id=camera_id, name="portail", kind="line",
                points=((0.5, 0.0), (0.5, 1.0)))
    crowd_cam = camera_with(square, RuleType.EXCESSIVE_DENSITY, max_objects=12)
    config = parse(nvdsanalytics_config([
        (0, camera_with(square, RuleType.INTRUSION)),
        (3, camera_with(line, RuleType.LINE_CROSSING, direction="left_to_right")),
        (4, crowd_cam),
    ]))
    assert config["property"]["config-width"] == str(ANALYTICS_WIDTH)
    label = analytics_label(square)
    assert " " not in label
    roi = config["roi-filtering-stream-0"][f"roi-{label}"].split(";")
    assert [int(v) for v in roi] == [480, 540, 1440, 540, 1440, 1080, 480, 1080]
    crossing = [int(v) for v in config["line-crossing-stream-3"][f"line-crossing-{analytics_label(line)}"].split(";")]
    assert crossing[4:] == [960, 0, 960, ANALYTICS_HEIGHT]  # the line itself
    # Direction vector: towards the right-hand side of a→b (a→b points down, so towards the screen's left).
    assert crossing[2] < crossing[0]
    assert config["overcrowding-stream-4"]["object-threshold"] == "12"
    assert not config.has_section("roi-filtering-stream-3")


@dataclass
class Rect:
    left: float
    top: float
    width: float
    height: float


@dataclass
class ObjectMeta:
    object_id: int
    class_id: int
    confidence: float
    obj_label: str
    rect_params: Rect = field(default_factory=lambda: Rect(0, 0, 0, 0))


def test_object_meta_becomes_the_portable_backends_tracked_object() -> None:
    labels = ["???", "Bicycle", "Boot", "Laptop", "Person"]
    metas = [
        ObjectMeta(7, 4, 0.81234, "Person", Rect(192, 144, 96, 288)),
        ObjectMeta(UNTRACKED_OBJECT_ID, 4, 0.9, "Person", Rect(0, 0, 10, 10)),  # the tracker did not take it
        ObjectMeta(9, 1, 0.5, "", Rect(700, 500, 200, 200)),  # spills over the frame edge
        ObjectMeta(10, 1, 0.5, "", Rect(100, 100, 0, 20)),  # degenerate
    ]
    objects = frame_objects(metas, 768, 576, labels)
    assert [o.track_id for o in objects] == [7, 9]
    person, bike = objects
    assert person.box == pytest.approx((0.25, 0.25, 0.375, 0.75))
    assert person.label == "Person"
    assert person.score == pytest.approx(0.8123)
    assert bike.label == "Bicycle"  # from the label map when nvinfer left obj_label empty
    assert bike.box[2] == 1.0
    assert bike.box[3] == 1.0
    huge = tracked_object(ObjectMeta(2**40 + 5, 4, 0.5, "Person", Rect(1, 1, 5, 5)), 100, 100, labels)
    assert huge is not None
    assert 0 <= huge.track_id < 2**31


def test_analytics_status_and_tensor_decoding_match_the_portable_path() -> None:
    @dataclass
    class Info:
        roiStatus: list[str]
        lcStatus: list[str]
        dirStatus: str

    status = analytics_status(3, Info(["parvis"], [], "south"))
    assert (status.zones, status.lines_crossed, status.direction) == (("parvis",), (), "south")
    rng = np.random.default_rng(3)
    boxes = rng.normal(0, 1, NUM_ANCHORS * 4).astype(np.float32)
    logits = rng.normal(-4, 2, NUM_ANCHORS * 24).astype(np.float32)
    anchors = ssd_anchors()
    flat = detections_from_tensors(boxes, logits, anchors, score_threshold=0.5, iou_threshold=0.45,
                                   allowed_classes=None)
    portable = postprocess(boxes.reshape(-1, 4), logits.reshape(-1, 24), anchors, score_threshold=0.5,
                           iou_threshold=0.45)
    assert flat == portable
    assert flat


def test_pyds_is_imported_by_one_module_only_and_lazily() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    importers = sorted(str(p.relative_to(root)) for package in ("inference", "api", "dvr", "core", "camsim")
                       if (root / package).is_dir() for p in (root / package).rglob("*.py")
                       if "import pyds" in p.read_text())
    assert importers == ["inference/deepstream.py"]
    probe = subprocess.run([sys.executable, "-c", "import sys, inference.deepstream, inference.portable; "
                            "print('pyds' in sys.modules)"], capture_output=True, text=True, check=True, cwd=root)
    assert probe.stdout.strip() == "False"


# One configuration for both backends ---------------------------------------------------------------------

@pytest.mark.parametrize("max_stretch", [1.0, 1.5, 10.0])
def test_nvinfer_sees_the_picture_the_portable_detector_sees(max_stretch: float) -> None:
    settings = InferenceSettings(max_stretch=max_stretch, camera_aspect=(16, 9))
    geometry = pipeline_geometry(settings)
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 255, size=(9, 16, 3), dtype=np.uint8)
    camera = av.VideoFrame.from_ndarray(np.kron(blocks, np.ones((80, 80, 1), dtype=np.uint8)), format="rgb24")
    portable = DecodedFrame(camera_id=uuid.uuid4(), timestamp=0.0, captured_at=None,  # type: ignore[arg-type]
                            frame_size=(1280, 720), motion=None, stats=None,  # type: ignore[arg-type]
                            picture=camera, max_stretch=settings.max_stretch)
    # nvstreammux scales to its size; nvinfer with maintain-aspect-ratio pads right and bottom, or stretches.
    muxed = camera.reformat(width=geometry.muxer_width, height=geometry.muxer_height)
    options = parse(nvinfer_config(nvinfer_options(settings, 24)))["property"]
    keep_aspect = options["maintain-aspect-ratio"] == "1"
    assert options["symmetric-padding"] == "0"
    content = letterbox_size(muxed.width, muxed.height) if keep_aspect else (INPUT_SIZE, INPUT_SIZE)
    assert content == portable.detector_content == geometry.content
    seen_by_nvinfer = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    seen_by_nvinfer[:content[1], :content[0]] = muxed.to_ndarray(width=content[0], height=content[1],
                                                                 format="rgb24")
    difference = np.abs(seen_by_nvinfer.astype(int) - portable.detector_input.astype(int))
    assert difference.mean() < 4  # only resampling differs


def test_the_tracker_and_thresholds_of_both_backends_come_from_the_same_settings() -> None:
    settings = InferenceSettings(track_min_hits=3, score_threshold=0.45, class_score_thresholds={"Car": 0.7})
    nvdcf = dict(line.strip().split(": ", 1) for line in nvdcf_config(settings).splitlines() if ": " in line)
    assert int(nvdcf["probationAge"]) + 1 == settings.track_min_hits  # reported from its third frame
    assert float(nvdcf["minDetectorConfidence"]) == settings.score_threshold
    assert int(nvdcf["maxShadowTrackingAge"]) == MAX_MISSES
    tracker = IouTracker(min_hits=settings.track_min_hits)
    box = DetectedBox("Person", 0.9, (0.1, 0.1, 0.2, 0.4))
    seen = [bool(tracker.update([box], t * 0.2)) for t in range(4)]
    assert seen == [False, False, True, True]  # the portable tracker: the same third frame
    # The same raw tensors give the same detections in both backends, per-label thresholds and letterbox included.
    labels = ["???"] * 24
    labels[4], labels[23] = "Person", "Car"
    anchors = ssd_anchors()
    logits = np.full((NUM_ANCHORS, 24), -8.0, dtype=np.float32)
    logits[10, 4], logits[700, 23], logits[1500, 23] = 2.0, 0.2, 2.0  # person .88, car .55 (under .7), car .88
    encodings = np.zeros((NUM_ANCHORS, 4), dtype=np.float32)
    content = pipeline_geometry(InferenceSettings(max_stretch=1.0)).content
    ds = detections_from_tensors(encodings.ravel(), logits.ravel(), anchors, score_threshold=0.45,
                                 iou_threshold=0.45, allowed_classes=None, labels=labels,
                                 class_thresholds=settings.class_score_thresholds, content=content)
    portable = [(d.class_id, d.score, unletterbox(d.box, content))
                for d in postprocess(encodings, logits, anchors, score_threshold=0.45, iou_threshold=0.45)
                if passes_class_threshold(d.score, labels[d.class_id], settings.class_score_thresholds)]
    assert [(d.class_id, d.score, d.box) for d in ds] == portable
    assert sorted(labels[d.class_id] for d in ds) == ["Car", "Person"]
