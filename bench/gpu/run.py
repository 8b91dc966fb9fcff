"""GPU capacity check for one NVIDIA H100/H200 (no network): NVDEC decode, batched CUDA inference, both together.

Self-contained: needs only Python >= 3.11, numpy and PyTorch with CUDA on the machine, pipeline_parts.py beside this
file, and the bundle made by `python -m bench.gpu.prepare` (var/gpu-bundle: model as op list + fp16 weights,
reference outputs, detector settings and anchors, the masks' cover filter, the annotated clips vtest.avi and
bikes.mp4, the PyAV wheel); ffmpeg for the masked re-encode. The H.264 sample streams are encoded here from the
clips first (--media, libx264). Each part falls back and says so (`notes`) when something is missing (no NVDEC, no
CUDA, no PyAV, no ffmpeg or no NVENC). Usage: python bench/gpu/run.py [--bundle var/gpu-bundle] [--out DIR] [--quick]

Writes DIR/gpu.json ($OUT or bench/results by default), after each part, with these parts:
- `agreement`: the rules bench's detector inputs of vtest and bikes through the model on the GPU (fp16 and fp32 on
  the portable backend's own inputs, fp16 on the GPU's letterbox of the NV12 picture); the outputs go to
  DIR/gpu-outputs.npz, which `python -m bench.gpu.agreement` replays through the rules on the CPU machine.
- `decode`: NVDEC and CPU decode rates of the sample streams; `inference`: the SSD alone on CUDA, fp32 and fp16,
  against onnxruntime's outputs; `pipeline`: the 384x288 sub streams, decoded, scaled to 300x300 on the GPU and
  inferred (one entry per stream count; kept unchanged as the comparison for the 1080p pipeline).
- `postprocess_check`: the GPU's box decode and NMS against the same code on numpy (the code unit-tested against
  inference.ssd): `gpu_matches_numpy`, `max_box_diff`; `detections_fp16` and `detections_onnxruntime` on the four
  reference frames; `letterbox_mean_abs_diff` / `letterbox_max_abs_diff`: the GPU's model input for a 1080p frame
  against the portable backend's (PyAV scaling to the content size, black padding), in 0-255 units.
- `pipeline_1080p`, one entry per stream count (32 and 128): N NVDEC decoders of the 1080p25 stream, as fast as they
  go, in processes of their own (frame_pool.py: cpu_count - 2 processes, the streams dealt round-robin), each keeping
  only its newest frame in shared memory (page-locked when CUDA allows: `page_locked`). PyAV hands decoded frames over
  in host memory (NV12), so each batch is copied to the GPU plane by plane, luma and chroma resized there to the
  content size of the portable backend's letterbox (`content`: at most a 1.5 stretch, the rest padded black right and
  bottom), converted to RGB (BT.601), normalised, then one fp16 inference for the whole (padded, fixed-size) batch,
  SSD box decode and per-class NMS on the GPU, and the detections per frame brought back. Figures: `processed_fps`
  (frames through the whole pipeline per second), `streams_at_5fps` / `streams_at_25fps` (processed_fps / 5 and / 25),
  `mean_batch`, `decoded_fps` (all decoders together), and per stage, the GPU synchronised between stages,
  `<stage>_ms_per_batch` and `<stage>_ms_per_frame` for `decode_wait` (waiting for a new frame from any decoder),
  `upload_resize` (copy to the GPU, resize, colour conversion, normalisation), `inference`, `decode_nms` (box decode,
  NMS, detections counted on the host); `resize` (the interpolation used), `nvdec`, `torn_copies` (copies dropped
  because a decoder rewrote the slot meanwhile). Waiting for frames and copying them happen together: `decode_wait`
  counts only a final wait that found nothing, the copies are in `upload_resize`.
- `gpu_stages_1080p`: the same GPU stages on 50 decoded frames kept in host memory (pinned) or on the GPU, decode
  set aside, 32 and 128 frames a batch; `nvdec_probe`: PyAV's CUDA decoding tried three ways and h264_cuvid.
- `masked_nvenc`: when ffmpeg lists h264_nvenc, K ffmpeg processes side by side (K = 8, 16, 32, stopping after the
  first K at which one falls below real time), each decoding the looped 1080p25 stream (`-hwaccel cuda` when
  ffmpeg has it), painting bench/masks.py's masks with core.masks.cover_filter and encoding with NVENC (the options
  in masks.json), output discarded. Per K: `per_process_fps_mean` / `per_process_fps_min`, `realtime_share_min`
  (slowest process / 25 fps), `cpu_s_per_camera_s` (CPU seconds of a process, read with wait4, per second of
  video), `aggregate_fps` and `masked_cameras_sustained` (aggregate_fps / 25); `probe`: one process alone first.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

# pipeline_parts.py travels beside this file; found whether run as a script or as a module.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from frame_pool import SharedNewestFrames, nv12
from pipeline_parts import (
    NUMPY,
    ArrayBackend,
    content_size,
    detect,
    masked_encode_command,
    nvenc_entry,
    pipeline_entry,
    replay_input,
    replay_pictures,
    sparse_outputs,
    yuv_to_rgb,
)

ROOT = Path(__file__).resolve().parents[2]
# The best anchors of each frame that are decoded and go through NMS: MediaPipe's own cap on detections.
CANDIDATES = 100
MASKED_FRAMES = 750  # 30 s of video per masked ffmpeg
RESULT: dict[str, Any] = {"notes": []}


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    RESULT["notes"].append(message)
    say(f"  ! {message}")


# Environment ------------------------------------------------------------------------------------------------

def environment() -> None:
    env: dict[str, Any] = {"python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30, check=False)
        env["gpu"] = smi.stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        env["gpu"] = f"nvidia-smi unavailable: {exc}"
    for library in ("libnvcuvid.so.1", "libnvidia-encode.so.1", "libcuda.so.1"):
        try:
            ctypes.CDLL(library)
            env[library] = True
        except OSError:
            env[library] = False
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = bool(torch.cuda.is_available())
        if env["cuda"]:
            env["cuda_device"] = torch.cuda.get_device_name(0)
    except ImportError:
        env["torch"] = None
        env["cuda"] = False
    RESULT["environment"] = env
    say(json.dumps(env, indent=2))


def import_av(bundle: Path) -> Any:
    try:
        import av

        return av
    except ImportError:
        pass
    wheels = sorted(bundle.glob("av-*.whl"))
    if not wheels:
        note("PyAV missing and no wheel in the bundle: decode tests skipped")
        return None
    target = Path("/tmp/vigie-gpu-av")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target",
                    str(target), str(wheels[0])], check=True, timeout=120)
    sys.path.insert(0, str(target))
    import av

    return av


# Sample streams ---------------------------------------------------------------------------------------------------

# name: (clip in the bundle, width, height, frames at most). Each source frame becomes one frame at 25 fps.
STREAMS = {
    "vtest-1080p25.h264": ("vtest.avi", 1920, 1080, 250),
    "vtest-sub.h264": ("vtest.avi", 384, 288, 800),
    "bikes-main.h264": ("bikes.mp4", 640, 272, 250),
}


def make_streams(av: Any, bundle: Path, folder: Path) -> Path:
    """The H.264 sample streams (Annex B), encoded here from the bundle's clips with libx264 (veryfast, a key frame
    a second, no B-frames, as cameras send), so that the bundle carries each clip once."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (clip, width, height, limit) in STREAMS.items():
        target = folder / name
        if target.is_file():
            continue
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.framerate, codec.time_base = Fraction(25), Fraction(1, 25)
        codec.options = {"preset": "veryfast", "x264-params": "keyint=25:min-keyint=25:scenecut=0:bframes=0"}
        partial = target.with_suffix(".partial")
        with av.open(str(bundle / clip)) as container, partial.open("wb") as out:
            for index, frame in enumerate(container.decode(video=0)):
                if index >= limit:
                    break
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts = index
                for packet in codec.encode(scaled):
                    out.write(bytes(packet))
            for packet in codec.encode(None):
                out.write(bytes(packet))
        partial.rename(target)
    say("streams: " + ", ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MiB" for p in sorted(folder.iterdir())))
    return folder


