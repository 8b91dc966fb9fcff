"""Spool and uploader mechanics that need no camera: segment hashing, idle workers that stop without polling."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import cast

import asyncpg

from core.events import Event
from core.objectstore import FilesystemObjectStore
from dvr.model import SpooledSegment
from dvr.uploader import SegmentUploader, Spool, describe_segment


def test_describe_segment_hashes_the_whole_file(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "seg.mp4"
    path.write_bytes(data)
    assert describe_segment(path) == (len(data), hashlib.sha256(data).hexdigest())
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert describe_segment(empty) == (0, hashlib.sha256(b"").hexdigest())


async def test_idle_workers_stop_as_soon_as_asked(tmp_path: Path) -> None:
    async def publish(_event: Event) -> None:
        return None

    async def no_lock(_segment: SpooledSegment) -> None:
        return None

    # Idle workers touch neither the pool nor the store: they sleep until a segment or the stop arrives.
    uploader = SegmentUploader(store=FilesystemObjectStore(tmp_path / "objects"), pool=cast(asyncpg.Pool, None),
                               spool=Spool(tmp_path / "spool"), recorder_id="test", publish=publish,
                               retain_until=no_lock, high_water_bytes=1 << 30, workers=4)
    stop = asyncio.Event()
    task = asyncio.create_task(uploader.run(stop))
    await asyncio.sleep(0.2)
    asked = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert time.monotonic() - asked < 0.1
