"""GPU capacity check for one NVIDIA H100/H200 (no network): NVDEC decode of many copies of the sample streams,
batched CUDA inference of the detector, and the two together; prints streams sustained at 5 fps and 25 fps.

Self-contained: needs only Python ≥ 3.11, numpy and PyTorch with CUDA on the machine, plus the bundle made by
`python -m bench.gpu.prepare` (var/gpu-bundle: model as op list + fp16 weights, reference outputs, H.264 streams,
the PyAV wheel). Each part falls back and says so when something is missing (no NVDEC, no CUDA, no PyAV).
Finishes in about 5 minutes. Usage: python bench/gpu/run.py [--bundle var/gpu-bundle] [--out DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
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


# Decode -------------------------------------------------------------------------------------------------------

def decode_loop(av: Any, path: Path, seconds: float, hw: bool, counter: list[int], errors: list[str]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            options: dict[str, Any] = {}
            if hw:
                from av.codec.hwaccel import HWAccel

                options["hwaccel"] = HWAccel(device_type="cuda", allow_software_fallback=False, is_hw_owned=True)
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


def decode_tests(av: Any, bundle: Path) -> None:
    streams = [("1080p", bundle / "vtest-1080p25.h264"), ("640x272", bundle / "bikes-main.h264"),
               ("384x288", bundle / "vtest-sub.h264")]
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
        say(f"decode {label}: {json.dumps(entry)}")
    RESULT["decode"] = results


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


def inference_tests(bundle: Path) -> Any:
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
    return models["fp16"]


# Decode + inference together ------------------------------------------------------------------------------

def pipeline_test(av: Any, bundle: Path, model: Any, streams: int, seconds: float) -> None:
    """`streams` NVDEC decoders (384x288 sub streams, as fast as they go) each keep only their newest frame,
    scaled to 300x300 on the GPU; the main thread batches all ready frames into one fp16 inference."""
    import torch

    path = bundle / "vtest-sub.h264"
    hw = bool(RESULT["environment"].get("libnvcuvid.so.1"))
    slots: list[Any] = [None] * streams
    decoded = [0] * streams
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def reader(index: int) -> None:
        while not stop.is_set():
            try:
                options: dict[str, Any] = {}
                if hw:
                    from av.codec.hwaccel import HWAccel

                    options["hwaccel"] = HWAccel(device_type="cuda", allow_software_fallback=False)
                with av.open(str(path), format="h264", **options) as container:
                    for frame in container.decode(video=0):
                        if stop.is_set():
                            return
                        rgb = frame.to_ndarray(format="rgb24")
                        with lock:
                            slots[index] = rgb
                            decoded[index] += 1
            except Exception as exc:  # reported; this reader stops, the others go on
                errors.append(f"{type(exc).__name__}: {exc}")
                return

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(streams)]
    for thread in threads:
        thread.start()
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
    stop.set()
    for thread in threads:
        thread.join(5)
    fps = processed / elapsed
    entry = {"streams": streams, "processed_fps": round(fps, 1), "mean_batch": round(processed / max(batches, 1), 1),
             "decoded_fps": round(sum(decoded) / (elapsed + 1.0), 1), "nvdec": hw,
             "streams_at_5fps": int(fps // 5), "streams_at_25fps": int(fps // 25)}
    if errors:
        entry["errors"] = sorted(set(errors))[:3]
    RESULT.setdefault("pipeline", []).append(entry)
    say(f"pipeline: {json.dumps(entry)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, default=ROOT / "var" / "gpu-bundle")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "bench" / "results")))
    parser.add_argument("--quick", action="store_true", help="shorter runs (smoke test)")
    parser.add_argument("--skip-decode", action="store_true", help="skip the decode-only measurements")
    args = parser.parse_args()
    started = time.monotonic()
    say("== environment")
    environment()
    av = import_av(args.bundle)
    if av is not None and not args.skip_decode:
        RESULT["environment"]["av"] = av.__version__
        say("== decode")
        try:
            decode_tests(av, args.bundle)
        except Exception as exc:  # keep going: the other parts are still worth measuring
            note(f"decode tests failed: {exc!r}")
    say("== inference")
    model = None
    try:
        model = inference_tests(args.bundle)
    except Exception as exc:
        note(f"inference tests failed: {exc!r}")
    if model is not None and av is not None:
        say("== decode + inference")
        for streams in (32, 128) if not args.quick else (8,):
            try:
                pipeline_test(av, args.bundle, model, streams, 10.0 if not args.quick else 3.0)
            except Exception as exc:
                note(f"pipeline with {streams} streams failed: {exc!r}")
    RESULT["wall_s"] = round(time.monotonic() - started, 1)
    RESULT["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(RESULT, indent=2) + "\n")
    say("== summary")
    say(json.dumps({k: RESULT.get(k) for k in ("decode", "inference", "pipeline", "notes", "wall_s")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
