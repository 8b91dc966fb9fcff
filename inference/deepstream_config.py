"""DeepStream configuration files generated from settings and the cameras' zones (pure text, no pyds, testable).

nvinfer gets the same ONNX SSD as the portable backend (raw tensors out, parsed by the shared ssd module), or the
production model; nvdsanalytics gets one section per camera (stream index) for its zones, lines and directions.
"""

from __future__ import annotations

import configparser
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inference.model import CameraConfig, RuleType, Zone
from inference.settings import InferenceSettings
from inference.ssd import INPUT_SIZE, letterbox_size
from inference.tracker import MAX_MISSES

ANALYTICS_WIDTH = 1920
ANALYTICS_HEIGHT = 1080
BOX_LAYER = "raw_outputs/box_encodings"
CLASS_LAYER = "raw_outputs/class_predictions"


@dataclass(frozen=True)
class NvinferOptions:
    onnx_path: Path
    labels_path: Path
    num_classes: int
    batch_size: int
    engine_path: Path | None = None
    precision: str = "fp16"
    gpu_id: int = 0
    interval: int = 0  # frames skipped between inferences (0: every frame the muxer batches)
    maintain_aspect_ratio: bool = False


@dataclass(frozen=True)
class PipelineGeometry:
    """Sizes that make nvinfer see what the portable backend feeds its detector.

    nvinfer can only stretch or letterbox fully; the portable backend stretches up to `max_stretch` and pads the
    rest. So the muxer scales every camera to the aspect ratio of the portable backend's content area (the
    permitted stretch, uniform over the frame, which leaves normalised coordinates unchanged), and nvinfer then
    letterboxes that frame without distortion, padding right and bottom as the portable backend does.
    """

    muxer_width: int
    muxer_height: int
    content: tuple[int, int]  # pixels of the model's square input the picture fills

    @property
    def maintain_aspect_ratio(self) -> bool:
        return self.content != (INPUT_SIZE, INPUT_SIZE)


def pipeline_geometry(settings: InferenceSettings, muxer_width: int = 1280) -> PipelineGeometry:
    aspect_width, aspect_height = settings.camera_aspect
    content = letterbox_size(aspect_width * 100, aspect_height * 100, settings.max_stretch)
    height = max(2, round(muxer_width * content[1] / content[0] / 2) * 2)
    return PipelineGeometry(muxer_width=muxer_width, muxer_height=height, content=content)


def nvinfer_options(settings: InferenceSettings, num_classes: int) -> NvinferOptions:
    """nvinfer's options from the settings that drive the portable backend: same model, batch and geometry."""
    return NvinferOptions(onnx_path=settings.onnx_path, labels_path=settings.labels_file, num_classes=num_classes,
                          batch_size=settings.max_batch,
                          maintain_aspect_ratio=pipeline_geometry(settings).maintain_aspect_ratio)


def _render(sections: dict[str, dict[str, str]]) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # DeepStream keys are case-sensitive
    for name, values in sections.items():
        parser[name] = values
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def nvinfer_config(options: NvinferOptions) -> str:
    """[property] of nvinfer: same normalisation as the portable backend (x/127.5 - 1, RGB, stretched to 300x300),
    raw output tensors attached as metadata (output-tensor-meta) because SSD decoding happens in Python."""
    network_mode = {"fp32": "0", "int8": "1", "fp16": "2"}[options.precision]
    engine = options.engine_path or options.onnx_path.with_suffix(f".b{options.batch_size}.{options.precision}.engine")
    return _render({"property": {
        "gpu-id": str(options.gpu_id),
        "onnx-file": str(options.onnx_path),
        "model-engine-file": str(engine),
        "labelfile-path": str(options.labels_path),
        "batch-size": str(options.batch_size),
        "network-mode": network_mode,
        "num-detected-classes": str(options.num_classes),
        "interval": str(options.interval),
        "gie-unique-id": "1",
        "net-scale-factor": f"{1 / 127.5:.10f}",
        "offsets": "127.5;127.5;127.5",
        "model-color-format": "0",
        "infer-dims": f"3;{INPUT_SIZE};{INPUT_SIZE}",
        "maintain-aspect-ratio": "1" if options.maintain_aspect_ratio else "0",
        "symmetric-padding": "0",  # padding right and bottom, as the portable backend's letterbox
        "network-type": "100",
        "output-tensor-meta": "1",
        "output-blob-names": f"{BOX_LAYER};{CLASS_LAYER}",
    }})


def tracker_config(ll_config: Path, *, width: int = 640, height: int = 384) -> dict[str, str]:
    """nvtracker properties: NvDCF with the low-level configuration `nvdcf_config` wrote to `ll_config`."""
    return {
        "tracker-width": str(width),
        "tracker-height": str(height),
        "ll-lib-file": "/opt/nvidia/deepstream/deepstream/lib/libnvds_nvmultiobjecttracker.so",
        "ll-config-file": str(ll_config),
    }