# Decode -------------------------------------------------------------------------------------------------------

def decode_loop(av: Any, path: Path, seconds: float, hw: bool, counter: list[int], errors: list[str]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            options: dict[str, Any] = {}
            if hw:
                from av.codec.hwaccel import HWAccel

                options["hwaccel"] = HWAccel(device_type="cuda", allow_software_fallback=False)
            with av.open(str(path), format="h264", **options) as container:
                for _ in container.decode(video=0):
                    counter[0] += 1
                    if time.monotonic() >= deadline:
                        return
        except Exception as exc:  # any decoder failure is reported, the other threads go on
            errors.append(f"{type(exc).__name__}: {exc}")
            return


def decode_rate(av: Any, path: Path, sessions: int, seconds: float, hw: bool) -> tuple[float, list[str]]:
    counters = [[0] for _ in range(sessions)]
    errors: list[str] = []
    threads = [threading.Thread(target=decode_loop, args=(av, path, seconds, hw, c, errors), daemon=True)
               for c in counters]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.monotonic() - started
    return sum(c[0] for c in counters) / elapsed, errors


def decode_tests(av: Any, media: Path) -> None:
    streams = [("1080p", media / "vtest-1080p25.h264"), ("640x272", media / "bikes-main.h264"),
               ("384x288", media / "vtest-sub.h264")]
    results: dict[str, Any] = {}
    for label, path in streams:
        entry: dict[str, Any] = {}
        cpu_fps, _ = decode_rate(av, path, 1, 3.0, hw=False)
        entry["cpu_1_session_fps"] = round(cpu_fps, 1)
        hw_ok = bool(RESULT["environment"].get("libnvcuvid.so.1"))
        for sessions in (1, 16, 64) if hw_ok else ():
            fps, errors = decode_rate(av, path, sessions, 6.0, hw=True)
            entry[f"nvdec_{sessions}_sessions_fps"] = round(fps, 1)
            if errors:
                entry[f"nvdec_{sessions}_errors"] = sorted(set(errors))[:3]
                if fps == 0:
                    break
        if not hw_ok:
            note("libnvcuvid.so.1 not loadable: no NVDEC in this container, CPU decode only")
        cpu_all, _ = decode_rate(av, path, os.cpu_count() or 1, 4.0, hw=False)
        entry["cpu_sessions_per_core_fps"] = round(cpu_all, 1)
        best = max(v for k, v in entry.items() if k.endswith("_fps"))
        entry["streams_at_5fps"] = int(best // 5)
        entry["streams_at_25fps"] = int(best // 25)
        results[label] = entry
        RESULT["decode"] = results  # kept stream by stream: the 64-session runs are long
        say(f"decode {label}: {json.dumps(entry)}")


# Inference ------------------------------------------------------------------------------------------------

class TorchSsd:
    """Executes the exported op list (Conv, Clip, Add, Concat, Reshape, Transpose) with PyTorch."""

    def __init__(self, bundle: Path, device: str, dtype: Any) -> None:
        import torch

        self.torch = torch
        graph = json.loads((bundle / "ssd_graph.json").read_text())
        packed = np.load(bundle / "ssd_weights.npz")
        names = [str(n) for n in packed["names"]]
        self.tensors: dict[str, Any] = {}
        self.shapes: dict[str, list[int]] = {}
        self.scalars: dict[str, float] = {}
        for index, name in enumerate(names):
            array = packed[f"w{index}"]
            if array.dtype.kind in "iu":
                self.shapes[name] = [int(v) for v in array.reshape(-1)]
            elif array.size == 1:
                # Clip bounds as Python floats: reading a GPU scalar in every forward would synchronise the device.
                self.scalars[name] = float(array.reshape(-1)[0])
            else:
                tensor = torch.from_numpy(array.astype(np.float32)).to(device=device, dtype=dtype)
                self.tensors[name] = tensor.contiguous(memory_format=torch.channels_last) if tensor.dim() == 4 \
                    else tensor
        self.nodes = graph["nodes"]
        self.input = graph["input"]
        self.outputs = graph["outputs"]

    def __call__(self, batch: Any) -> list[Any]:
        torch = self.torch
        functional = torch.nn.functional
        values = dict(self.tensors)
        values[self.input] = batch.contiguous(memory_format=torch.channels_last)
        for node in self.nodes:
            op, ins, attrs = node["op"], node["inputs"], node["attrs"]
            if op == "Conv":
                x = values[ins[0]]
                top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
                if (top, left) != (bottom, right):
                    x = functional.pad(x, (left, right, top, bottom))
                    padding: Any = 0
                else:
                    padding = (top, left)
                out = functional.conv2d(x, values[ins[1]], values[ins[2]] if len(ins) > 2 else None,
                                        stride=attrs["strides"], padding=padding, dilation=attrs["dilations"],
                                        groups=attrs["group"])
            elif op == "Clip":
                low = self.scalars.get(ins[1]) if len(ins) > 1 else None
                high = self.scalars.get(ins[2]) if len(ins) > 2 else None
                out = torch.clamp(values[ins[0]], low, high)
            elif op == "Add":
                out = values[ins[0]] + values[ins[1]]
            elif op == "Concat":
                out = torch.cat([values[i] for i in ins], dim=attrs["axis"])
            elif op == "Transpose":
                out = values[ins[0]].permute(*attrs["perm"])
            elif op == "Reshape":
                x = values[ins[0]]
                shape = [x.shape[i] if v == 0 else v for i, v in enumerate(self.shapes[ins[1]])]
                out = x.reshape(shape)
            else:
                raise NotImplementedError(op)
            values[node["outputs"][0]] = out
        return [values[name] for name in self.outputs]


def inference_tests(bundle: Path) -> dict[str, Any] | None:
    """The op list on CUDA in fp32 and fp16 against onnxruntime's outputs, and its rate per batch size; the two
    models (fp16 weights both: the fp32 one computes in fp32 on them)."""
    if not RESULT["environment"].get("cuda"):
        note("PyTorch with CUDA unavailable: GPU inference skipped")
        return None
    import torch

    torch.backends.cudnn.benchmark = True
    reference = np.load(bundle / "reference.npz")
    frames = reference["frames"]
    batch = torch.from_numpy(frames.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()
    results: dict[str, Any] = {}
    models = {}
    for label, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        model = TorchSsd(bundle, "cuda", dtype)
        models[label] = model
        with torch.inference_mode():
            boxes, logits = model(batch.to("cuda", dtype))
        results[f"{label}_max_abs_diff_logits"] = float(np.abs(logits.float().cpu().numpy()
                                                                 - reference["logits"]).max())
        results[f"{label}_max_abs_diff_boxes"] = float(np.abs(boxes.float().cpu().numpy()
                                                                - reference["boxes"]).max())
    for label in ("fp16", "fp32"):
        model = models[label]
        dtype = torch.float16 if label == "fp16" else torch.float32
        for size in (1, 32, 128, 512) if label == "fp16" else (128,):
            data = batch[torch.arange(size) % batch.shape[0]].to("cuda", dtype)
            with torch.inference_mode():
                for _ in range(3):
                    model(data)
                torch.cuda.synchronize()
                runs, started = 0, time.perf_counter()
                while time.perf_counter() - started < 3.0:
                    model(data)
                    runs += 1
                torch.cuda.synchronize()
            fps = runs * size / (time.perf_counter() - started)
            results[f"{label}_batch{size}_images_per_s"] = round(fps, 1)
    best = max(v for k, v in results.items() if k.endswith("images_per_s"))
    results["streams_at_5fps"] = int(best // 5)
    results["streams_at_25fps"] = int(best // 25)
    RESULT["inference"] = results
    say(f"inference: {json.dumps(results, indent=2)}")
    return models


# Decode + inference together ------------------------------------------------------------------------------

class NewestFrames:
    """`streams` decoders of one file (NVDEC when libnvcuvid is there), each looping over it as fast as it goes and
    keeping only its newest frame, as `convert` makes it, in its slot; a reader that fails stops and says why."""

    def __init__(self, av: Any, path: Path, streams: int, convert: Any) -> None:
        self.slots: list[Any] = [None] * streams
        self.decoded = [0] * streams
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors: list[str] = []
        self._av, self._path, self._convert = av, path, convert
        self.hardware = bool(RESULT["environment"].get("libnvcuvid.so.1"))
        self._threads = [threading.Thread(target=self._read, args=(i,), daemon=True) for i in range(streams)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(5)

    def _read(self, index: int) -> None:
        while not self.stop.is_set():
            try:
                options: dict[str, Any] = {}
                if self.hardware:
                    from av.codec.hwaccel import HWAccel

                    options["hwaccel"] = HWAccel(device_type="cuda", allow_software_fallback=False)
                with self._av.open(str(self._path), format="h264", **options) as container:
                    for frame in container.decode(video=0):
                        if self.stop.is_set():
                            return
                        converted = self._convert(frame)
                        with self.lock:
                            self.slots[index] = converted
                            self.decoded[index] += 1
            except Exception as exc:  # reported; this reader stops, the others go on
                self.errors.append(f"{type(exc).__name__}: {exc}")
                return


def pipeline_test(av: Any, media: Path, model: Any, streams: int, seconds: float) -> None:
    """`streams` NVDEC decoders (384x288 sub streams, as fast as they go) each keep only their newest frame,
    scaled to 300x300 on the GPU; the main thread batches all ready frames into one fp16 inference."""
    import torch

    path = media / "vtest-sub.h264"
    readers = NewestFrames(av, path, streams, lambda frame: frame.to_ndarray(format="rgb24"))
    slots, decoded, lock, errors = readers.slots, readers.decoded, readers.lock, readers.errors
    readers.start()
    # One fixed batch shape (padded): with cudnn.benchmark, every new shape would be re-tuned for seconds.
    padding = np.zeros((288, 384, 3), dtype=np.uint8)
    with torch.inference_mode():
        model(torch.zeros((streams, 3, 300, 300), device="cuda", dtype=torch.float16))
        torch.cuda.synchronize()
    time.sleep(1.0)
    processed = batches = 0
    started = time.perf_counter()
    with torch.inference_mode():
        while time.perf_counter() - started < seconds:
            with lock:
                ready = [s for s in slots if s is not None]
                for i in range(streams):
                    slots[i] = None
            if not ready:
                time.sleep(0.001)
                continue
            frames = ready + [padding] * (streams - len(ready))
            tensor = torch.from_numpy(np.stack(frames)).to("cuda", non_blocking=True)
            tensor = tensor.permute(0, 3, 1, 2).half()
            tensor = torch.nn.functional.interpolate(tensor, size=(300, 300), mode="bilinear",
                                                     align_corners=False) / 127.5 - 1.0
            _, logits = model(tensor)
            scores, _ = torch.sigmoid(logits[..., 1:]).max(dim=-1)
            (scores > 0.4).sum().item()  # the decision a detector makes per frame, brought back to the host
            processed += len(ready)
            batches += 1
    elapsed = time.perf_counter() - started
    readers.finish()
    fps = processed / elapsed
    entry = {"streams": streams, "processed_fps": round(fps, 1), "mean_batch": round(processed / max(batches, 1), 1),
             "decoded_fps": round(sum(decoded) / (elapsed + 1.0), 1), "nvdec": readers.hardware,
             "streams_at_5fps": int(fps // 5), "streams_at_25fps": int(fps // 25)}
    if errors:
        entry["errors"] = sorted(set(errors))[:3]
    RESULT.setdefault("pipeline", []).append(entry)
    say(f"pipeline: {json.dumps(entry)}")


# Full pipeline at 1080p ------------------------------------------------------------------------------------------

def torch_backend() -> ArrayBackend:
    import torch

    return ArrayBackend(torch, lambda values, index, axis: torch.take_along_dim(values, index, dim=axis))


def load_settings(bundle: Path) -> dict[str, Any]:
    settings: dict[str, Any] = json.loads((bundle / "pipeline.json").read_text())
    return settings


def detect_on(encodings: Any, logits: Any, anchors: Any, backend: ArrayBackend, settings: dict[str, Any]) -> Any:
    return detect(encodings, logits, anchors, backend, box_scales=settings["box_scales"],
                  score_threshold=settings["score_threshold"], iou_threshold=settings["iou_threshold"],
                  candidates=CANDIDATES)


class GpuLetterbox:
    """NV12 frames already on the GPU ([B, H*3/2, W] uint8) → the model's fp16 input, letterboxed as the portable
    backend does. Luma and chroma are resized to the content size before the colour conversion: both steps are
    linear (up to the final clipping), and converting 75 000 pixels a frame is cheaper than 2 million."""

    def __init__(self, batch: int, width: int, height: int, settings: dict[str, Any]) -> None:
        import torch

        self.torch = torch
        self.width, self.height = width, height
        size = settings["input_size"]
        self.content = content_size(width, height, settings["max_stretch"], size)
        # Black padding: RGB 0, which the normalisation x / 127.5 - 1 maps to -1.
        self.model_input = torch.full((batch, 3, size, size), -1.0, dtype=torch.float16, device="cuda")
        self.mode = "bilinear, antialiased"
        try:
            self.resize(torch.zeros((1, 1, height, width), device="cuda"))
        except (RuntimeError, TypeError, NotImplementedError):  # an older PyTorch without antialiasing
            self.mode = "area"

    def resize(self, planes: Any) -> Any:
        content_width, content_height = self.content
        if self.mode == "area":
            return self.torch.nn.functional.interpolate(planes, size=(content_height, content_width), mode="area")
        return self.torch.nn.functional.interpolate(planes, size=(content_height, content_width), mode="bilinear",
                                                    align_corners=False, antialias=True)

    def __call__(self, frames: Any) -> Any:
        count = frames.shape[0]
        luma = self.resize(frames[:, :self.height].unsqueeze(1).float())
        chroma = frames[:, self.height:].reshape(count, self.height // 2, self.width // 2, 2)
        chroma = self.resize(chroma.permute(0, 3, 1, 2).float())
        rgb = yuv_to_rgb(luma[:, 0], chroma[:, 0], chroma[:, 1], torch_backend())
        content_width, content_height = self.content
        self.model_input[:count, :, :content_height, :content_width] = (rgb / 127.5 - 1.0).half()
        return self.model_input[:count]


def postprocess_check(av: Any, bundle: Path, media: Path, model: Any) -> None:
    """The GPU's decode + NMS against the same code on numpy, and its letterboxed input against PyAV's."""
    import torch

    settings = load_settings(bundle)
    anchors = np.load(bundle / "anchors.npy")
    reference = np.load(bundle / "reference.npz")
    frames = reference["frames"]
    batch = torch.from_numpy(frames.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2).to("cuda", torch.float16)
    with torch.inference_mode():
        encodings, logits = (output.float() for output in model(batch))
        on_gpu = detect_on(encodings, logits, torch.from_numpy(anchors).to("cuda"), torch_backend(), settings)
    on_host = detect_on(encodings.cpu().numpy(), logits.cpu().numpy(), anchors, NUMPY, settings)
    onnx = detect_on(reference["boxes"], reference["logits"], anchors, NUMPY, settings)
    kept_gpu = on_gpu.kept.cpu().numpy()
    both = kept_gpu & on_host.kept
    results: dict[str, Any] = {
        "gpu_matches_numpy": bool((kept_gpu == on_host.kept).all()),
        "max_box_diff": float(np.abs(on_gpu.boxes.cpu().numpy()[both] - on_host.boxes[both]).max(initial=0.0)),
        "detections_fp16": [int(n) for n in kept_gpu.sum(-1)],
        "detections_onnxruntime": [int(n) for n in onnx.kept.sum(-1)],
    }
    with av.open(str(media / "vtest-1080p25.h264"), format="h264") as container:
        frame = next(iter(container.decode(video=0)))
    letterbox = GpuLetterbox(1, frame.width, frame.height, settings)
    with torch.inference_mode():
        ours = letterbox(torch.from_numpy(nv12(frame))[None].to("cuda"))
    ours_rgb = ((ours[0].float() + 1.0) * 127.5).permute(1, 2, 0).cpu().numpy()
    content_width, content_height = letterbox.content
    portable = np.zeros_like(ours_rgb)
    portable[:content_height, :content_width] = frame.to_ndarray(width=content_width, height=content_height,
                                                                 format="rgb24")
    difference = np.abs(ours_rgb - portable)
    results["letterbox_mean_abs_diff"] = round(float(difference.mean()), 2)
    results["letterbox_max_abs_diff"] = round(float(difference.max()), 1)
    results["content"] = list(letterbox.content)
    if list(letterbox.content) != settings["content_1920x1080"]:
        note(f"content size {letterbox.content} differs from the project's {settings['content_1920x1080']}")
    RESULT["postprocess_check"] = results
    say(f"postprocess check: {json.dumps(results)}")


class GpuStages:
    """A batch of NV12 frames in `frames` (on the GPU) through the letterbox, one fp16 inference, box decoding and
    NMS, each stage timed with the GPU synchronised after it; one fixed batch shape (cudnn.benchmark tunes it once)."""

    def __init__(self, bundle: Path, model: Any, streams: int, width: int, height: int) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.settings = load_settings(bundle)
        self.frames = torch.zeros((streams, height * 3 // 2, width), dtype=torch.uint8, device="cuda")
        self.letterbox = GpuLetterbox(streams, width, height, self.settings)
        self.anchors = torch.from_numpy(np.load(bundle / "anchors.npy")).to("cuda")
        self.backend = torch_backend()
        self.stages = dict.fromkeys(("upload_resize", "inference", "decode_nms"), 0.0)
        with torch.inference_mode():
            for _ in range(2):
                encodings, logits = (output.float() for output in model(self.letterbox(self.frames)))
                detect_on(encodings, logits, self.anchors, self.backend, self.settings).kept.sum(-1).cpu()
        torch.cuda.synchronize()

    def run(self, upload_started: float) -> None:
        """The batch through the GPU; its upload began at `upload_started` (counted with the resize)."""
        torch = self.torch
        batch = self.letterbox(self.frames)
        torch.cuda.synchronize()
        now = time.perf_counter()
        self.stages["upload_resize"] += now - upload_started
        mark = now
        encodings, logits = self.model(batch)
        torch.cuda.synchronize()
        now = time.perf_counter()
        self.stages["inference"] += now - mark
        mark = now
        found = detect_on(encodings.float(), logits.float(), self.anchors, self.backend, self.settings)
        found.kept.sum(-1).cpu()  # detections per frame: what the host acts on
        self.stages["decode_nms"] += time.perf_counter() - mark


def full_pipeline_test(av: Any, bundle: Path, media: Path, model: Any, streams: int, seconds: float) -> None:
    """`streams` decoders of the 1080p25 stream, in processes of their own (frame_pool), each keeping its newest
    frame in shared memory; the main thread copies all new frames to the GPU and runs them through GpuStages."""
    import torch

    path = media / "vtest-1080p25.h264"
    with av.open(str(path), format="h264") as container:
        first = next(iter(container.decode(video=0)))
    width, height = first.width, first.height
    hardware = bool(RESULT["environment"].get("libnvcuvid.so.1"))
    # Two cores left to this process: the batches, and CUDA's own threads.
    processes = max(1, (os.cpu_count() or 4) - 2)
    readers = SharedNewestFrames(path, streams, processes, width, height, hardware=hardware)
    pinned = False
    try:
        try:
            # The shared block made page-locked, so each copy to the GPU runs at full speed (when CUDA allows it).
            result = torch.cuda.cudart().cudaHostRegister(readers.frames.ctypes.data, readers.frames.nbytes, 0)
            pinned = int(result) == 0
            if not pinned:
                note(f"shared frames not page-locked: cudaHostRegister returned {result}")
        except (AttributeError, RuntimeError, TypeError) as exc:
            note(f"shared frames not page-locked: {exc!r}")
        # Slots without a new frame keep their last one in the batch, computed and not counted.
        gpu = GpuStages(bundle, model, streams, width, height)
        readers.start()
        ready_in_time = readers.wait_for_frames(60.0)
        waited = 0.0
        processed = batches = 0
        decoded_before = readers.decoded()
        started = time.perf_counter()

        def upload(slot: int, planes: np.ndarray) -> None:
            gpu.frames[slot].copy_(torch.from_numpy(planes))

        with torch.inference_mode():
            while ready_in_time and time.perf_counter() - started < seconds:
                mark = time.perf_counter()
                while True:
                    ready = readers.take_new(upload)  # waits and copies together: counted with the resize
                    if ready or time.perf_counter() - started >= seconds:
                        break
                    time.sleep(0.0005)
                if not ready:
                    waited += time.perf_counter() - mark
                    break
                gpu.run(mark)
                processed += len(ready)
                batches += 1
        elapsed = time.perf_counter() - started
        decoded = readers.decoded() - decoded_before
    finally:
        if pinned:
            torch.cuda.cudart().cudaHostUnregister(readers.frames.ctypes.data)
        errors = readers.finish()
    entry = pipeline_entry(streams, processed, batches, elapsed, decoded, {"decode_wait": waited, **gpu.stages})
    entry.update({"content": list(gpu.letterbox.content), "resize": gpu.letterbox.mode, "nvdec": hardware,
                  "decoder_processes": processes, "page_locked": pinned, "torn_copies": readers.torn,
                  "all_streams_started": ready_in_time})
    if errors:
        entry["errors"] = sorted(set(errors))[:3]
    RESULT.setdefault("pipeline_1080p", []).append(entry)
    say(f"pipeline 1080p: {json.dumps(entry)}")


def gpu_stage_test(av: Any, bundle: Path, media: Path, model: Any, streams: int, seconds: float,
                   on_gpu: bool) -> None:
    """The 1080p pipeline's GPU side alone, decode set aside: `streams` new frames a batch, taken from 50 decoded
    frames kept in host memory (copied to the GPU plane by plane, as from a CPU decoder) or, with `on_gpu`, kept on
    the GPU already (as NVDEC leaves them to a GPU pipeline), then GpuStages."""
    import torch

    with av.open(str(media / "vtest-1080p25.h264"), format="h264") as container:
        decoded = [nv12(frame) for _, frame in zip(range(50), container.decode(video=0), strict=False)]
    height, width = decoded[0].shape[0] * 2 // 3, decoded[0].shape[1]
    pool_host = torch.from_numpy(np.stack(decoded)).pin_memory()
    source = pool_host.to("cuda") if on_gpu else pool_host
    gpu = GpuStages(bundle, model, streams, width, height)
    processed = batches = 0
    with torch.inference_mode():
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            mark = time.perf_counter()
            for slot in range(streams):
                gpu.frames[slot].copy_(source[(batches * streams + slot) % len(decoded)], non_blocking=True)
            gpu.run(mark)
            processed += streams
            batches += 1
        elapsed = time.perf_counter() - started
    entry = pipeline_entry(streams, processed, batches, elapsed, 0, gpu.stages)
    entry.pop("decoded_fps")
    entry["frames_from"] = "gpu memory" if on_gpu else "host memory (pinned)"
    entry["content"] = list(gpu.letterbox.content)
    RESULT.setdefault("gpu_stages_1080p", []).append(entry)
    say(f"GPU stages at 1080p: {json.dumps(entry)}")


def first_frames(frames: Any, limit: int = 100) -> dict[str, Any]:
    """Up to `limit` frames drawn from the iterator `frames`: their count, format and rate, or the error."""
    try:
        started = time.perf_counter()
        count, form = 0, None
        for frame in frames:
            count, form = count + 1, frame.format.name
            if count >= limit:
                break
        return {"frames": count, "format": form, "fps": round(count / (time.perf_counter() - started), 1)}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def nvdec_probe(av: Any, media: Path) -> None:
    """Why NVDEC does or does not decode here: PyAV's CUDA hardware acceleration three ways, and the h264_cuvid
    decoder, on the first 100 frames of each stream; per try the frames, their format and rate, or the error."""
    from av.codec.hwaccel import HWAccel

    def accelerated(path: Path, options: dict[str, bool]) -> Any:
        with av.open(str(path), format="h264", hwaccel=HWAccel(device_type="cuda", **options)) as container:
            yield from container.decode(video=0)

    def cuvid(path: Path) -> Any:
        decoder = av.CodecContext.create("h264_cuvid", "r")
        with av.open(str(path), format="h264") as container:
            for packet in container.demux(video=0):
                yield from decoder.decode(packet)

    tries: dict[str, Any] = {}
    for name in ("vtest-1080p25.h264", "vtest-sub.h264"):
        for label, options in (("hwaccel", {"allow_software_fallback": False}),
                               ("hwaccel_hw_owned", {"allow_software_fallback": False, "is_hw_owned": True}),
                               ("hwaccel_fallback", {"allow_software_fallback": True})):
            tries[f"{name}:{label}"] = first_frames(accelerated(media / name, options))
        tries[f"{name}:h264_cuvid"] = first_frames(cuvid(media / name))
    RESULT["nvdec_probe"] = tries
    say(f"NVDEC probe: {json.dumps(tries, indent=2)}")


# The same detections on GPU and CPU --------------------------------------------------------------------------------

AGREEMENT_BATCH = 64


def agreement(av: Any, bundle: Path, models: dict[str, Any], out: Path) -> None:
    """The annotated clips' detector inputs, made here as the rules bench makes them, through the model on the GPU
    three ways: fp16 and fp32 on the same inputs as the portable backend's, and fp16 on the GPU's own letterbox of
    the NV12 picture (the path a GPU node takes). Each frame's outputs at the anchors that can become detections,
    and each input's SHA-1, go to OUT/gpu-outputs.npz; `python -m bench.gpu.agreement` replays them through the
    rules next to the portable backend's own and compares alerts."""
    import hashlib

    import torch

    spec = json.loads((bundle / "clips.json").read_text())
    settings = load_settings(bundle)
    size, stretch = settings["input_size"], settings["max_stretch"]
    arrays: dict[str, np.ndarray] = {"min_score": np.asarray(spec["min_score"])}
    summary: dict[str, Any] = {"min_score": spec["min_score"], "clips": {}}
    for name, file in spec["clips"].items():
        pictures = replay_pictures(av, bundle / file, spec["detect_fps"], spec["sub_width"])
        inputs = np.stack([replay_input(av, picture, stretch, size) for picture in pictures])
        arrays[f"{name}__sha1"] = np.asarray([hashlib.sha1(i.tobytes()).hexdigest() for i in inputs])
        width, height = pictures[0].width, pictures[0].height
        letterbox = GpuLetterbox(AGREEMENT_BATCH, width, height, settings)
        outputs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"fp16": [], "fp32": [], "fp16_gpu_letterbox": []}
        with torch.inference_mode():
            for start in range(0, len(pictures), AGREEMENT_BATCH):
                chunk = torch.from_numpy(inputs[start:start + AGREEMENT_BATCH]).to("cuda")
                # The portable backend's normalisation (inference.ssd.preprocess), in fp32 before any cast.
                normalised = chunk.permute(0, 3, 1, 2).float() * np.float32(1.0 / 127.5) - 1.0
                for label, dtype in (("fp16", torch.float16), ("fp32", torch.float32)):
                    encodings, logits = models[label](normalised.to(dtype))
                    outputs[label].append((encodings.float().cpu().numpy(), logits.float().cpu().numpy()))
                planes = np.stack([nv12(p) for p in pictures[start:start + AGREEMENT_BATCH]])
                encodings, logits = models["fp16"](letterbox(torch.from_numpy(planes).to("cuda")))
                outputs["fp16_gpu_letterbox"].append((encodings.float().cpu().numpy(), logits.float().cpu().numpy()))
        counts = {}
        for label, parts in outputs.items():
            sparse = sparse_outputs(np.concatenate([e for e, _ in parts]), np.concatenate([lg for _, lg in parts]),
                                    spec["min_score"])
            arrays.update(sparse.arrays(f"{name}__{label}"))
            counts[label] = int(sparse.anchor_ids.size)
        summary["clips"][name] = {"frames": len(pictures), "size": [width, height],
                                  "gpu_letterbox_content": list(letterbox.content), "anchors_kept": counts}
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "gpu-outputs.npz", **arrays)
    summary["file"] = "gpu-outputs.npz"
    RESULT["agreement"] = summary
    say(f"agreement: {json.dumps(summary)}")


# Masked re-encode on NVENC ------------------------------------------------------------------------------------

def run_side_by_side(commands: list[list[str]], timeout_s: float) -> tuple[list[float], list[float], list[str]]:
    """Starts every command at once; each one's wall time and CPU seconds (wait4), and the errors of those that
    failed or ran past `timeout_s`."""
    walls: list[float] = [0.0] * len(commands)
    cpu: list[float] = [0.0] * len(commands)
    errors: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        pending: dict[int, tuple[int, float, Path]] = {}
        # Held until reaped: a dropped Popen is polled by the next Popen's clean-up, which could reap it first.
        processes = []
        for index, command in enumerate(commands):
            log = Path(scratch) / f"{index}.log"
            with log.open("wb") as stderr:
                processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr))
            pending[processes[-1].pid] = (index, time.monotonic(), log)
        deadline = time.monotonic() + timeout_s
        while pending:
            for pid in list(pending):
                flags = os.WNOHANG if time.monotonic() < deadline else 0
                if not flags:
                    os.kill(pid, 9)
                reaped, status, usage = os.wait4(pid, flags)
                if not reaped:
                    continue
                index, began, log = pending.pop(pid)
                processes[index].returncode = os.waitstatus_to_exitcode(status)
                walls[index] = time.monotonic() - began
                cpu[index] = usage.ru_utime + usage.ru_stime
                code = processes[index].returncode
                if code:
                    tail = log.read_text(errors="replace").strip().splitlines()[-2:]
                    errors.append(f"exit {code}: {' / '.join(tail)}")
            time.sleep(0.01)
    return walls, cpu, errors


def nvenc_tests(bundle: Path, media: Path, quick: bool) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        note("no ffmpeg on this machine: masked NVENC re-encode skipped")
        return
    listed = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60,
                            check=False).stdout
    if "h264_nvenc" not in listed:
        note("ffmpeg lists no h264_nvenc encoder: masked NVENC re-encode skipped")
        return
    hwaccels = subprocess.run([ffmpeg, "-hide_banner", "-hwaccels"], capture_output=True, text=True, timeout=60,
                              check=False).stdout.split()
    masks = json.loads((bundle / "masks.json").read_text())
    source = media / "vtest-1080p25.h264"
    frames = 125 if quick else MASKED_FRAMES

    def commands(count: int, cuda_decode: bool) -> list[list[str]]:
        command = masked_encode_command(ffmpeg, source, masks["cover_filter"], masks["nvenc_options"], frames,
                                        cuda_decode=cuda_decode)
        return [command] * count

    cuda_decode = "cuda" in hwaccels
    walls, cpu, errors = run_side_by_side(commands(1, cuda_decode), 120)
    if errors and cuda_decode:
        note(f"masked NVENC with -hwaccel cuda failed ({errors[0]}): decoding on the CPU instead")
        cuda_decode = False
        walls, cpu, errors = run_side_by_side(commands(1, cuda_decode), 120)
    if errors:
        # NVIDIA's compute chips may have no NVENC engine (the A100 has none; likely the H100/H200 too).
        note(f"masked NVENC re-encode failed, skipped: {errors[0]}")
        RESULT["masked_nvenc"] = {"errors": errors}
        return
    results: dict[str, Any] = {"cuda_decode": cuda_decode, "frames_per_process": frames,
                               "probe": nvenc_entry(1, frames, walls, cpu), "runs": []}
    say(f"masked NVENC, one process: {json.dumps(results['probe'])}")
    for count in (8,) if quick else (8, 16, 32):
        walls, cpu, errors = run_side_by_side(commands(count, cuda_decode), 300)
        if errors:
            results["runs"].append({"processes": count, "errors": sorted(set(errors))[:3]})
            break
        entry = nvenc_entry(count, frames, walls, cpu)
        results["runs"].append(entry)
        say(f"masked NVENC: {json.dumps(entry)}")
        if entry["realtime_share_min"] < 1:
            break
    RESULT["masked_nvenc"] = results


def save(out: Path) -> None:
    """gpu.json as it stands: written after each part, so a run stopped at its time limit keeps what it measured."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(RESULT, indent=2) + "\n")


def part(name: str, out: Path, action: Any, *args: Any) -> Any:
    """Runs one part; a failure is noted and the next part goes on (each is worth measuring alone)."""
    say(f"== {name}")
    try:
        return action(*args)
    except Exception as exc:
        note(f"{name} failed: {exc!r}")
        return None
    finally:
        save(out)


PARTS = ("agreement", "decode", "nvdec-probe", "sub-pipeline", "pipeline-1080p", "gpu-stages-1080p", "nvenc")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, default=ROOT / "var" / "gpu-bundle")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "bench" / "results")))
    parser.add_argument("--media", type=Path, default=Path(tempfile.gettempdir()) / "vigie-gpu-streams",
                        help="where the sample streams are encoded (kept between runs)")
    parser.add_argument("--quick", action="store_true", help="shorter runs (smoke test)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS),
                        help="these parts only (the environment, streams and models always)")
    args = parser.parse_args()
    wanted = set(args.only)
    started = time.monotonic()
    out, bundle, media = args.out, args.bundle, args.media
    part("environment", out, environment)
    av = import_av(bundle)
    if av is not None:
        RESULT["environment"]["av"] = av.__version__
        if part("sample streams", out, make_streams, av, bundle, media) is None:
            av = None  # every later part reads the streams
    models = part("inference", out, inference_tests, bundle)
    gpu_and_av = models is not None and av is not None
    seconds = 3.0 if args.quick else 10.0
    counts = (8,) if args.quick else (32, 128)
    if gpu_and_av and "agreement" in wanted:
        # First what only a GPU can tell (its detections against the CPU's), then the rates.
        part("postprocess check", out, postprocess_check, av, bundle, media, models["fp16"])
        part("agreement with the portable backend", out, agreement, av, bundle, models, out)
    if av is not None and "decode" in wanted:
        part("decode", out, decode_tests, av, media)
    if av is not None and "nvdec-probe" in wanted:
        part("NVDEC probe", out, nvdec_probe, av, media)
    if gpu_and_av and "gpu-stages-1080p" in wanted:
        for streams in counts:
            for on_gpu in (False, True):
                part(f"GPU stages at 1080p, {streams} frames a batch", out, gpu_stage_test, av, bundle, media,
                     models["fp16"], streams, seconds, on_gpu)
    if gpu_and_av and "sub-pipeline" in wanted:
        for streams in counts:
            part(f"decode + inference, {streams} sub streams", out, pipeline_test, av, media, models["fp16"],
                 streams, seconds)
    if gpu_and_av and "pipeline-1080p" in wanted:
        for streams in counts:
            part(f"full pipeline at 1080p, {streams} streams", out, full_pipeline_test, av, bundle, media,
                 models["fp16"], streams, seconds)
    if "nvenc" in wanted:
        part("masked re-encode on NVENC", out, nvenc_tests, bundle, media, args.quick)
    RESULT["wall_s"] = round(time.monotonic() - started, 1)
    RESULT["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    save(out)
    say("== summary")
    summary = ("decode", "nvdec_probe", "inference", "pipeline", "postprocess_check", "agreement", "gpu_stages_1080p",
               "pipeline_1080p", "masked_nvenc", "notes", "wall_s")
    say(json.dumps({k: RESULT.get(k) for k in summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
