"""Real recorded segments for playback tests: ffmpeg's segment muxer with the recorder's own MP4 flags, on a test
pattern encoded to H.264 (the recorder copies a camera's stream; the container is what playback depends on)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from dvr.settings import DvrSettings


@dataclass(frozen=True)
class RecordedFile:
    path: Path
    start_s: float
    end_s: float


def record_segments(folder: Path, *, seconds: float, segment_s: float = 2.0, fps: int = 10,
                    size: str = "320x240") -> list[RecordedFile]:
    """Cut `seconds` of a moving test pattern (a keyframe every second) into segments as the recorder does:
    fragmented MP4 with an empty moov up front, timestamps reset at every cut. Returns them with the offsets the
    segment list reports."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        DvrSettings().ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
        "-i", f"testsrc2=size={size}:rate={fps}", "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
        "-g", str(fps), "-pix_fmt", "yuv420p", "-f", "segment", "-segment_time", str(segment_s),
        "-segment_format", "mp4", "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof",
        "-reset_timestamps", "1", "-segment_list", "pipe:1", "-segment_list_type", "csv",
        str(folder / "seg%03d.mp4"),
    ]
    listing = subprocess.run(command, check=True, capture_output=True, text=True).stdout  # fixed argv, no shell
    out = []
    for line in listing.splitlines():
        name, start, end = line.rsplit(",", 2)
        out.append(RecordedFile(folder / name, float(start), float(end)))
    return out
