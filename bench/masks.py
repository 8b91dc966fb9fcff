"""Privacy-mask benchmark: CPU of the recorder's masked re-encode vs its stream copy, same cameras, same run; leaks."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from bench.common import write_result
from camsim.footage import encoded_clip
from camsim.simulator import CameraSimulator, CameraSpec
from core.masks import GRID, cover_filter, mask_raster, mask_spans
from dvr.recorder import ffconcat_script, ffmpeg_command, mask_encoding
from dvr.settings import DvrSettings

ROOT = Path(__file__).resolve().parent
CACHE = ROOT.parent / "var" / "camsim"
FOOTAGE = "vtest-4mbps"  # 1080p, 25 fps, about 4 Mbit/s: a typical recorded main stream
FPS = 25
# A doorway and a window: about 14% of the picture.
MASKS = (((0.05, 0.10), (0.35, 0.05), (0.40, 0.55), (0.10, 0.60)), ((0.60, 0.15), (0.90, 0.20), (0.75, 0.45)))
LEAK_TOLERANCE = 16
CPU_BUDGET = 0.75 * 2  # cores: 75% of a 2-core box, as the DVR bench counts
GOAL_CAMERAS = 4
METHOD = (
    "Simulated 1080p25 cameras at about 4 Mbit/s (camsim, not counted). For every camera, the recorder's own ffmpeg "
    "command (dvr.recorder.ffmpeg_command, input through its ffconcat pipe, 10 s MP4 segments) runs twice at the "
    "same time: once as a plain stream copy, once with the camera's masks burnt in (libx264 at the recorder's "
    "preset, the camera's GOP, the default 4 Mbit/s). Each ffmpeg's CPU is read with wait4 over its whole life "
    "(start-up and drain included) and divided by the frames it wrote (counted in its segments), so an encoder "
    "that falls behind on a shared machine is not flattered. masked_cameras_per_2_cores = 75% of 2 cores / (CPU "
    "seconds per frame x 25 fps). mask_leak_pixels: pixels inside the masks further than 16 from black on any RGB "
    "channel, summed over every tenth frame of every masked segment. psnr_outside_mask_db: PSNR outside the masks "
    "of those frames against the camera's own frame (the simulator's clip frame that matches best), the minimum. "
    "stage_cpu_ms_per_frame: after the cameras, one single-threaded ffmpeg at a time over the clip's first 500 "
    "frames: decoding alone, with the cover (overlay, as recorded; drawbox, as before, the baseline), with the "
    "encoder and without the cover, and everything."
)


STAGE_FRAMES = 500


def drawbox_cover(polygons: tuple[tuple[tuple[float, float], ...], ...]) -> str:
    """The same cover painted by ffmpeg's drawbox, as the recorder did before: the baseline of the cover's cost."""
    boxes = []
    for x0, y0, x1, y1 in mask_spans(polygons):
        left, top = f"floor(iw*{x0:.6f}/{GRID})*{GRID}", f"floor(ih*{y0:.6f}/{GRID})*{GRID}"
        right, bottom = f"ceil(iw*{x1:.6f}/{GRID})*{GRID}", f"ceil(ih*{y1:.6f}/{GRID})*{GRID}"
        boxes.append(f"drawbox=x={left}:y={top}:w={right}-{left}:h={bottom}-{top}:color=black:t=fill")
    return ",".join(boxes)


def cpu_ms_per_frame(clip: Path, options: list[str]) -> float:
    """CPU milliseconds per frame of one single-threaded ffmpeg over the clip's first STAGE_FRAMES frames."""
    process = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-f", "h264", "-i", str(clip),
         "-frames:v", str(STAGE_FRAMES), "-filter_threads", "1", *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    if status:
        raise RuntimeError(f"ffmpeg {options} failed: {status}")
    return round((usage.ru_utime + usage.ru_stime) * 1000 / STAGE_FRAMES, 2)


def stage_costs(clip: Path, settings: DvrSettings) -> dict[str, float]:
    """Where a masked camera's CPU goes, each stage alone on the same frames, one after the other."""
    options = mask_encoding(settings, MASKS, None)
    encode = options[options.index("-c:v"):]  # the encoder's options, without the cover
    return {
        "decode": cpu_ms_per_frame(clip, ["-f", "null", "-"]),
        "decode_cover_overlay": cpu_ms_per_frame(clip, ["-vf", cover_filter(MASKS), "-f", "null", "-"]),
        "decode_cover_drawbox_baseline": cpu_ms_per_frame(clip, ["-vf", drawbox_cover(MASKS), "-f", "null", "-"]),
        "decode_encode_no_cover": cpu_ms_per_frame(clip, [*encode, "-f", "null", "-"]),
        "decode_cover_encode": cpu_ms_per_frame(clip, ["-vf", cover_filter(MASKS), *encode, "-f", "null", "-"]),
    }


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    out: Path
    cpu_s: float = 0.0


def start(settings: DvrSettings, url: str, out: Path, *, masked: bool) -> Run:
    out.mkdir(parents=True)
    reader, writer = os.pipe()
    os.write(writer, ffconcat_script(settings, url))
    os.close(writer)
    command = ffmpeg_command(settings, str(out / "seg_%06d.mp4"), input_fd=reader, masks=MASKS if masked else ())
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, pass_fds=(reader,))
    os.close(reader)
    return Run(process, out)


