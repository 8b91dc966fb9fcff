"""The GPU's detections through the same rules as the CPU's → bench/results/gpu-agreement.json."""

# bench/gpu/run.py, on a GPU machine, writes gpu-outputs.npz: for every frame bench.rules replays of vtest and
# bikes, the model's outputs on the GPU (fp16 and fp32 on the portable backend's own input, fp16 on the GPU's own
# letterbox of the NV12 picture) at the anchors that can become detections, and the SHA-1 of each input it made.
# Here each clip is replayed through the portable backend as bench.rules does, once with onnxruntime (a CPU node)
# and once per GPU variant with a detector that answers from the file; the alerts are scored against the
# annotations and compared alert by alert, the detections frame by frame.
# Usage: python -m bench.gpu.agreement [--outputs bench/results/gpu-outputs.npz]

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from bench.detector import ROOT, commit, prepare
from bench.gpu.pipeline_parts import SparseOutputs, replay_input, replay_pictures, sparse_outputs
from bench.rules import (
    DATA,
    DETECT_FPS,
    RESULTS,
    SUB_WIDTH,
    build_config,
    clip_frames,
    footage_path,
    replay,
    score_rules,
)
from inference.motion import MotionGate
from inference.onnx_detector import OnnxDetector
from inference.settings import InferenceSettings
from inference.ssd import NUM_ANCHORS, RawDetection, iou_matrix

CLIPS = ("vtest", "bikes")  # the clips with annotated intrusions and line crossings
# run.py keeps the outputs of anchors scoring this or more (bench.gpu.prepare passes it on): below every threshold
KEPT_MIN_SCORE = 0.2
CPU = "cpu_onnxruntime"
BATCH = 32
SAME_DETECTION_IOU = 0.5


def input_hash(image: npt.NDArray[np.uint8]) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def portable_inputs(frames: Sequence[av.VideoFrame], settings: InferenceSettings) -> list[npt.NDArray[np.uint8]]:
    """Each replayed frame's detector input, made by the backend's own code (inference.rtsp.DecodedFrame)."""
    camera = uuid.uuid4()
    return [prepare(camera, frame, MotionGate(), 0.0, max_stretch=settings.max_stretch,
                    input_size=settings.input_size).detector_input for frame in frames]


def onnxruntime_outputs(detector: OnnxDetector, inputs: Sequence[npt.NDArray[np.uint8]],
                        min_score: float) -> SparseOutputs:
    """The portable backend's raw outputs for these inputs, kept as run.py keeps the GPU's."""
    encodings, logits = [], []
    for start in range(0, len(inputs), BATCH):
        found = detector.run_raw(detector.preprocess(list(inputs[start:start + BATCH])))
        encodings.append(found[0])
        logits.append(found[1])
    return sparse_outputs(np.concatenate(encodings), np.concatenate(logits), min_score)


class RecordedDetector:
    """Answers the backend's detector calls from outputs computed elsewhere for the same frames: each image is
    recognised by the SHA-1 of its pixels as this machine makes them, then decoded by the portable detector's own
    code (threshold, tracked classes, NMS). An image it was not given outputs for is an error, not a guess."""

    def __init__(self, decoder: OnnxDetector, outputs: SparseOutputs, frame_of_input: dict[str, int]) -> None:
        self.labels = decoder.labels
        self._decoder = decoder
        self._outputs = outputs
        self._frame_of_input = frame_of_input

    def frame_detections(self, frame: int) -> list[RawDetection]:
        encodings, logits = self._outputs.dense(frame, NUM_ANCHORS)
        return self._decoder.decode(encodings[None], logits[None])[0]

    def detect(self, frames: list[npt.NDArray[np.uint8]]) -> list[list[RawDetection]]:
        found = []
        for image in frames:
            frame = self._frame_of_input.get(input_hash(image))
            if frame is None:
                raise LookupError("the detector was asked about an image the recorded outputs do not cover")
            found.append(self.frame_detections(frame))
        return found


