"""One upstream session: a supervised ffmpeg remuxing a camera's stream into fragmented MP4, fanned out to every
viewer of that camera and stream, with offline/online status, reconnection and the H.265 check."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.logging import get_logger, redact_credentials
from core.masks import cover_filter
from live import protocol
from live.errors import CODEC_UNSUPPORTED, INTERNAL
from live.fmp4 import FragmentSplitter, StreamError, track_info
from live.model import CameraSource, TrackInfo
from live.rules import backoff_delay, offline_reason, playable
from live.settings import LiveSettings

log = get_logger(__name__)

_PR_SET_PDEATHSIG = 1
_prctl: Any
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: children are stopped by the gateway's shutdown path only
    _prctl = None


def _child_setup() -> None:
    # A gateway killed with -9 must not leave ffmpeg pulling the camera with nobody to send to.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# What ffmpeg may open: the pipe carrying the input script, then the camera's RTSP(S) stream; nothing else (no file://,
# no http://), whatever a stream URL says.
_PROTOCOLS = "pipe,rtsp,rtsps,tcp,udp,rtp,tls"
# A short probe: the picture's parameters come with the first keyframe; the default 5 s delays every start.
_PROBE = ("analyzeduration", "500000", "probesize", "500000", "fflags", "nobuffer")


def input_script(settings: LiveSettings, url: str) -> bytes:
    """The camera as a one-entry ffconcat script, read by ffmpeg from an inherited pipe: the URL, credentials included,
    never appears in ffmpeg's argv (which `ps` and /proc/<pid>/cmdline show to every user of the machine). ffmpeg
    takes RTSP credentials only from the URL's userinfo, so this is how the recorder (dvr.recorder) passes them too;
    the RTSP and probe options become the entry's `option` lines."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise ValueError("the stream URL contains control characters")
    quoted = "'" + url.replace("'", "'\\''") + "'"
    options = [("rtsp_transport", "tcp"), ("timeout", str(int(settings.rtsp_timeout_s * 1_000_000))),
               *zip(_PROBE[::2], _PROBE[1::2], strict=True)]
    lines = ["ffconcat version 1.0", f"file {quoted}", *(f"option {name} {value}" for name, value in options)]
    return ("\n".join(lines) + "\n").encode()


def ffmpeg_command(settings: LiveSettings, source: CameraSource, *, input_fd: int) -> list[str]:
    """The camera (from the script on `input_fd`) over RTSP/TCP, its first video stream copied (or, for a camera with
    live_transcode or privacy masks, encoded to H.264 with a keyframe every transcode_gop_s, masks blacked out) into
    fragmented MP4 on stdout: an empty moov first (the init segment), then a fragment every `fragment_ms` and at
    every keyframe. A frame waits in ffmpeg until its fragment is cut, so short fragments are what keeps the live
    view close to the camera (one per keyframe interval would hold the first frame of each a whole interval).
    `min_frag_duration` (1 ms) never cuts between packets of one instant, so a keyframe the camera sends as several
    packets stays whole, in the fragment it opens."""
    command = [
        settings.ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
        *(f"-{option}" if index % 2 == 0 else option for index, option in enumerate(_PROBE)),
        "-f", "concat", "-safe", "0", "-protocol_whitelist", _PROTOCOLS, "-i", f"pipe:{input_fd}",
        "-map", "0:v:0", "-an", "-sn", "-dn",
    ]
    if source.encoded:
        if source.masks:
            command += ["-vf", cover_filter(source.masks)]
        gop = settings.transcode_gop_s
        command += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                    "-force_key_frames", f"expr:gte(t,n_forced*{gop:g})", "-sc_threshold", "0"]
    else:
        command += ["-c", "copy"]
    return [*command, "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof",
            "-frag_duration", str(settings.fragment_ms * 1000), "-min_frag_duration", "1000", "pipe:1"]


@dataclass(frozen=True)
class Closing:
    """The last item of a viewer's queue: close the socket with this code and reason."""

    code: int
    reason: str


class _Fragment:
    """A queued media fragment (compared by identity: two fragments never are the same item)."""

    __slots__ = ("data", "keyframe")

    def __init__(self, data: bytes, keyframe: bool) -> None:
        self.data = data
        self.keyframe = keyframe


