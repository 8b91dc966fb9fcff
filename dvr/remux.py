"""ffmpeg remux of indexed segments into one MP4 (no re-encode), each source re-hashed against the index first."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import Unavailable
from core.objectstore import ObjectStore, sha256_file
from dvr.model import Segment
from dvr.rules import coverage
from dvr.settings import DvrSettings


@dataclass
class AssembledClip:
    data_path: Path
    start_at: datetime
    end_at: datetime
    sources: list[dict[str, Any]]
    holes: list[tuple[datetime, datetime]]


async def assemble(store: ObjectStore, settings: DvrSettings, tenant_id: uuid.UUID, segments: list[Segment],
                   start: datetime, end: datetime, workdir: Path) -> AssembledClip:
    """Remux the segments covering [start, end) into one MP4 without re-encoding; every source is re-hashed
    against the index first, so a clip is never cut from altered footage."""
    paths = []
    sources = []
    for i, seg in enumerate(segments):
        local = workdir / f"src-{i:05d}.mp4"
        await store.download(tenant_id, seg.object_key, local, version_id=seg.version_id)
        digest = await asyncio.to_thread(sha256_file, local)
        if digest != seg.sha256:
            raise Unavailable(f"segment {seg.object_key} does not match its indexed SHA-256; refusing to use it")
        paths.append(local)
        sources.append({"object_key": seg.object_key, "version_id": seg.version_id, "sha256": seg.sha256,
                        "start_at": seg.start_at.isoformat(), "end_at": seg.end_at.isoformat()})
    first = segments[0].start_at
    clip_start = max(start, first)
    clip_end = min(end, segments[-1].end_at)
    listing = workdir / "concat.txt"
    listing.write_text("".join(f"file '{p.name}'\n" for p in paths))
    out = workdir / "clip.mp4"
    offset = max(0.0, (clip_start - first).total_seconds())
    duration = (clip_end - clip_start).total_seconds()
    process = await asyncio.create_subprocess_exec(
        settings.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "concat", "-safe", "0",
        "-ss", f"{offset:.3f}", "-i", str(listing), "-t", f"{duration:.3f}", "-map", "0:v:0", "-c", "copy",
        "-movflags", "+faststart", "-y", str(out), cwd=str(workdir),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await process.communicate()
    if process.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise Unavailable(f"remuxing the clip failed: {stderr.decode(errors='replace')[-300:]}")
    holes = coverage(segments, start, end, settings.gap_tolerance_s).holes
    return AssembledClip(data_path=out, start_at=clip_start, end_at=clip_end, sources=sources, holes=holes)
