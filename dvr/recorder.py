"""The recorder of one camera: a supervised ffmpeg segmenter (stream copy, or masks burnt in), gaps, health, outages."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import signal
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from core.db import Database
from core.errors import Unavailable
from core.events import Event
from core.logging import get_logger, redact_credentials
from core.masks import cover_filter
from dvr.errors import InvalidCameraUrl
from dvr.events import RecordingGapDetected, RecordingInterrupted, RecordingResumed
from dvr.model import CameraTarget, Gap, GapCause, SpooledSegment
from dvr.repository import DvrRepository
from dvr.rules import (
    SegmentClock,
    backoff_delay,
    check_stream_url,
    is_gap,
    parse_segment_report,
)
from dvr.settings import DvrSettings
from dvr.uploader import SegmentUploader, Spool, describe_segment, segment_codec, segment_init_size
from health.model import SignalState
from health.reporter import HealthReporter

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


# What ffmpeg may open: the pipe carrying the input script, then the camera's RTSP(S) stream. Nothing else (no
# file://, no http://), whatever a stream URL says.
_PROTOCOLS = "pipe,rtsp,rtsps,tcp,udp,rtp,tls"


def ffconcat_script(settings: DvrSettings, url: str) -> bytes:
    """The input of one ffmpeg run, as an ffconcat script read from a pipe: the camera's URL, credentials included,
    never appears in ffmpeg's argv (which `ps` and /proc/<pid>/cmdline show to every user of the machine).

    ffmpeg takes RTSP credentials only from the URL's userinfo (no option, no environment variable, and ffmpeg 5.1
    has no `-/option file` syntax), so the URL travels in a one-entry concat script on an inherited pipe; the RTSP
    options become the entry's `option` lines."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise InvalidCameraUrl("the stream URL contains control characters")
    quoted = "'" + url.replace("'", "'\\''") + "'"
    return (f"ffconcat version 1.0\nfile {quoted}\noption rtsp_transport tcp\n"
            f"option timeout {int(settings.rtsp_timeout_s * 1_000_000)}\n").encode()


def mask_encoding(settings: DvrSettings, masks: tuple[tuple[tuple[float, float], ...], ...],
                  bitrate_kbps: float | None) -> list[str]:
    """The output options of a masked camera: its masks painted black on every decoded frame, then H.264 at the
    camera's resolution (unchanged), a keyframe wherever the camera sent one (its GOP, so segments cut where they
    would have been) and about the camera's bitrate; no B-frames, as IP cameras send."""
    kbps = round(bitrate_kbps or settings.mask_default_kbps)
    return ["-vf", cover_filter(masks), "-filter_threads", "1", "-c:v", settings.mask_encoder,
            "-preset", settings.mask_preset, "-threads", str(settings.mask_threads),
            "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps * 2}k", "-bf", "0",
            "-force_key_frames", "source", "-pix_fmt", "yuv420p"]