class Viewer:
    """What one socket is to be sent, in order. Status messages and init segments are never dropped. Media starts at
    a fragment that opens on a keyframe (a joiner waits for the next one); a viewer that falls behind by more than
    `max_fragments` fragments loses the oldest, whole keyframe intervals at a time (or everything queued, then waits
    for the next keyframe), so its decoder always resumes on a picture it can decode, at the live edge."""

    def __init__(self, max_fragments: int) -> None:
        self._items: deque[str | bytes | _Fragment | Closing] = deque()
        self._fragments = 0
        self._ready = asyncio.Event()
        self._max = max_fragments
        self._decodable = False
        self.dropped = 0
        self.closing: Closing | None = None

    def send_text(self, text: str) -> None:
        self._put(text)

    def send_init(self, data: bytes) -> None:
        # A new init segment (ffmpeg restarted) makes the fragments still queued from the previous run useless.
        if self._fragments:
            self._items = deque(i for i in self._items if not isinstance(i, _Fragment))
            self._fragments = 0
        self._decodable = False
        self._put(data)

    def send_fragment(self, data: bytes, *, keyframe: bool = True) -> None:
        if self.closing is not None:
            return
        if not (self._decodable or keyframe):
            self.dropped += 1
            return
        if self._fragments >= self._max:
            self._drop_backlog(keyframe)
            if not (self._decodable or keyframe):
                self.dropped += 1
                return
        self._decodable = True
        self._fragments += 1
        self._put(_Fragment(data, keyframe))

    def _drop_backlog(self, incoming_keyframe: bool) -> None:
        """Drop queued fragments up to the newest queued keyframe (or all of them when the incoming fragment is one,
        or when that would still leave the queue full)."""
        queued = [item for item in self._items if isinstance(item, _Fragment)]
        newest_key = max((n for n, item in enumerate(queued) if item.keyframe), default=None)
        if incoming_keyframe or newest_key is None or len(queued) - newest_key >= self._max:
            cut, self._decodable = len(queued), False
        else:
            cut = newest_key
        gone = {id(item) for item in queued[:cut]}
        self._items = deque(item for item in self._items if id(item) not in gone)
        self._fragments -= cut
        self.dropped += cut

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = Closing(code, reason)
            self._items.append(self.closing)
            self._ready.set()

    def _put(self, item: str | bytes | _Fragment) -> None:
        if self.closing is None:
            self._items.append(item)
            self._ready.set()

    async def next(self) -> str | bytes | Closing:
        """The next text frame, binary frame or closing, waiting for one."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, _Fragment):
            self._fragments -= 1
            return item.data
        return item


class StreamRemuxer:
    """One camera stream for every viewer of it: one ffmpeg at a time, restarted with capped, jittered backoff while
    the camera is unreachable; viewers get `offline` (with the reason) when it stops, `online` and a fresh init
    segment when it is back; an H.265 stream without transcode gets `codec_unsupported` and ends the session."""

    def __init__(
        self,
        source: CameraSource,
        settings: LiveSettings,
        *,
        on_done: Callable[[StreamRemuxer], None],
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.viewers: set[Viewer] = set()
        self.state = "connecting"
        self.ffmpeg_starts = 0
        self.finished = False
        self._on_done = on_done
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._status = protocol.connecting(source.camera_id, source.stream)
        self._init: bytes | None = None
        self._offline_since: datetime | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        """Whether an ffmpeg of this session is alive now."""
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"live-{self.source.camera_id}-{self.source.stream}")

    def add(self, viewer: Viewer) -> None:
        """A viewer joins: the current status, then (when online) the init segment; fragments follow from the next
        keyframe."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self.viewers.add(viewer)
        viewer.send_text(self._status)
        if self.state == "online" and self._init is not None:
            viewer.send_init(self._init)
        elif self.state == "codec_unsupported":
            # Joined a session that is ending for its codec: told so, like the viewers it had.
            viewer.close(CODEC_UNSUPPORTED, "the camera's codec does not play in browsers: set live_transcode")

    def remove(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        if not self.viewers and not self.finished and self._linger is None:
            self._linger = asyncio.get_running_loop().call_later(self.settings.linger_s, self._linger_over)

    def _linger_over(self) -> None:
        self._linger = None
        if not self.viewers:
            self._on_done(self)

    async def stop(self) -> None:
        """Stop ffmpeg and the supervision loop (viewers are the caller's to close)."""
        self._stop.set()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self._kill()
        if self._task is not None and self._task is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.finished = True

    def _kill(self) -> None:
        # os.kill rather than Process.kill: the latter polls first and may reap a child that has just exited, under
        # the feet of asyncio's child watcher. Until the watcher reaps it the pid cannot be reused, so this is safe.
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGKILL)

    async def _run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                unsupported = await self._run_once()
                if unsupported or self._stop.is_set():
                    break
                if time.monotonic() - started > self.settings.stable_after_s:
                    attempt = 0
                delay = backoff_delay(attempt, base_s=self.settings.backoff_base_s, cap_s=self.settings.backoff_cap_s,
                                      rng=self._rng)
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
        except Exception:
            log.exception("live.session_failed", camera_id=str(self.source.camera_id), stream=self.source.stream)
            self._go_offline("the gateway failed to read the stream")
            for viewer in list(self.viewers):
                viewer.close(INTERNAL, "the gateway failed to read the stream; reopen the view")
        finally:
            self.finished = True
            if not self._stop.is_set():
                self._on_done(self)

    async def _run_once(self) -> bool:
        """One ffmpeg run; True when the stream's codec cannot play and the session must end."""
        source = self.source
        self.ffmpeg_starts += 1
        try:
            script = input_script(self.settings, source.url)
        except ValueError as exc:
            self._go_offline(str(exc))
            return False
        # A few hundred bytes: the pipe's buffer holds them until ffmpeg reads, so the write never blocks.
        script_fd, writer = os.pipe()
        try:
            try:
                os.write(writer, script)
            finally:
                os.close(writer)
            process = await asyncio.create_subprocess_exec(
                *ffmpeg_command(self.settings, source, input_fd=script_fd), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, pass_fds=(script_fd,),
                preexec_fn=_child_setup)
        except OSError as exc:
            self._go_offline(f"cannot start ffmpeg: {exc}")
            return False
        finally:
            os.close(script_fd)
        self._process = process
        if self._stop.is_set():
            self._kill()
        stderr_tail: deque[str] = deque(maxlen=20)
        stderr_task = asyncio.create_task(_read_stderr(process, stderr_tail))
        assert process.stdout is not None
        splitter = FragmentSplitter()
        stalled_s: float | None = None
        broken: str | None = None
        unsupported = False
        try:
            while not unsupported:
                try:
                    chunk = await asyncio.wait_for(process.stdout.read(1 << 18), timeout=self.settings.stall_after_s)
                except TimeoutError:
                    stalled_s = self.settings.stall_after_s
                    break
                if not chunk:
                    break
                for unit in splitter.feed(chunk):
                    if unit.kind == "init":
                        track = track_info(unit.data)
                        if not playable(track):
                            self._unsupported(track)
                            unsupported = True
                            break
                        self._online(track, unit.data)
                    elif self.state == "online":
                        for viewer in list(self.viewers):
                            viewer.send_fragment(unit.data, keyframe=unit.keyframe)
        except StreamError as exc:
            broken = f"unreadable stream from the camera: {exc}"
        finally:
            self._kill()
            await process.wait()
            await stderr_task
            self._process = None
        if unsupported or self._stop.is_set():
            return unsupported
        self._go_offline(broken or offline_reason(stderr_tail, stalled_s=stalled_s, returncode=process.returncode))
        return False

    def _online(self, track: TrackInfo, init: bytes) -> None:
        source = self.source
        was = self.state
        self.state, self._init, self._offline_since = "online", init, None
        self._status = protocol.online(source.camera_id, source.stream, track, transcoded=source.encoded,
                                       masked=bool(source.masks))
        for viewer in list(self.viewers):
            viewer.send_text(self._status)
            viewer.send_init(init)
        log.info("live.online", camera_id=str(source.camera_id), stream=source.stream.value, codec=track.codec,
                 width=track.width, height=track.height, was=was, transcoded=source.encoded,
                 masks=len(source.masks))

    def _go_offline(self, reason: str) -> None:
        source = self.source
        if self._offline_since is None:
            self._offline_since = datetime.now(UTC)
        self._status = protocol.offline(source.camera_id, source.stream, reason, self._offline_since)
        self._init = None
        if self.state != "offline":
            # Said once per outage; a viewer joining later gets the latest reason with the status.
            for viewer in list(self.viewers):
                viewer.send_text(self._status)
            log.warning("live.offline", camera_id=str(source.camera_id), stream=source.stream.value, reason=reason)
        self.state = "offline"

    def _unsupported(self, track: TrackInfo) -> None:
        source = self.source
        self.state = "codec_unsupported"
        self._status = protocol.codec_unsupported(source.camera_id, source.stream, track)
        for viewer in list(self.viewers):
            viewer.send_text(self._status)
            viewer.close(CODEC_UNSUPPORTED, "the camera's codec does not play in browsers: set live_transcode")
        log.warning("live.codec_unsupported", camera_id=str(source.camera_id), stream=source.stream.value,
                    codec=track.codec)


async def _read_stderr(process: asyncio.subprocess.Process, tail: deque[str]) -> None:
    assert process.stderr is not None
    async for raw in process.stderr:
        # ffmpeg names the URL it failed to open, credentials included: they are redacted before anything keeps it.
        tail.append(redact_credentials(raw.decode(errors="replace").rstrip()))
