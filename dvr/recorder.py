"""ffmpeg recorders: one supervised `-c copy` segmenter per camera, and the fleet that shares cameras by lease."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import signal
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from core.crypto import SecretBox
from core.errors import Unavailable
from core.events import Event
from core.logging import get_logger
from dvr.events import RecordingGapDetected, RecordingInterrupted, RecordingResumed
from dvr.model import CameraTarget, Gap, GapCause, SpooledSegment
from dvr.repository import DvrRepository, connection
from dvr.rules import (
    SegmentClock,
    backoff_delay,
    check_stream_url,
    fair_share,
    is_gap,
    parse_segment_report,
    redact_url,
    url_with_credentials,
)
from dvr.settings import DvrSettings
from dvr.uploader import SegmentUploader, Spool, describe_segment, segment_codec

log = get_logger(__name__)

EventSink = Callable[[Event], Awaitable[None]]
_PR_SET_PDEATHSIG = 1
_prctl: Any
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: children are stopped by the parent's shutdown path only
    _prctl = None


def _ffmpeg_child_setup(nice: int) -> Callable[[], None]:
    def setup() -> None:
        # A recorder killed with -9 must not leave ffmpeg pulling the camera and writing orphan segments.
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # When many ffmpegs start at once (their stream probe decodes frames), the supervisor must still get the
        # CPU to renew its leases within their TTL; a lapsed lease stops and restarts the camera.
        if nice:
            os.nice(nice)

    return setup


def ffmpeg_command(settings: DvrSettings, url: str, out_pattern: str) -> list[str]:
    """Frigate's recording preset: stream copy into 10 s MP4 segments, RTSP over TCP; fragmented MP4 so a
    segment cut short by a crash still plays up to its last fragment. Errors only on stderr: warnings such as
    non-monotonous timestamps come several times a second per camera and would each wake the supervisor; the
    codec is read from the segments themselves."""
    return [
        settings.ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
        "-rtsp_transport", "tcp", "-timeout", str(int(settings.rtsp_timeout_s * 1_000_000)),
        "-i", url, "-map", "0:v:0", "-c", "copy", "-an",
        "-f", "segment", "-segment_time", str(settings.segment_s), "-segment_format", "mp4",
        "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof",
        "-reset_timestamps", "1", "-segment_list", "pipe:1", "-segment_list_type", "csv", out_pattern,
    ]


@dataclass
class RunOutcome:
    segments: int = 0
    cause: GapCause = GapCause.CAMERA_UNREACHABLE
    detail: str = ""
    codec: str | None = None


@dataclass
class StreamRecorder:
    """Records one camera until stopped: reconnects with capped, fully jittered backoff, detects stalls, reports
    the camera offline, and writes one gap row for every interval between two recorded segments."""

    target: CameraTarget
    settings: DvrSettings
    spool: Spool
    uploader: SegmentUploader
    pool: asyncpg.Pool
    publish: EventSink
    recorder_id: str
    taken_over: bool = False
    repo: DvrRepository = field(default_factory=DvrRepository)
    last_end: datetime | None = None
    offline_since: datetime | None = None
    codec: str | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _process: asyncio.subprocess.Process | None = None
    _rng: random.Random = field(default_factory=random.Random)

    def request_stop(self) -> None:
        self._stop.set()
        if self._process is not None and self._process.returncode is None:
            # SIGINT lets ffmpeg close the current segment cleanly and report it.
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGINT)

    async def run(self) -> None:
        t = self.target
        try:
            check_stream_url(t.url)
        except ValueError as exc:
            await self._health("offline", detail=str(exc))
            return
        async with connection(self.pool) as conn:
            self.last_end = await self.repo.last_segment_end(conn, t.camera_id)
            previous = await self.repo.health(conn, t.camera_id)
        pending = [s.end_at for s in self.spool.pending() if s.camera_id == t.camera_id]
        if pending and (self.last_end is None or max(pending) > self.last_end):
            self.last_end = max(pending)
        self.taken_over = previous is not None and previous["recorder_id"] not in (None, self.recorder_id)
        first_cause = GapCause.RECORDER_FAILOVER if self.taken_over else GapCause.RECORDER_STOPPED
        await self._health("starting")
        attempt = 0
        cause = first_cause
        detail = ""
        while not self._stop.is_set():
            started = time.monotonic()
            outcome = await self._run_ffmpeg(cause, detail)
            if self._stop.is_set():
                break
            if outcome.segments > 0 or attempt == 0 or cause in (GapCause.RECORDER_STOPPED, GapCause.RECORDER_FAILOVER):
                cause, detail = outcome.cause, outcome.detail
            if time.monotonic() - started > self.settings.stable_after_s:
                attempt = 0
            await self._maybe_offline(outcome)
            delay = backoff_delay(attempt, base_s=self.settings.backoff_base_s, cap_s=self.settings.backoff_cap_s,
                                  rng=self._rng)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            if outcome.segments == 0 and not self._stop.is_set():
                # Unreachable through the whole wait: an outage longer than offline_after_s is reported now, not
                # only if the next attempt fails too (the camera may be back by then, the outage unreported).
                await self._maybe_offline(outcome)

    async def _run_ffmpeg(self, gap_cause: GapCause, gap_detail: str) -> RunOutcome:
        t = self.target
        run = uuid.uuid4().hex[:8]
        folder = await asyncio.to_thread(self.spool.camera_dir, t.tenant_id, t.camera_id)
        command = ffmpeg_command(self.settings, t.url, str(folder / f"{run}_%06d.mp4"))
        started_at = datetime.now(UTC)
        clock = SegmentClock(started_at=started_at)
        outcome = RunOutcome(cause=gap_cause, detail=gap_detail)
        try:
            self._process = process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=_ffmpeg_child_setup(self.settings.ffmpeg_nice))
        except OSError as exc:
            return RunOutcome(cause=GapCause.CAMERA_UNREACHABLE, detail=f"cannot start ffmpeg: {exc}")
        if self._stop.is_set():
            process.send_signal(signal.SIGINT)
        stderr_tail: deque[str] = deque(maxlen=40)
        stderr_task = asyncio.create_task(self._read_stderr(process, stderr_tail))
        assert process.stdout is not None
        stall_limit = self.settings.segment_s + self.settings.stall_after_s
        stalled = False
        while True:
            try:
                line = await asyncio.wait_for(process.stdout.readline(), timeout=stall_limit)
            except TimeoutError:
                stalled = True
                log.warning("dvr.stream_stalled", camera_id=str(t.camera_id), after_s=stall_limit)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                break
            if not line:
                break
            report = parse_segment_report(line.decode(errors="replace"))
            if report is None:
                continue
            name, rel_start, rel_end = report
            start_at, end_at = clock.place(rel_start, rel_end, datetime.now(UTC))
            await self._segment_done(folder / name, start_at, end_at, outcome, gap_cause, gap_detail)
        await process.wait()
        await stderr_task
        self._process = None
        text = "\n".join(stderr_tail)
        if stalled:
            outcome.cause, outcome.detail = GapCause.STREAM_STALLED, "no data from the camera"
        elif "No space left on device" in text:
            outcome.cause, outcome.detail = GapCause.SPOOL_FULL, "local spool disk is full"
            log.error("dvr.spool_full", camera_id=str(t.camera_id))
        else:
            outcome.cause = GapCause.CAMERA_UNREACHABLE
            outcome.detail = _last_error(stderr_tail) or f"ffmpeg exited with {process.returncode}"
        # Leftovers of this run that ffmpeg never reported (it died mid-segment) hold no complete fragment list.
        for leftover in folder.glob(f"{run}_*.mp4"):
            if not leftover.with_suffix(".json").exists():
                leftover.unlink(missing_ok=True)
        return outcome

    async def _read_stderr(self, process: asyncio.subprocess.Process, tail: deque[str]) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if "://" in line:
                line = redact_url(line)
            tail.append(line)

    async def _segment_done(self, path: os.PathLike[str] | str, start_at: datetime, end_at: datetime,
                            outcome: RunOutcome, gap_cause: GapCause, gap_detail: str) -> None:
        t = self.target
        try:
            # Hashing and fsync in one trip to a worker thread: the event loop never reads the file.
            segment = await asyncio.to_thread(self._seal, Path(path), start_at, end_at, outcome.codec)
        except FileNotFoundError:
            log.error("dvr.segment_missing", camera_id=str(t.camera_id), path=str(path))
            return
        if segment is None:
            return
        if outcome.codec is None:
            outcome.codec = segment.codec
        if self.codec is not None and outcome.codec is not None and outcome.codec != self.codec:
            gap_cause, gap_detail = GapCause.CODEC_CHANGED, f"stream codec changed {self.codec} -> {outcome.codec}"
            log.warning("dvr.codec_changed", camera_id=str(t.camera_id), was=self.codec, now=outcome.codec)
        await self.uploader.submit(segment)
        if outcome.segments == 0:
            await self._first_segment(start_at, gap_cause, gap_detail, outcome.codec)
        outcome.segments += 1
        self.last_end = end_at
        if outcome.codec:
            self.codec = outcome.codec

    def _seal(self, path: Path, start_at: datetime, end_at: datetime, codec: str | None) -> SpooledSegment | None:
        """Describe a finished segment (size, SHA-256) and commit it to the spool; None for an empty file."""
        size, digest = describe_segment(path)
        if size == 0:
            path.unlink(missing_ok=True)
            return None
        if codec is None:
            # Once per ffmpeg run: its first segment names the stream's codec.
            codec = segment_codec(path)
        t = self.target
        segment = SpooledSegment(tenant_id=t.tenant_id, camera_id=t.camera_id, path=path, start_at=start_at,
                                 end_at=end_at, size=size, sha256=digest, codec=codec, recorder_id=self.recorder_id)
        Spool.commit(segment)
        return segment

    async def _first_segment(self, start_at: datetime, cause: GapCause, detail: str, codec: str | None) -> None:
        t = self.target
        if is_gap(self.last_end, start_at, self.settings.gap_tolerance_s):
            assert self.last_end is not None
            gap = Gap(tenant_id=t.tenant_id, camera_id=t.camera_id, start_at=self.last_end, end_at=start_at,
                      cause=cause, detail=detail[:500] or None)
            try:
                async with connection(self.pool) as conn:
                    await self.repo.insert_gap(conn, gap)
            except (OSError, asyncpg.PostgresError) as exc:
                log.error("dvr.gap_not_recorded", camera_id=str(t.camera_id), error=str(exc))
            log.info("dvr.gap", camera_id=str(t.camera_id), start=gap.start_at.isoformat(),
                     end=gap.end_at.isoformat(), cause=cause.value)
            await self._publish(RecordingGapDetected(tenant_id=t.tenant_id, camera_id=t.camera_id,
                                                     start_at=gap.start_at, end_at=gap.end_at, cause=cause.value))
        if self.offline_since is not None:
            await self._publish(RecordingResumed(tenant_id=t.tenant_id, camera_id=t.camera_id,
                                                 offline_since=self.offline_since))
            self.offline_since = None
        await self._health("recording", codec=codec)

    async def _maybe_offline(self, outcome: RunOutcome) -> None:
        if self.offline_since is not None:
            return
        t = self.target
        now = datetime.now(UTC)
        reference = self.last_end or now
        if (outcome.segments == 0 and (now - reference).total_seconds() >= self.settings.offline_after_s) \
                or self.last_end is None:
            self.offline_since = reference
            log.warning("dvr.camera_offline", camera_id=str(t.camera_id), reason=outcome.detail[:200])
            await self._health("offline", detail=outcome.detail[:500])
            await self._publish(RecordingInterrupted(tenant_id=t.tenant_id, camera_id=t.camera_id,
                                                  since=reference, reason=outcome.detail[:500]))

    async def _health(self, state: str, *, detail: str | None = None, codec: str | None = None) -> None:
        t = self.target
        try:
            async with connection(self.pool) as conn:
                await self.repo.set_health(conn, tenant_id=t.tenant_id, camera_id=t.camera_id, state=state,
                                           since=datetime.now(UTC), recorder_id=self.recorder_id,
                                           last_segment_end=self.last_end, codec=codec, detail=detail)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("dvr.health_not_recorded", camera_id=str(t.camera_id), error=str(exc))

    async def _publish(self, event: Event) -> None:
        try:
            await self.publish(event)
        except Unavailable as exc:
            log.warning("dvr.publish_failed", event=type(event).__name__, error=str(exc))


def _last_error(tail: deque[str]) -> str:
    for line in reversed(tail):
        lowered = line.lower()
        if any(w in lowered for w in ("error", "refused", "failed", "timed out", "invalid", "not found", "401")):
            return line[:500]
    return ""


def new_recorder_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class FleetRecorder:
    """Shares the department's cameras among the live `python -m dvr` processes through Postgres leases.

    Each process takes at most its fair share of cameras; a dead process stops renewing, its leases expire after
    `lease_ttl_s`, and the survivors take its cameras over at their next poll.
    """

    def __init__(self, *, settings: DvrSettings, pool: asyncpg.Pool, uploader: SegmentUploader, spool: Spool,
                 publish: EventSink, secret_box: SecretBox, recorder_id: str | None = None,
                 tenant_ids: list[uuid.UUID] | None = None, repository: DvrRepository | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.uploader = uploader
        self.spool = spool
        self.publish = publish
        self.box = secret_box
        self.recorder_id = recorder_id or new_recorder_id()
        # A shard of the fleet (some tenants only), or every recordable camera when None.
        self.tenant_ids = tenant_ids
        self.repo = repository or DvrRepository()
        self.recorders: dict[uuid.UUID, tuple[StreamRecorder, asyncio.Task[None]]] = {}
        self.acquired_at: dict[uuid.UUID, float] = {}
        self.stopping: dict[uuid.UUID, asyncio.Task[None]] = {}

    def target(self, row: asyncpg.Record) -> CameraTarget:
        url = row["main_stream_url"]
        if row["credentials_sealed"] is not None:
            import msgspec

            creds = msgspec.json.decode(self.box.open(row["credentials_sealed"], purpose="camera-credentials"))
            url = url_with_credentials(url, creds.get("username"), creds.get("password"))
        return CameraTarget(tenant_id=row["tenant_id"], camera_id=row["camera_id"], name=row["name"], url=url)

    async def run(self, stop: asyncio.Event) -> None:
        async with connection(self.pool) as conn:
            await self.repo.register_instance(conn, self.recorder_id, socket.gethostname(), os.getpid())
        log.info("dvr.recorder_started", recorder_id=self.recorder_id)
        try:
            while not stop.is_set():
                try:
                    await self.rebalance()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("dvr.lease_round_failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.lease_poll_s)
        finally:
            await self.stop_all()
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                async with connection(self.pool) as conn:
                    await self.repo.remove_instance(conn, self.recorder_id)

    async def rebalance(self) -> None:
        ttl = self.settings.lease_ttl_s
        async with connection(self.pool) as conn:
            lease_round = await self.repo.lease_round(conn, self.recorder_id, ttl, self.tenant_ids)
            live, cameras, held = lease_round.live, lease_round.cameras, lease_round.held
            for camera_id in list(self.recorders):
                if camera_id not in held or camera_id not in cameras:
                    self._stop_in_background(camera_id, release=camera_id in held)
            share = fair_share(len(cameras), live)
            if len(held) > share:
                for camera_id in sorted(held)[share:]:
                    self._stop_in_background(camera_id, release=True)
                    held.discard(camera_id)
            free = [c for c in cameras if c not in lease_round.holders]
            random.shuffle(free)
            for camera_id in free:
                if len(held) >= share:
                    break
                row = cameras[camera_id]
                if await self.repo.acquire_lease(conn, self.recorder_id, row["tenant_id"], camera_id, ttl):
                    held.add(camera_id)
            for camera_id in held:
                if camera_id not in self.recorders and camera_id not in self.stopping and camera_id in cameras:
                    self._start_camera(cameras[camera_id])

    def _stop_in_background(self, camera_id: uuid.UUID, *, release: bool) -> None:
        """Stop a camera without holding up the lease round: ffmpeg closing its segment and the last upload
        hand-off take a while, and the leases of every other camera must still be renewed on time."""
        if camera_id in self.stopping:
            return

        async def stop() -> None:
            try:
                await self._stop_camera(camera_id, release=release)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The lease was not released: it lapses after its TTL instead.
                log.warning("dvr.lease_release_failed", camera_id=str(camera_id), error=str(exc))

        task = asyncio.create_task(stop(), name=f"stop-{camera_id}")
        self.stopping[camera_id] = task
        task.add_done_callback(lambda _task: self.stopping.pop(camera_id, None))

    def _start_camera(self, row: asyncpg.Record) -> None:
        target = self.target(row)
        recorder = StreamRecorder(target=target, settings=self.settings, spool=self.spool, uploader=self.uploader,
                                  pool=self.pool, publish=self.publish, recorder_id=self.recorder_id)
        task = asyncio.create_task(recorder.run(), name=f"record-{target.camera_id}")
        self.recorders[target.camera_id] = (recorder, task)
        self.acquired_at[target.camera_id] = time.monotonic()
        log.info("dvr.camera_acquired", camera_id=str(target.camera_id), url=redact_url(target.url))

    async def _stop_camera(self, camera_id: uuid.UUID, *, release: bool) -> None:
        entry = self.recorders.pop(camera_id, None)
        if entry is not None:
            recorder, task = entry
            recorder.request_stop()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=15)
            except TimeoutError:
                task.cancel()
        if release:
            async with connection(self.pool) as conn:
                await self.repo.release_lease(conn, self.recorder_id, camera_id)

    async def stop_all(self) -> None:
        # Every camera at once: a graceful stop costs one segment close, not one per camera in turn.
        await asyncio.gather(*self.stopping.values(), return_exceptions=True)
        await asyncio.gather(*(self._stop_camera(camera_id, release=True) for camera_id in list(self.recorders)),
                             return_exceptions=True)


def since(ts: datetime) -> timedelta:
    return datetime.now(UTC) - ts
