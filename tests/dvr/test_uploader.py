"""Spool and uploader mechanics that need no camera: segment hash and codec, idle workers that stop without polling."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import cast

from core.db import Database
from core.events import Event
from core.objectstore import FilesystemObjectStore
from dvr.model import SpooledSegment
from dvr.recorder import ffmpeg_command
from dvr.settings import DvrSettings
from dvr.uploader import SegmentUploader, Spool, describe_segment, segment_codec


def test_describe_segment_hashes_the_whole_file(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "seg.mp4"
    path.write_bytes(data)
    assert describe_segment(path) == (len(data), hashlib.sha256(data).hexdigest())
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert describe_segment(empty) == (0, hashlib.sha256(b"").hexdigest())



def test_segment_codec_is_read_from_the_segment_the_recorder_writes(tmp_path: Path) -> None:
    # The recorder's own segment muxer options, on a synthetic H.264 source instead of a camera.
    command = ffmpeg_command(DvrSettings(), "unused", str(tmp_path / "seg_%06d.mp4"))
    muxer = command[command.index("-f"):]
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
                    "-t", "1", "-c:v", "libx264", *muxer], check=True, capture_output=True)
    assert segment_codec(tmp_path / "seg_000000.mp4") == "h264"
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(4096).replace(b"stsd", b"xxxx"))
    assert segment_codec(garbage) is None


async def test_idle_workers_stop_as_soon_as_asked(tmp_path: Path) -> None:
    async def publish(_event: Event) -> None:
        return None

    async def no_lock(_segment: SpooledSegment) -> None:
        return None

    # Idle workers touch neither the database nor the store: they sleep until a segment or the stop arrives.
    uploader = SegmentUploader(store=FilesystemObjectStore(tmp_path / "objects"), db=cast(Database, None),
                               spool=Spool(tmp_path / "spool"), recorder_id="test", publish=publish,
                               retain_until=no_lock, high_water_bytes=1 << 30, workers=4)
    stop = asyncio.Event()
    task = asyncio.create_task(uploader.run(stop))
    await asyncio.sleep(0.2)
    asked = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert time.monotonic() - asked < 0.1
