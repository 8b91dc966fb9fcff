"""Real recorded segments for playback tests: ffmpeg's segment muxer with the recorder's own MP4 flags, on a test
pattern encoded to H.264 (the recorder copies a camera's stream; the container is what playback depends on)."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from core.ids import new_id
from core.objectstore import FilesystemObjectStore
from dvr.model import segment_key
from dvr.settings import DvrSettings
from dvr.uploader import segment_init_size


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


@dataclass(frozen=True)
class Recording:
    camera: uuid.UUID
    start: datetime
    end: datetime
    gap: tuple[datetime, datetime]
    files: dict[str, bytes]  # object key → bytes


async def index_recording(store: FilesystemObjectStore, department_pool: asyncpg.Pool, tenant: uuid.UUID,
                          camera: uuid.UUID, folder: Path, start: datetime, *, gap_s: float = 20.0,
                          legacy_first: bool = False) -> Recording:
    """Two runs of the recorder with an outage between them, stored and indexed as the uploader does; the first
    segment optionally without its init length (recorded before the column existed)."""
    files = record_segments(folder, seconds=6, segment_s=2)
    await store.ensure_tenant_space(tenant)
    stored: dict[str, bytes] = {}
    rows = []
    second_run = start + timedelta(seconds=files[-1].end_s + gap_s)
    for run_start in (start, second_run):
        for recorded in files:
            data = recorded.path.read_bytes()
            at = run_start + timedelta(seconds=recorded.start_s)
            key = segment_key(camera, at)
            version = (await store.put(tenant, key, data, content_type="video/mp4")).version_id
            stored[key] = data
            rows.append((new_id(), tenant, camera, at, run_start + timedelta(seconds=recorded.end_s), len(data),
                         hashlib.sha256(data).hexdigest(), key, version, segment_init_size(recorded.path)))
    if legacy_first:
        rows[0] = (*rows[0][:-1], None)
    gap = (start + timedelta(seconds=files[-1].end_s), second_run)
    async with department_pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO recording_segments (id, tenant_id, camera_id, start_at, end_at, size_bytes, sha256, "
            "object_key, version_id, init_size, codec, recorder_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'h264', 'test')", rows)
        await conn.execute(
            "INSERT INTO recording_gaps (id, tenant_id, camera_id, start_at, end_at, cause, detail) "
            "VALUES ($1, $2, $3, $4, $5, 'camera_unreachable', 'connection refused')",
            new_id(), tenant, camera, gap[0], gap[1])
    return Recording(camera=camera, start=start, end=second_run + timedelta(seconds=files[-1].end_s), gap=gap,
                     files=stored)