def ffmpeg_command(settings: DvrSettings, out_pattern: str, *, input_fd: int,
                   masks: tuple[tuple[tuple[float, float], ...], ...] = (),
                   bitrate_kbps: float | None = None) -> list[str]:
    """Frigate's recording preset: stream copy into 10 s MP4 segments, RTSP over TCP; fragmented MP4 so a
    segment cut short by a crash still plays up to its last fragment. A camera with privacy masks is re-encoded
    with them burnt in instead (`mask_encoding`): nothing unmasked is ever written. Errors only on stderr: warnings
    such as non-monotonous timestamps would each wake the supervisor; the codec is read from the segments
    themselves. The camera is read from the ffconcat script on `input_fd`."""
    coding = mask_encoding(settings, masks, bitrate_kbps) if masks else ["-c", "copy"]
    # A masked camera decodes and encodes on one thread each: one camera keeps up on one core, and many cameras
    # share the machine's cores without each ffmpeg's thread pool contending for them.
    decoding = ["-threads", str(settings.mask_threads)] if masks else []
    return [
        settings.ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", *decoding,
        "-f", "concat", "-safe", "0", "-protocol_whitelist", _PROTOCOLS,
        "-i", f"pipe:{input_fd}", "-map", "0:v:0", *coding, "-an",
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


# The recorder's states that say something of the camera's health ("starting" says nothing yet).
_HEALTH_SIGNALS: dict[str, SignalState] = {"recording": "online", "offline": "offline"}
# Consecutive segments under half the profile's bitrate before the stream counts as degraded (one short segment at a
# reconnection is no degradation).
BITRATE_SEGMENTS = 3


@dataclass
class StreamRecorder:
    """Records one camera until stopped: reconnects with capped, fully jittered backoff, detects stalls, reports
    the camera offline, and writes one gap row for every interval between two recorded segments."""

    target: CameraTarget
    settings: DvrSettings
    spool: Spool
    uploader: SegmentUploader
    db: Database
    publish: EventSink
    recorder_id: str
    taken_over: bool = False
    repo: DvrRepository = field(default_factory=DvrRepository)
    last_end: datetime | None = None
    offline_since: datetime | None = None
    codec: str | None = None
    # The camera's bitrate as recorded without masks, the target of a masked re-encode (None: the default).
    source_kbps: float | None = None
    _next_target: CameraTarget | None = None
    low_bitrate_segments: int = 0
    bitrate_degraded: bool = False
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _process: asyncio.subprocess.Process | None = None
    _rng: random.Random = field(default_factory=random.Random)

    def _index(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        # Writing the recording index (gaps, health) is the department role's job: the runtime role the API holds
        # may only read it (migration 0020), so no request can forge a recording row.
        return self.db.cross_tenant("recording index")

    def retarget(self, target: CameraTarget) -> None:
        """The camera's masks changed: close the current segment and record the next ones with the new masks."""
        if self._next_target is not None and self._next_target.mask_version == target.mask_version:
            return  # already closing the run for this version: a second SIGINT would not let ffmpeg finish it
        self._next_target = target
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGINT)

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
            ffconcat_script(self.settings, t.url)  # what the input script cannot carry is refused once, here
        except (ValueError, InvalidCameraUrl) as exc:
            await self._health("offline", detail=str(exc))
            return
        async with self._index() as conn:
            self.last_end = await self.repo.last_segment_end(conn, t.camera_id)
            previous = await self.repo.health(conn, t.camera_id)
            self.source_kbps = await self.repo.source_bitrate_kbps(conn, t.camera_id)
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
            if self._next_target is not None:
                # Straight on with the new masks: the few frames between the two runs are a gap of their own cause.
                was = self.target.mask_version
                self.target, self._next_target = self._next_target, None
                cause, detail = GapCause.MASK_CHANGED, f"mask version {was} -> {self.target.mask_version}"
                attempt = 0
                continue
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
        if self._next_target is not None:
            self.target = t = self._next_target
            self._next_target = None
        run = uuid.uuid4().hex[:8]
        folder = await asyncio.to_thread(self.spool.camera_dir, t.tenant_id, t.camera_id)
        script = ffconcat_script(self.settings, t.url)
        started_at = datetime.now(UTC)
        clock = SegmentClock(started_at=started_at)
        outcome = RunOutcome(cause=gap_cause, detail=gap_detail)
        # A few hundred bytes: the pipe's buffer holds them before ffmpeg reads, so the write never blocks.
        script_fd, writer = os.pipe()
        try:
            os.write(writer, script)
            os.close(writer)
            command = ffmpeg_command(self.settings, str(folder / f"{run}_%06d.mp4"), input_fd=script_fd,
                                     masks=t.masks, bitrate_kbps=self.source_kbps)
            self._process = process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, pass_fds=(script_fd,),
                preexec_fn=_ffmpeg_child_setup(self.settings.ffmpeg_nice))
        except OSError as exc:
            return RunOutcome(cause=GapCause.CAMERA_UNREACHABLE, detail=f"cannot start ffmpeg: {exc}")
        finally:
            os.close(script_fd)
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
            await self._segment_done(folder / name, start_at, end_at, outcome, gap_cause, gap_detail,
                                     mask_version=t.mask_version if t.masks else None)
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
            # ffmpeg names the URL it failed to open, credentials included, anywhere in its messages.
            tail.append(redact_credentials(raw.decode(errors="replace").rstrip()))

    async def _segment_done(self, path: os.PathLike[str] | str, start_at: datetime, end_at: datetime,
                            outcome: RunOutcome, gap_cause: GapCause, gap_detail: str, *,
                            mask_version: int | None = None) -> None:
        t = self.target
        try:
            # Hashing and fsync in one trip to a worker thread: the event loop never reads the file.
            segment = await asyncio.to_thread(self._seal, Path(path), start_at, end_at, outcome.codec, mask_version)
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
        await self._check_bitrate(segment)
        if outcome.segments == 0:
            await self._first_segment(start_at, gap_cause, gap_detail, outcome.codec)
        outcome.segments += 1
        self.last_end = end_at
        if outcome.codec:
            self.codec = outcome.codec

    async def _check_bitrate(self, segment: SpooledSegment) -> None:
        """The main stream's bitrate against the camera's profile: under half of it for BITRATE_SEGMENTS segments
        in a row, the camera's health is degraded; back above, online again."""
        expected = self.target.expected_bitrate_kbps
        seconds = (segment.end_at - segment.start_at).total_seconds()
        if not expected or seconds <= 0:
            return
        kbps = segment.size * 8 / seconds / 1000
        self.low_bitrate_segments = self.low_bitrate_segments + 1 if kbps < 0.5 * expected else 0
        degraded = self.low_bitrate_segments >= BITRATE_SEGMENTS
        if degraded != self.bitrate_degraded:
            self.bitrate_degraded = degraded
            t = self.target
            await HealthReporter(self.db, "recorder").report(
                t.tenant_id, t.camera_id, "degraded" if degraded else "online",
                f"débit {kbps:.0f} kbit/s sous le profil ({expected} kbit/s)" if degraded else None)

    def _seal(self, path: Path, start_at: datetime, end_at: datetime, codec: str | None,
              mask_version: int | None = None) -> SpooledSegment | None:
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
                                 end_at=end_at, size=size, sha256=digest, codec=codec, recorder_id=self.recorder_id,
                                 init_size=segment_init_size(path), mask_version=mask_version)
        Spool.commit(segment)
        return segment

    async def _first_segment(self, start_at: datetime, cause: GapCause, detail: str, codec: str | None) -> None:
        t = self.target
        if is_gap(self.last_end, start_at, self.settings.gap_tolerance_s):
            assert self.last_end is not None
            gap = Gap(tenant_id=t.tenant_id, camera_id=t.camera_id, start_at=self.last_end, end_at=start_at,
                      cause=cause, detail=detail[:500] or None)
            try:
                async with self._index() as conn:
                    await self.repo.insert_gap(conn, gap)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
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
            async with self._index() as conn:
                await self.repo.set_health(conn, tenant_id=t.tenant_id, camera_id=t.camera_id, state=state,
                                           since=datetime.now(UTC), recorder_id=self.recorder_id,
                                           last_segment_end=self.last_end, codec=codec, detail=detail)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("dvr.health_not_recorded", camera_id=str(t.camera_id), error=str(exc))
        if state in _HEALTH_SIGNALS:
            # The camera's health, as the recorder sees the main stream (combined with the detector's view).
            signal_state = "degraded" if state == "recording" and self.bitrate_degraded else _HEALTH_SIGNALS[state]
            await HealthReporter(self.db, "recorder").report(t.tenant_id, t.camera_id, signal_state, detail)

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


def since(ts: datetime) -> timedelta:
    return datetime.now(UTC) - ts