def compare_detections(reference: list[list[RawDetection]], other: list[list[RawDetection]]) -> dict[str, Any]:
    """Frame by frame, greedy best-IoU pairs of the same class at IoU ≥ 0.5: how many each side found, how many
    paired, and how far the pairs' boxes and scores lie apart."""
    matched = 0
    ious: list[float] = []
    score_gaps: list[float] = []
    identical_frames = 0
    for ours, theirs in zip(reference, other, strict=True):
        pairs = 0
        if ours and theirs:
            overlap = iou_matrix(np.asarray([d.box for d in ours], dtype=np.float32),
                                 np.asarray([d.box for d in theirs], dtype=np.float32))
            same_class = np.asarray([[a.class_id == b.class_id for b in theirs] for a in ours])
            overlap = np.where(same_class, overlap, 0.0)
            while overlap.size and overlap.max() >= SAME_DETECTION_IOU:
                i, j = np.unravel_index(int(overlap.argmax()), overlap.shape)
                ious.append(float(overlap[i, j]))
                score_gaps.append(abs(ours[i].score - theirs[j].score))
                overlap[i, :] = 0.0
                overlap[:, j] = 0.0
                pairs += 1
        matched += pairs
        identical_frames += int(pairs == len(ours) == len(theirs))
    return {
        "frames": len(reference), "frames_with_the_same_detections": identical_frames,
        "reference_detections": sum(len(d) for d in reference), "detections": sum(len(d) for d in other),
        "paired": matched,
        "mean_iou_of_pairs": round(float(np.mean(ious)), 4) if ious else None,
        "min_iou_of_pairs": round(float(np.min(ious)), 4) if ious else None,
        "max_score_gap_of_pairs": round(float(np.max(score_gaps)), 4) if score_gaps else None,
    }


def write_cpu_outputs(path: Path, settings: InferenceSettings, min_score: float, variant: str,
                      clips: Sequence[str] = CLIPS) -> None:
    """An outputs file as run.py writes it, made here with onnxruntime on inputs made by run.py's own code (the
    self-check: replayed, it must give the CPU's alerts exactly)."""
    detector = OnnxDetector.from_settings(settings)
    arrays: dict[str, Any] = {"min_score": np.asarray(min_score)}
    for name in clips:
        clip = json.loads((DATA / f"{name}.json").read_text())
        pictures = replay_pictures(av, footage_path(clip), DETECT_FPS, SUB_WIDTH)
        inputs = [replay_input(av, picture, settings.max_stretch, settings.input_size) for picture in pictures]
        arrays[f"{name}__sha1"] = np.asarray([input_hash(image) for image in inputs])
        arrays.update(onnxruntime_outputs(detector, inputs, min_score).arrays(f"{name}__{variant}"))
    np.savez_compressed(path, **arrays)


@dataclass
class ClipReplay:
    clip: dict[str, Any]
    frames: list[av.VideoFrame]
    frame_of_input: dict[str, int]
    inputs: list[npt.NDArray[np.uint8]]  # the backend's own detector inputs, frame by frame


def alert_list(sink_alerts: list[tuple[float, uuid.UUID, int]], meaning: dict[uuid.UUID, tuple[str, str]]
               ) -> list[tuple[float, str, str, int]]:
    return sorted((round(t, 1), *meaning[rule], n) for t, rule, n in sink_alerts if rule in meaning)


