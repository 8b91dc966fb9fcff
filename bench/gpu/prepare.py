"""Builds the GPU bundle (var/gpu-bundle, < 64 MiB) that bench/gpu/run.py needs on a machine with no network.

Contents: the SSD as a plain op list (JSON) + fp16 weights (npz) that run.py executes with PyTorch, reference
outputs of onnxruntime on real frames (to check the GPU numbers are right), the detector's settings and anchors
(pipeline.json, anchors.npy), bench/masks.py's cover filter and the NVENC options (masks.json), the annotated clips
vtest.avi and bikes.mp4 with how the rules bench replays them (clips.json; run.py encodes its H.264 sample streams
from them), and the PyAV wheel (abi3, with NVDEC and libx264) in case the machine lacks it. The bundle and this
checkout travel together, within 64 MiB. Run here: `python -m bench.gpu.prepare`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import onnx
from onnx import numpy_helper

from bench.gpu.agreement import CLIPS, KEPT_MIN_SCORE
from bench.masks import MASKS
from bench.rules import DETECT_FPS, SUB_WIDTH
from camsim.footage import VTEST_PATH, source_path
from core.masks import cover_filter
from inference.mediapipe import prepare_detector_model
from inference.onnx_detector import OnnxDetector
from inference.settings import InferenceSettings
from inference.ssd import BOX_SCALES, INPUT_SIZE, letterbox_size, preprocess, ssd_anchors

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "var" / "gpu-bundle"
AV_WHEEL = "av==18.1.0"
# The GPU path of issue 15: NVENC at its fastest preset, keyframes where the camera sent them (IDR, so segments
# still start on them), no B-frames, the recorder's default 4 Mbit/s.
NVENC_OPTIONS = ["-c:v", "h264_nvenc", "-preset", "p1", "-forced-idr", "1", "-force_key_frames", "source",
                 "-bf", "0", "-b:v", "4000k"]


def export_graph(model_path: Path) -> None:
    model = onnx.load(str(model_path))
    weights: dict[str, np.ndarray] = {}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        weights[init.name] = array.astype(np.float16) if array.dtype == np.float32 else array
    nodes = []
    for node in model.graph.node:
        attrs = {}
        for attr in node.attribute:
            value = onnx.helper.get_attribute_value(attr)
            attrs[attr.name] = list(value) if isinstance(value, list | tuple) else value
        nodes.append({"op": node.op_type, "inputs": list(node.input), "outputs": list(node.output), "attrs": attrs})
    graph = {"input": model.graph.input[0].name, "outputs": [o.name for o in model.graph.output], "nodes": nodes}
    (BUNDLE / "ssd_graph.json").write_text(json.dumps(graph))
    np.savez(BUNDLE / "ssd_weights.npz", **{f"w{i}": v for i, v in enumerate(weights.values())},
             names=np.asarray(list(weights.keys())))


def reference_outputs(files_onnx: Path, labels: Path) -> None:
    detector = OnnxDetector(files_onnx, labels, score_threshold=0.4, iou_threshold=0.45)
    frames = []
    with av.open(str(VTEST_PATH)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in (0, 150, 300, 450):
                frames.append(np.asarray(frame.to_ndarray(width=300, height=300, format="rgb24"), dtype=np.uint8))
    batch = preprocess(frames)
    boxes, logits = detector.run_raw(batch)
    np.savez_compressed(BUNDLE / "reference.npz", frames=np.stack(frames), boxes=boxes, logits=logits)
    shutil.copy(labels, BUNDLE / "labels.txt")


def export_settings() -> None:
    """What run.py needs of the project without importing it: the detector's defaults, its anchors and the
    letterbox of a 1080p picture (run.py computes its own and checks it against this one)."""
    defaults = {name: field.default for name, field in InferenceSettings.model_fields.items()}
    max_stretch = float(defaults["max_stretch"])
    settings = {
        "input_size": INPUT_SIZE, "box_scales": list(BOX_SCALES), "max_stretch": max_stretch,
        "score_threshold": float(defaults["score_threshold"]), "iou_threshold": float(defaults["nms_iou_threshold"]),
        "content_1920x1080": list(letterbox_size(1920, 1080, max_stretch, INPUT_SIZE)),
    }
    (BUNDLE / "pipeline.json").write_text(json.dumps(settings, indent=2) + "\n")
    np.save(BUNDLE / "anchors.npy", ssd_anchors())
    masks = {"masks": MASKS, "cover_filter": cover_filter(MASKS), "nvenc_options": NVENC_OPTIONS}
    (BUNDLE / "masks.json").write_text(json.dumps(masks, indent=2) + "\n")


def export_clips() -> None:
    """The annotated clips bench.gpu.agreement compares GPU and CPU on, and how bench.rules samples them."""
    clips = {}
    for name in CLIPS:
        path = source_path(name)
        shutil.copy(path, BUNDLE / path.name)
        clips[name] = path.name
    spec = {"clips": clips, "detect_fps": DETECT_FPS, "sub_width": SUB_WIDTH, "min_score": KEPT_MIN_SCORE}
    (BUNDLE / "clips.json").write_text(json.dumps(spec, indent=2) + "\n")


def main() -> int:
    BUNDLE.mkdir(parents=True, exist_ok=True)
    files = prepare_detector_model(ROOT / "var" / "models")
    export_graph(files.onnx)
    reference_outputs(files.onnx, files.labels)
    export_settings()
    for stale in BUNDLE.glob("*.h264"):  # streams of older bundles: run.py encodes them now
        stale.unlink()
    export_clips()
    if not list(BUNDLE.glob("av-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", AV_WHEEL, "--no-deps", "--only-binary=:all:",
                        "--platform", "manylinux_2_28_x86_64", "--python-version", "3.12", "-d", str(BUNDLE), "-q"],
                       check=True)
    total = sum(p.stat().st_size for p in BUNDLE.iterdir())
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    checkout = sum((ROOT / name).stat().st_size for name in tracked.decode().split("\0")
                   if name and (ROOT / name).is_file())
    sys.stdout.write(f"{BUNDLE}: {total / 2**20:.1f} MiB; with the checkout's tracked files "
                     f"{(total + checkout) / 2**20:.1f} MiB (at most 64 travel)\n")
    return 0 if total < 64 * 2**20 else 1


if __name__ == "__main__":
    sys.exit(main())
