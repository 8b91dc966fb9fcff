"""Spool and uploader: finished segments are fsynced to local disk, then uploaded, indexed and only then removed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import json
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import Histogram

from core.db import Database
from core.errors import NotFound, Unavailable
from core.events import Event
from core.logging import get_logger
from core.objectstore import ObjectStore
from dvr.events import SegmentRecorded, SpoolHighWater
from dvr.hls import init_size
from dvr.model import SpooledSegment, segment_metadata
from dvr.repository import DvrRepository
from dvr.rules import backoff_delay

log = get_logger(__name__)

EventSink = Callable[[Event], Awaitable[None]]
RetainUntil = Callable[[SpooledSegment], Awaitable[datetime | None]]
_SIDECAR = ".json"

UPLOAD_LAG = Histogram("vigie_dvr_upload_lag_seconds", "From a segment's end to its upload and index row",
                       buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0))


class Spool:
    """Local folder of segments waiting for the store: data file plus a JSON sidecar, both fsynced."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def camera_dir(self, tenant_id: uuid.UUID, camera_id: uuid.UUID) -> Path:
        path = self.root / str(tenant_id) / str(camera_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def commit(segment: SpooledSegment) -> None:
        """Make a finished segment durable; after this, a crash cannot lose it."""
        with segment.path.open("rb") as f:
            os.fsync(f.fileno())
        sidecar = segment.path.with_suffix(_SIDECAR)
        tmp = sidecar.with_name(sidecar.name + ".tmp")
        payload = {
            "tenant_id": str(segment.tenant_id), "camera_id": str(segment.camera_id),
            "start_at": segment.start_at.isoformat(), "end_at": segment.end_at.isoformat(),
            "size": segment.size, "sha256": segment.sha256, "codec": segment.codec,
            "recorder_id": segment.recorder_id, "init_size": segment.init_size,
            "mask_version": segment.mask_version,
        }
        with tmp.open("w") as f:
            json.dump(payload, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(sidecar)
        fd = os.open(segment.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> list[SpooledSegment]:
        """Every committed segment still on disk (what a restarted recorder must upload first)."""
        out = []
        for sidecar in sorted(self.root.glob(f"*/*/*{_SIDECAR}")):
            data = json.loads(sidecar.read_text())
            out.append(SpooledSegment(
                tenant_id=uuid.UUID(data["tenant_id"]), camera_id=uuid.UUID(data["camera_id"]),
                path=sidecar.with_suffix(".mp4"), start_at=datetime.fromisoformat(data["start_at"]),
                end_at=datetime.fromisoformat(data["end_at"]), size=data["size"], sha256=data["sha256"],
                codec=data["codec"], recorder_id=data["recorder_id"], init_size=data.get("init_size"),
                mask_version=data.get("mask_version")))
        return out

    @staticmethod
    def remove(segment: SpooledSegment) -> None:
        segment.path.with_suffix(_SIDECAR).unlink(missing_ok=True)
        segment.path.unlink(missing_ok=True)

    def usage_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("*/*/*") if p.is_file())


# One read buffer per worker thread, reused: a finished segment is read in big chunks into it and hashed from there.
_read_buffers = threading.local()
_READ_CHUNK = 1 << 20
# The sample entry of an MP4 video track (the first one in `stsd`) names its codec; ffmpeg's names for the common ones.
_MP4_CODECS = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc", b"mp4v": "mpeg4",
               b"av01": "av1", b"vp09": "vp9", b"jpeg": "mjpeg", b"mjpa": "mjpeg", b"mjpb": "mjpeg"}
_MP4_HEAD = 64 * 1024


def describe_segment(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a finished segment, read in 1 MiB chunks into a buffer the thread reuses (cheaper than
    mapping the file: no page faults nor unmapping for each segment)."""
    buffer = getattr(_read_buffers, "buffer", None)
    if buffer is None:
        buffer = _read_buffers.buffer = bytearray(_READ_CHUNK)
    view = memoryview(buffer)
    digest = hashlib.sha256()
    size = 0
    with path.open("rb", buffering=0) as f:
        while count := f.readinto(view):
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()


def segment_codec(path: Path) -> str | None:
    """The video codec of an MP4 segment written with an empty moov up front (ffmpeg's name where known), read
    from its sample description; None when the file has none in its head."""
    with path.open("rb") as f:
        head = f.read(_MP4_HEAD)
    at = head.find(b"stsd")
    # After the box type: version and flags (4 bytes), entry count (4), first entry's size (4), then its format.
    fourcc = head[at + 16:at + 20] if at >= 4 else b""
    if len(fourcc) != 4 or not fourcc.isalnum():
        return None
    return _MP4_CODECS.get(fourcc, fourcc.decode("ascii").strip().lower())


def segment_init_size(path: Path) -> int | None:
    """Length of a segment's init section (ftyp + moov ahead of its first fragment), read from its head."""
    with path.open("rb") as f:
        return init_size(f.read(_MP4_HEAD))


class SegmentUploader:
    """Uploads spooled segments with retries; the store being down only grows the spool, it never drops a segment.

    Idempotent: the object key is (camera, start instant) and the index row is unique on it; a segment retried
    after a failure first looks for a version already stored under its key, so a retry creates no duplicate.
    """

    def __init__(self, *, store: ObjectStore, db: Database, spool: Spool, recorder_id: str,
                 publish: EventSink, retain_until: RetainUntil, high_water_bytes: int, workers: int = 4,
                 publish_segments: bool = True, repository: DvrRepository | None = None) -> None:
        self._store = store
        self._db = db
        self._spool = spool
        self._recorder_id = recorder_id
        self._publish = publish
        self._retain_until = retain_until
        self._high_water = high_water_bytes
        self._workers = workers
        self._publish_segments = publish_segments
        self._repo = repository or DvrRepository()
        self._queue: list[tuple[float, int, SpooledSegment, int]] = []
        self._seq = 0
        self._wake = asyncio.Event()
        self._spooled_bytes = 0
        self._alarm = False
        self.uploaded = 0
        self.failures = 0

    @property
    def spooled_bytes(self) -> int:
        return self._spooled_bytes

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def oldest_pending_end(self) -> datetime | None:
        """End of the oldest segment still waiting for upload (queued or backing off), None when none waits."""
        ends = [segment.end_at for _, _, segment, _ in list(self._queue)]
        return min(ends, default=None)

    async def recover(self) -> int:
        """Queue what a previous run left in the spool; returns how many segments were found."""
        found = await asyncio.to_thread(self._spool.pending)
        for seg in found:
            await self.submit(seg, attempt=1)
        return len(found)

    async def submit(self, segment: SpooledSegment, *, attempt: int = 0) -> None:
        self._spooled_bytes += segment.size
        self._push(segment, attempt, time.monotonic())
        await self._check_high_water()

    def _push(self, segment: SpooledSegment, attempt: int, not_before: float) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (not_before, self._seq, segment, attempt))
        self._wake.set()

    async def _check_high_water(self) -> None:
        if not self._alarm and self._spooled_bytes > self._high_water:
            self._alarm = True
            log.error("dvr.spool_high_water", spooled_bytes=self._spooled_bytes, high_water=self._high_water)
            tenants = {seg.tenant_id for _, _, seg, _ in self._queue}
            for tenant_id in tenants:
                await self._safe_publish(SpoolHighWater(tenant_id=tenant_id, recorder_id=self._recorder_id,
                                                        spooled_bytes=self._spooled_bytes,
                                                        high_water_bytes=self._high_water))
        elif self._alarm and self._spooled_bytes < self._high_water * 0.8:
            self._alarm = False
            log.info("dvr.spool_below_high_water", spooled_bytes=self._spooled_bytes)

    async def _safe_publish(self, event: Event) -> None:
        try:
            await self._publish(event)
        except Unavailable as exc:
            log.warning("dvr.publish_failed", event=type(event).__name__, error=str(exc))

    async def run(self, stop: asyncio.Event) -> None:
        async def wake_on_stop() -> None:
            await stop.wait()
            self._wake.set()

        # Idle workers sleep on the wake event alone (no polling timer): a submit or the stop wakes them.
        waker = asyncio.create_task(wake_on_stop())
        try:
            await asyncio.gather(*(self._worker(stop) for _ in range(self._workers)))
        finally:
            waker.cancel()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until nothing is queued or in flight; true when drained."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._queue and self._spooled_bytes == 0:
                return True
            await asyncio.sleep(0.05)
        return False

    async def _worker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            not_before, _, segment, attempt = self._queue[0]
            delay = not_before - time.monotonic()
            if delay > 0:
                # A retry waiting for its backoff; an earlier submit or the stop cuts the wait short.
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                continue
            heapq.heappop(self._queue)
            try:
                await self._upload(segment, retry=attempt > 0)
            except Exception as exc:  # whatever failed, the segment stays spooled and is retried
                self.failures += 1
                wait = backoff_delay(attempt, base_s=0.5, cap_s=15.0)
                log.warning("dvr.upload_failed", camera_id=str(segment.camera_id), attempt=attempt,
                            retry_in_s=round(wait, 2), error=str(exc)[:300])
                self._push(segment, attempt + 1, time.monotonic() + wait)
                continue
            self._spooled_bytes -= segment.size
            self.uploaded += 1
            UPLOAD_LAG.observe(max((utc_now() - segment.end_at).total_seconds(), 0.0))
            await self._check_high_water()

    async def _upload(self, segment: SpooledSegment, *, retry: bool) -> None:
        tenant_id, key = segment.tenant_id, segment.object_key
        version_id = await self._already_stored(segment) if retry else None
        if version_id is None:
            retain_until = await self._retain_until(segment)
            stored = await self._store.put_file(tenant_id, key, segment.path, content_type="video/mp4",
                                                sha256=segment.sha256, retain_until=retain_until,
                                                metadata=segment_metadata(segment))
            version_id = stored.version_id
        # The recording index is written by the department role only (the runtime role reads it): migration 0020.
        async with self._db.cross_tenant("recording index") as conn:
            await self._repo.insert_segment(conn, segment, version_id)
        await asyncio.to_thread(self._spool.remove, segment)
        if self._publish_segments:
            await self._safe_publish(SegmentRecorded(
                tenant_id=tenant_id, camera_id=segment.camera_id, start_at=segment.start_at,
                end_at=segment.end_at, object_key=key, sha256=segment.sha256))

    async def _already_stored(self, segment: SpooledSegment) -> str | None:
        try:
            versions = await self._store.list_versions(segment.tenant_id, segment.object_key)
        except NotFound:
            return None
        for v in reversed(versions):
            if v.key == segment.object_key and not v.is_delete_marker and v.size == segment.size:
                return v.version_id
        return None


def utc_now() -> datetime:
    return datetime.now(UTC)