async def evaluate(outputs_path: Path, settings: InferenceSettings, clips: Sequence[str] = CLIPS) -> dict[str, Any]:
    arrays = np.load(outputs_path)
    decoder = OnnxDetector.from_settings(settings)
    if settings.score_threshold < float(arrays["min_score"]):
        raise SystemExit(f"the outputs keep anchors scoring {float(arrays['min_score'])} or more, below the "
                         f"detector's threshold {settings.score_threshold}: rerun bench/gpu/run.py")
    variants = sorted({key.split("__")[1] for key in arrays.files if key.endswith("__offsets")})
    replays = []
    clips_summary: dict[str, Any] = {}
    for name in clips:
        clip = json.loads((DATA / f"{name}.json").read_text())
        frames, _ = clip_frames(footage_path(clip))
        inputs = portable_inputs(frames, settings)
        hashes = [input_hash(image) for image in inputs]
        remote = [str(h) for h in arrays[f"{name}__sha1"]]
        if len(remote) != len(frames):
            raise SystemExit(f"{name}: the outputs cover {len(remote)} frames, this machine replays {len(frames)}")
        replays.append(ClipReplay(clip, frames, {h: i for i, h in enumerate(hashes)}, inputs))
        clips_summary[name] = {"frames": len(frames),
                               "inputs_identical_to_this_machines": sum(a == b for a, b in zip(hashes, remote,
                                                                                                strict=True))}
    results: dict[str, Any] = {}
    reference_alerts: dict[str, list[tuple[float, str, str, int]]] = {}
    reference_detections: dict[str, list[list[RawDetection]]] = {}
    for variant in [CPU, *variants]:
        per_clip = []
        detections: dict[str, Any] = {}
        alerts_only: dict[str, Any] = {}
        for item in replays:
            name = item.clip["clip"]
            if variant == CPU:
                outputs = onnxruntime_outputs(decoder, item.inputs, float(arrays["min_score"]))
            else:
                outputs = SparseOutputs.from_arrays(arrays, f"{name}__{variant}")
            detector = RecordedDetector(decoder, outputs, item.frame_of_input)
            config, meaning = build_config(item.clip, {})
            sink = await replay(detector, item.frames, config, settings)
            per_clip.append((item.clip, meaning, sink))
            alerts = alert_list(sink.alerts, meaning)
            found = [detector.frame_detections(i) for i in range(len(item.frames))]
            if variant == CPU:
                reference_alerts[name], reference_detections[name] = alerts, found
                continue
            detections[name] = compare_detections(reference_detections[name], found)
            alerts_only[name] = {"cpu": [a for a in reference_alerts[name] if a not in alerts],
                                 "gpu": [a for a in alerts if a not in reference_alerts[name]]}
        results[variant] = {"rules": score_rules(per_clip)}
        if variant != CPU:
            results[variant]["same_alerts_as_cpu"] = all(not v["cpu"] and not v["gpu"] for v in alerts_only.values())
            results[variant]["alerts_only_one_side"] = alerts_only
            results[variant]["detections_against_cpu"] = detections
    device = outputs_path.with_name("gpu.json")
    return {
        "variants": results, "clips": clips_summary,
        "device": json.loads(device.read_text()).get("environment") if device.is_file() else None,
        "method": ("each clip at 5 fps, scaled to 384 px wide when wider, through PortableBackend.step with motion "
                   "gating as in bench.rules; cpu_onnxruntime runs onnxruntime on this machine; the other variants "
                   "answer each detector call with the GPU's outputs for the same frame (fp16/fp32: on the "
                   "portable backend's input made there; fp16_gpu_letterbox: on the GPU's letterbox of the NV12 "
                   "picture), decoded by the same code. Detections paired per frame by class at IoU >= 0.5."),
        "outputs": str(outputs_path.relative_to(ROOT)) if outputs_path.is_relative_to(ROOT) else str(outputs_path),
        "commit": commit(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outputs", type=Path, default=RESULTS / "gpu-outputs.npz",
                        help="gpu-outputs.npz written by bench/gpu/run.py on a GPU machine")
    parser.add_argument("--self-check", action="store_true",
                        help="first write --outputs with onnxruntime here, as run.py would (same alerts expected)")
    args = parser.parse_args()
    settings = InferenceSettings(models_dir=ROOT / "var" / "models")
    if args.self_check:
        write_cpu_outputs(args.outputs, settings, KEPT_MIN_SCORE, "onnxruntime_as_run_py")
    if not args.outputs.is_file():
        parser.error(f"{args.outputs} not found: run bench/gpu/run.py on a GPU machine and copy its gpu-outputs.npz")
    result = asyncio.run(evaluate(args.outputs.resolve(), settings))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gpu-agreement.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