def nvdcf_config(settings: InferenceSettings) -> str:
    """NvDCF's low-level configuration (YAML) with the portable tracker's confirmation and expiry: a target is
    reported from its `track_min_hits`-th frame and dropped after MAX_MISSES frames unseen. The displacement
    confirmation has no NvDCF setting: the adapter applies DisplacementConfirmation after nvtracker, as the
    portable backend does after IouTracker."""
    return "\n".join([
        "%YAML:1.0",
        "BaseConfig:",
        f"  minDetectorConfidence: {settings.score_threshold}",
        "TargetManagement:",
        "  enableBboxUnClipping: 0",
        f"  probationAge: {settings.track_min_hits - 1}",
        f"  maxShadowTrackingAge: {MAX_MISSES}",
        "  earlyTerminationAge: 1",
        "  maxTargetsPerStream: 150",
        "TrajectoryManagement:",
        "  useUniqueID: 0",
        "DataAssociator:",
        "  dataAssociatorType: 0",
        "  associationMatcherType: 1",
        "  checkClassMatch: 1",
        "StateEstimator:",
        "  stateEstimatorType: 1",
        "VisualTracker:",
        "  visualTrackerType: 1",
        "",
    ])


def analytics_label(zone: Zone) -> str:
    """A label nvdsanalytics accepts (no spaces or separators), unique per zone, traceable to its id."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', zone.name)[:40]}-{zone.id.hex[:8]}"


def _pixels(points: Sequence[tuple[float, float]]) -> list[int]:
    coords: list[int] = []
    for x, y in points:
        coords += [round(x * ANALYTICS_WIDTH), round(y * ANALYTICS_HEIGHT)]
    return coords


def _join(values: Sequence[int]) -> str:
    return ";".join(str(v) for v in values)


def nvdsanalytics_config(cameras: Sequence[tuple[int, CameraConfig]]) -> str:
    """One [roi-filtering|overcrowding|line-crossing|direction-detection-stream-N] per camera that needs it."""
    sections: dict[str, dict[str, str]] = {"property": {
        "enable": "1", "config-width": str(ANALYTICS_WIDTH), "config-height": str(ANALYTICS_HEIGHT),
        "osd-mode": "0", "display-font-size": "12",
    }}
    for stream, camera in cameras:
        zones = {z.id: z for z in camera.zones}
        roi: dict[str, str] = {}
        crowding: dict[str, str] = {}
        lines: dict[str, str] = {}
        directions: dict[str, str] = {}
        threshold = None
        for rule in camera.rules:
            zone = zones.get(rule.zone_id) if rule.zone_id is not None else None
            if zone is None:
                continue
            label = analytics_label(zone)
            if rule.rule_type in (RuleType.INTRUSION, RuleType.LOITERING) and zone.kind == "zone":
                roi[f"roi-{label}"] = _join(_pixels(zone.points))
            elif rule.rule_type is RuleType.EXCESSIVE_DENSITY and zone.kind == "zone":
                crowding[f"roi-{label}"] = _join(_pixels(zone.points))
                threshold = min(threshold or rule.params.max_objects, rule.params.max_objects)
            elif rule.rule_type is RuleType.LINE_CROSSING and zone.kind == "line":
                (ax, ay), (bx, by) = zone.points
                # nvdsanalytics wants a direction vector, then the line; crossing is counted along the vector,
                # i.e. towards the right-hand side of a→b for "left_to_right".
                sign = -1 if rule.params.direction == "right_to_left" else 1
                mx, my = (ax + bx) / 2, (ay + by) / 2
                nx, ny = -(by - ay) * sign, (bx - ax) * sign
                length = math.hypot(nx, ny) or 1.0
                tip = (mx + 0.05 * nx / length, my + 0.05 * ny / length)
                lines[f"line-crossing-{label}"] = _join(_pixels([(mx, my), tip, (ax, ay), (bx, by)]))
            elif rule.rule_type is RuleType.WRONG_WAY and zone.kind == "zone":
                dx, dy = rule.params.allowed_direction
                cx = sum(p[0] for p in zone.points) / len(zone.points)
                cy = sum(p[1] for p in zone.points) / len(zone.points)
                length = math.hypot(dx, dy) or 1.0
                # The direction nvdsanalytics reports is the forbidden one: against the allowed flow.
                end = (min(max(cx - 0.1 * dx / length, 0.0), 1.0), min(max(cy - 0.1 * dy / length, 0.0), 1.0))
                directions[f"direction-{label}"] = _join(_pixels([(cx, cy), end]))
        if roi:
            sections[f"roi-filtering-stream-{stream}"] = {"enable": "1", **roi, "inverse-roi": "0", "class-id": "-1"}
        if crowding:
            sections[f"overcrowding-stream-{stream}"] = {"enable": "1", **crowding,
                                                         "object-threshold": str(threshold), "class-id": "-1"}
        if lines:
            sections[f"line-crossing-stream-{stream}"] = {"enable": "1", **lines, "class-id": "-1", "extended": "0",
                                                          "mode": "balanced"}
        if directions:
            sections[f"direction-detection-stream-{stream}"] = {"enable": "1", **directions, "class-id": "-1"}
    return _render(sections)