def stop(run: Run) -> None:
    run.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while True:
        pid, _status, usage = os.wait4(run.process.pid, os.WNOHANG)
        if pid:
            run.cpu_s = usage.ru_utime + usage.ru_stime
            run.process.returncode = 0
            return
        if time.monotonic() > deadline:
            run.process.kill()
        time.sleep(0.1)


def frames_and_bytes(out: Path) -> tuple[int, int]:
    frames = size = 0
    for segment in sorted(out.glob("seg_*.mp4")):
        size += segment.stat().st_size
        with av.open(str(segment)) as container:
            frames += sum(1 for packet in container.demux(video=0) if packet.size)
    return frames, size


def camera_frames() -> tuple[list[npt.NDArray[np.float32]], Path]:
    clip = encoded_clip(CACHE, FOOTAGE, "main").data
    thumbs = []
    with av.open(str(clip), format="h264") as container:
        for frame in container.decode(video=0):
            thumbs.append(np.asarray(frame.to_ndarray(width=240, height=135, format="gray"), dtype=np.float32))
    return thumbs, clip


def clip_frame(clip: Path, index: int) -> npt.NDArray[np.uint8]:
    with av.open(str(clip), format="h264") as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
    raise IndexError(index)


def judge(out: Path, thumbs: list[npt.NDArray[np.float32]], clip: Path) -> tuple[int, float, int]:
    """Leaking pixels, the lowest PSNR outside the masks, and the frames judged, over every tenth frame."""
    leaks, worst, judged = 0, 99.0, 0
    hidden: npt.NDArray[np.bool_] | None = None
    for segment in sorted(out.glob("seg_*.mp4")):
        with av.open(str(segment)) as container:
            for number, frame in enumerate(container.decode(video=0)):
                if number % 10:
                    continue
                picture = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                if hidden is None:
                    hidden = mask_raster(MASKS, frame.width, frame.height)
                leaks += int(np.count_nonzero((picture[hidden] > LEAK_TOLERANCE).any(axis=-1)))
                small = np.asarray(frame.to_ndarray(width=240, height=135, format="gray"), dtype=np.float32)
                visible = ~mask_raster(MASKS, 240, 135)
                best = int(np.argmin([np.mean((t[visible] - small[visible]) ** 2) for t in thumbs]))
                reference = clip_frame(clip, best)
                diff = picture[~hidden].astype(np.float64) - reference[~hidden].astype(np.float64)
                mse = float(np.mean(diff ** 2))
                worst = min(worst, 99.0 if mse == 0 else 10 * float(np.log10(255.0 ** 2 / mse)))
                judged += 1
    return leaks, worst, judged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, default=GOAL_CAMERAS)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    settings = DvrSettings()
    specs = [CameraSpec(f"masks-{i}", FOOTAGE) for i in range(args.cameras)]
    simulator = CameraSimulator(specs, cache_dir=CACHE)
    simulator.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-masks-") as tmp:
            work = Path(tmp)
            copies, masked = [], []
            for i, camera in enumerate(simulator.cameras.values()):
                copies.append(start(settings, camera.main_url, work / f"copy-{i}", masked=False))
                masked.append(start(settings, camera.main_url, work / f"masked-{i}", masked=True))
            time.sleep(args.seconds)
            for run in copies + masked:
                stop(run)
            copy_frames, copy_bytes = map(sum, zip(*(frames_and_bytes(r.out) for r in copies), strict=True))
            masked_frames, masked_bytes = map(sum, zip(*(frames_and_bytes(r.out) for r in masked), strict=True))
            thumbs, clip = camera_frames()
            verdicts = [judge(r.out, thumbs, clip) for r in masked]
    finally:
        simulator.stop()
    stages = stage_costs(clip, settings)
    copy_cpu = sum(r.cpu_s for r in copies)
    masked_cpu = sum(r.cpu_s for r in masked)
    masked_per_frame = masked_cpu / max(masked_frames, 1)
    copy_per_frame = copy_cpu / max(copy_frames, 1)
    figures = {
        "masked_cameras_per_2_cores": round(CPU_BUDGET / (masked_per_frame * FPS), 2),
        "cpu_ratio_masked_vs_copy": round(masked_per_frame / copy_per_frame, 1),
        "mask_leak_pixels": sum(v[0] for v in verdicts),
        "psnr_outside_mask_db": round(min(v[1] for v in verdicts), 2),
        "goal_masked_cameras_per_2_cores": GOAL_CAMERAS,
        "cameras": args.cameras,
        "seconds": args.seconds,
        "masked_cpu_s_per_camera_second": round(masked_per_frame * FPS, 4),
        "copy_cpu_s_per_camera_second": round(copy_per_frame * FPS, 4),
        "masked_realtime_share": round(masked_frames / max(copy_frames, 1), 3),
        "masked_bitrate_ratio": round(masked_bytes / max(copy_bytes, 1) * copy_frames / max(masked_frames, 1), 3),
        "frames_judged": sum(v[2] for v in verdicts),
        "stage_cpu_ms_per_frame": stages,
        "encoder": f"{settings.mask_encoder} preset {settings.mask_preset}",
        "cpu_count": os.cpu_count(),
        "method": METHOD,
    }
    path = write_result("masks", figures)
    print(path.read_text())


if __name__ == "__main__":
    main()
