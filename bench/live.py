"""Live video benchmark: gateway-to-screen latency in Chromium, and sub-stream viewers per 2 cores against a plain
per-viewer ffmpeg remux of the same cameras, in the same run.

The gateway runs as it is deployed (`python -m live`, its own process, tickets issued by the live service, Postgres),
the cameras are simulated (camsim: footage at real-time pace, a keyframe every second; their CPU is not counted).

* **Latency** (one camera's sub stream): a WebSocket viewer in this process notes when each fragment arrives (A, on
  this machine's wall clock) and reads its media span [start, end) from the fragment itself (tfdt, trun durations,
  the track's timescale from the init segment). A page in Chromium, served from 127.0.0.1 by this process, watches
  the same camera's stream (the same session, so the same fragments) through Media Source Extensions in `segments`
  mode and notes each presented frame's media time and wall time (`requestVideoFrameCallback`). ffmpeg cuts a
  fragment when the frame after its last one arrives, and the camera streams in real time, so the gateway received
  the frame at media time t at about A - (end - t); latency = presented - that.
* **Viewers per 2 cores**: N WebSocket viewers spread over the cameras read and discard everything; each must keep
  receiving the stream's media time at its real pace (no hole in the fragments' decode times, no silence over 3 s,
  not closed). The CPU of the gateway and its ffmpeg children over a fixed window gives N x 2 / cores used. The
  baseline, in the same run, on the same cameras: N plain `ffmpeg -c copy` remuxes to fragmented MP4 files, one per
  viewer, as a gateway without shared sessions would run, counted the same way.

`python -m bench.live [--cameras 10] [--steps 25,50,100,150,200] [--window 20] [--latency-seconds 45]` writes
bench/results/live.json.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import resource
import signal
import statistics
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from bench.common import write_result
from camsim.footage import FOOTAGES
from camsim.simulator import CameraSimulator, CameraSpec
from cli.database import department_database
from core.db import Database, open_database
from core.embedded import wait_for_port
from core.migrate import drop_database, prepare_database
from core.ports import free_port
from core.settings import DatabaseSettings, Settings
from core.tenancy import Principal, Role, Scope
from live.fmp4 import child_boxes, find_boxes
from live.model import Stream
from live.service import LiveService
from live.settings import LiveSettings
from live.tickets import TicketSigner
from tests.browser.chromium import launched_chromium
from tests.processes import ModuleProcess

ROOT = Path(__file__).resolve().parent
CACHE = ROOT.parent / "var" / "camsim"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GOAL_LATENCY_P95_MS = 1000
GOAL_VIEWERS_PER_2_CORES = 100
GOAL_RATIO_TO_BASELINE = 0.8
# A viewer that gets no fragment for this long is not keeping up (a fragment is at most a keyframe interval, 1 s).
SILENCE_LIMIT_S = 3.0
# A viewer keeps up when the media time it received over the window is at least this share of the window (the
# fragments straddling the window's edges make the rest).
KEEP_UP_SHARE = 0.85
# The machine counts as saturated when its cores were this busy over a window: figures beyond are not trusted.
SATURATED_SHARE = 0.95
# The baseline's steps go on while no more than this share of its remuxes fall behind (one stalled RTSP connection is
# not the machine running out); a step counts in the headline only when every remux kept up.
BASELINE_BEHIND_SHARE = 0.1
# How often a baseline remux reports the media time it has muxed (ffmpeg -progress).
PROGRESS_PERIOD_S = 0.5
# Frames presented in the page's first seconds are left out: the first picture waits for a keyframe and a seek.
LATENCY_WARMUP_S = 3.0
# The page jumps to the live edge when playback falls this far behind the newest fragment (a stall, dropped data).
LIVE_EDGE_SLACK_S = 1.0
# sample_is_non_sync_sample, in an ISO BMFF sample's flags.
NON_SYNC_SAMPLE = 0x00010000
METHOD = (
    "Gateway: `python -m live` in its own process, tickets issued by the live service over a fresh database, "
    "VIGIE_LIVE_VIEWER_CAP lifted; simulated cameras (camsim, {footage} footage, sub stream {sub}, a keyframe a "
    "second, CPU not counted). Latency: on one camera's sub stream, a WebSocket viewer in the bench process stamps "
    "each fragment's arrival A (time.time(), CLOCK_REALTIME) and reads its media span [start, end) from tfdt, the "
    "trun (or tfhd/trex default) sample durations and the init segment's mdhd timescale; a page in Debian's "
    "Chromium (headless, Playwright), served from 127.0.0.1 so it has an origin the gateway allows, watches the same "
    "session over MSE in `segments` mode (so a frame's mediaTime is the stream's own time, corrected by the offset "
    "between video.buffered.start(0) and the first keyframe fragment it was given), plays muted, jumps to the live "
    "edge when it falls more than a fragment plus {slack:g} s behind the newest data, and stamps every presented "
    "frame with requestVideoFrameCallback "
    "(performance.timeOrigin + now, CLOCK_REALTIME at its origin, corrected by the offset to time.time() measured by "
    "a round trip). The gateway received the frame at media time t at about A - (end - t): ffmpeg cuts a fragment "
    "when the frame after it arrives and the camera streams in real time; A includes ffmpeg's flush and the hop to "
    "the bench's viewer (loopback), so latency is understated by those. Frames of the first "
    "{warmup:g} s are left out. Capacity: N viewers (Python websockets clients offering permessage-deflate, as "
    "browsers do) spread over the cameras' sub streams read and discard everything; a viewer keeps up when it is "
    "not closed, never waits more than {silence:g} s for a fragment, gets no hole in the fragments' decode times "
    "(the gateway drops fragments for slow viewers) and receives at least {share:.0%} of the window in media time, "
    "less two fragments for those straddling its edges. CPU = utime + stime from /proc over a {window:g} s window "
    "after the viewers got their first fragments: the gateway process with its ffmpeg children "
    "(of_which_children_cpu_s: theirs; Postgres, which the gateway asks at each viewing's start and heartbeat, is not "
    "counted); viewers_per_2_cores = N x 2 / (CPU s / window). Baseline, same run, same cameras, right after each "
    "gateway step: N `ffmpeg -rtsp_transport tcp -i <sub url> -c copy -f mp4 "
    "-movflags frag_keyframe+empty_moov <file>` (one per viewer, files in a temporary folder), counted the same "
    "way; one keeps up when it is alive and the media time it reports having muxed (-progress, every "
    "{progress:g} s; its file's size lags by ffmpeg's write buffer) grows as the window does. Steps stop "
    "when the gateway's viewers stop keeping up or the machine is saturated ({saturated:.0%} of its cores busy); "
    "the baseline stops at the first step where it saturates the machine or over {baseline_behind:.0%} of its "
    "remuxes fall behind. Headline at the largest N "
    "where every gateway viewer kept up; the baseline's at the same N, or at its largest kept-up N below when it "
    "could not run there (baseline_at_viewers says which). Then the headline's N once more with viewers that do not "
    "offer permessage-deflate (live_step_without_permessage_deflate): what compressing video on the socket would "
    "cost (viewers_with_permessage_deflate says whether the gateway accepted it)."
)


@dataclass(frozen=True)
class TrackTiming:
    """What the init segment says about the video track's time: its timescale and the fragments' defaults."""

    timescale: int
    default_duration: int = 0
    default_flags: int = 0

    @classmethod
    def of(cls, init: bytes) -> TrackTiming:
        mdhd = find_boxes(init, 0, len(init), [b"moov", b"trak", b"mdia", b"mdhd"])
        if not mdhd:
            raise ValueError("the init segment has no mdhd")
        payload = mdhd[0][0]
        # A full box: version 1 has 64-bit creation and modification times before the timescale.
        timescale_at = payload + (20 if init[payload] == 1 else 12)
        (timescale,) = struct.unpack_from(">I", init, timescale_at)
        trex = find_boxes(init, 0, len(init), [b"moov", b"mvex", b"trex"])
        if not trex:
            return cls(timescale)
        # version/flags, track_ID, default_sample_description_index, then duration, size, flags.
        duration, _size, flags = struct.unpack_from(">III", init, trex[0][0] + 12)
        return cls(timescale, duration, flags)


@dataclass(frozen=True)
class Span:
    """A fragment's decode times [start, end) in the track's timescale, and whether it opens on a keyframe."""

    start: int
    end: int
    keyframe: bool


def fragment_span(fragment: bytes, timing: TrackTiming) -> Span:
    trafs = find_boxes(fragment, 0, len(fragment), [b"moof", b"traf"])
    if not trafs:
        raise ValueError("a media fragment without moof/traf")
    traf_start, traf_end = trafs[0]
    default_duration, default_flags = timing.default_duration, timing.default_flags
    start: int | None = None
    total = 0
    first_flags: int | None = None
    for kind, payload, _end in child_boxes(fragment, traf_start, traf_end):
        (flags,) = struct.unpack_from(">I", fragment, payload)
        flags &= 0xFFFFFF
        if kind == b"tfhd":
            at = payload + 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
            if flags & 0x08:
                (default_duration,) = struct.unpack_from(">I", fragment, at)
                at += 4
            at += 4 if flags & 0x10 else 0
            if flags & 0x20:
                (default_flags,) = struct.unpack_from(">I", fragment, at)
        elif kind == b"tfdt":
            version = fragment[payload]
            (start,) = struct.unpack_from(">Q" if version == 1 else ">I", fragment, payload + 4)
        elif kind == b"trun":
            (count,) = struct.unpack_from(">I", fragment, payload + 4)
            at = payload + 8 + (4 if flags & 0x001 else 0)
            run_first_flags = None
            if flags & 0x004:
                (run_first_flags,) = struct.unpack_from(">I", fragment, at)
                at += 4
            fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
            for index in range(count):
                values = dict(zip(fields, struct.unpack_from(f">{len(fields)}I", fragment, at), strict=True))
                at += 4 * len(fields)
                total += values.get(0x100, default_duration)
                if first_flags is None:
                    first_flags = run_first_flags if index == 0 and run_first_flags is not None else values.get(
                        0x400, default_flags)
    if start is None:
        raise ValueError("a media fragment without tfdt")
    keyframe = not ((default_flags if first_flags is None else first_flags) & NON_SYNC_SAMPLE)
    return Span(start, start + total, keyframe)


def _stat_fields(pid: int) -> list[str]:
    # The command name may hold spaces and parentheses: fields start after its closing parenthesis.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_s(pid: int) -> float:
    """CPU seconds (utime + stime) of a live process."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live children (the gateway and its ffmpeg)."""
    fields = _stat_fields(pid)
    total = sum(int(v) for v in fields[11:15]) / CLOCK_TICKS
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread just ended
            continue
        for child in children:
            with contextlib.suppress(OSError):  # just ended: its CPU moves to the parent's reaped total
                total += process_cpu_s(int(child))
    return total


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of every core since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


@dataclass
class Window:
    """CPU of the measured processes (and of their children apart), this process and the cameras, and how busy the
    machine was, over a window."""

    measured: list[int]
    cameras: list[int]
    started_at: float = 0.0
    seconds: float = 0.0
    measured_cpu_s: float = 0.0
    children_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    cameras_cpu_s: float = 0.0
    machine_busy: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _start: tuple[float, float, float, float, tuple[int, int]] = (0.0, 0.0, 0.0, 0.0, (0, 0))

    def _sample(self) -> tuple[float, float, float, float, tuple[int, int]]:
        measured = own = 0.0
        for pid in self.measured:
            with contextlib.suppress(OSError):  # a baseline ffmpeg that died is judged by its own check
                measured += tree_cpu_s(pid)
                own += process_cpu_s(pid)
        cameras = 0.0
        for pid in self.cameras:
            with contextlib.suppress(OSError):
                cameras += process_cpu_s(pid)
        return measured, measured - own, own_cpu_s(), cameras, machine_jiffies()

    def open(self) -> None:
        self.started_at = time.monotonic()
        self._start = self._sample()

    def close(self) -> None:
        measured, children, client, cameras, (busy, total) = self._sample()
        self.seconds = time.monotonic() - self.started_at
        self.measured_cpu_s = measured - self._start[0]
        self.children_cpu_s = children - self._start[1]
        self.client_cpu_s = client - self._start[2]
        self.cameras_cpu_s = cameras - self._start[3]
        busy0, total0 = self._start[4]
        self.machine_busy = (busy - busy0) / max(total - total0, 1)
        self.load = os.getloadavg()

    def figures(self, viewers: int) -> dict[str, Any]:
        cores = self.measured_cpu_s / self.seconds
        return {
            "viewers": viewers, "window_s": round(self.seconds, 2), "cpu_s": round(self.measured_cpu_s, 3),
            "of_which_children_cpu_s": round(self.children_cpu_s, 3), "cores_used": round(cores, 4),
            "viewers_per_2_cores": round(viewers * 2 / cores, 1) if cores > 0 else None,
            "cameras_cpu_s": round(self.cameras_cpu_s, 3), "machine_busy_share": round(self.machine_busy, 3),
            "loadavg": [round(v, 2) for v in self.load],
        }


@dataclass
class World:
    """A tenant of its own department, its cameras, an operator with a live session, and tickets for them."""

    service: LiveService
    principal: Principal
    cameras: list[uuid.UUID]

    async def ticket(self, camera_id: uuid.UUID) -> str:
        grant = await self.service.issue_ticket(self.principal, camera_id, stream=Stream.SUB, motive="banc d'essai")
        return grant.ticket


async def seed(settings: Settings, sub_urls: list[str]) -> tuple[Principal, list[uuid.UUID]]:
    department_id, tenant_id, site_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    user_id, membership_id, session_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cameras = [uuid.uuid4() for _ in sub_urls]
    async with department_database(settings) as db, db.cross_tenant("bench setup") as conn, conn.transaction():
        await conn.execute("INSERT INTO departments (id, code, name) VALUES ($1, '976', 'bench live')", department_id)
        await conn.execute("INSERT INTO tenants (id, department_id, kind, name) VALUES ($1, $2, 'department', 'bench')",
                           tenant_id, department_id)
        await conn.execute("INSERT INTO sites (id, tenant_id, name, kind, insee_code) "
                           "VALUES ($1, $2, 'bench', 'public_space', '95127')", site_id, tenant_id)
        await conn.execute(
            "INSERT INTO users (id, department_id, email, display_name, habilitation_expires_on) "
            "VALUES ($1, $2, 'operateur@bench.live', 'Opérateur', $3)",
            user_id, department_id, date.today() + timedelta(days=300))
        await conn.execute("INSERT INTO memberships (id, tenant_id, user_id, role) VALUES ($1, $2, $3, 'operator')",
                           membership_id, tenant_id, user_id)
        await conn.execute(
            "INSERT INTO auth_sessions (id, user_id, membership_id, amr, expires_at) "
            "VALUES ($1, $2, $3, '{pwd,otp}', now() + interval '1 day')", session_id, user_id, membership_id)
        for index, (camera_id, url) in enumerate(zip(cameras, sub_urls, strict=True)):
            await conn.execute(
                "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, sub_stream_url, insee_code, "
                "status) VALUES ($1, $2, $3, $4, $5, $5, '95127', 'online')",
                camera_id, tenant_id, site_id, f"bench-live-{index}", url)
    principal = Principal(user_id=user_id, session_id=session_id, role=Role.OPERATOR, home_tenant_id=tenant_id,
                          department_id=department_id, scope=Scope(frozenset({tenant_id}), department_id),
                          display_name="Opérateur")
    return principal, cameras


@contextlib.contextmanager
def gateway_process(settings: Settings, work: Path, page_origin: str) -> Iterator[tuple[str, int]]:
    """`python -m live` on a free port; yields its ws:// base and pid."""
    port = free_port()
    env = settings.child_env(
        VIGIE_LOG_LEVEL="WARNING", VIGIE_LIVE_PORT=str(port), VIGIE_LIVE_PUBLIC_URL=f"ws://127.0.0.1:{port}",
        VIGIE_LIVE_METRICS_ADDRESS="", VIGIE_LIVE_VIEWER_CAP="1000",
        VIGIE_LIVE_ALLOWED_ORIGINS=json.dumps([page_origin]))
    process = ModuleProcess("live", env, work / "live.log")
    process.start()
    try:
        wait_for_port("127.0.0.1", port, 30)
        assert process.proc is not None
        yield f"ws://127.0.0.1:{port}", process.proc.pid
    finally:
        process.stop()


@dataclass
class Arrival:
    at: float
    span: Span


@dataclass
class WebSocketViewer:
    """A viewer that reads everything the gateway sends and checks it keeps coming at the stream's pace."""

    url: str
    origin: str
    keep_arrivals: bool = False
    # Browsers offer permessage-deflate on every WebSocket; the bench's viewers do the same unless told not to.
    offer_deflate: bool = True
    timing: TrackTiming | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    fragments: int = 0
    received_bytes: int = 0
    media_units: int = 0
    holes: int = 0
    restarts: int = 0
    closed: str | None = None
    deflate: bool = False
    last_at: float | None = None
    longest_silence_s: float = 0.0
    longest_fragment_s: float = 0.0
    _expect_init: bool = False
    _next_start: int | None = None
    _first: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _socket: ClientConnection | None = None

    def start(self, ticket: str) -> None:
        self._task = asyncio.create_task(self._run(ticket))

    async def first_fragment(self, within: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), within)
        return self._first.is_set()

    async def _run(self, ticket: str) -> None:
        try:
            async with connect(self.url, origin=Origin(self.origin), max_size=None, open_timeout=20,
                               compression="deflate" if self.offer_deflate else None) as ws:
                self._socket = ws
                extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "") if ws.response else ""
                self.deflate = "permessage-deflate" in extensions
                await ws.send(json.dumps({"ticket": ticket}))
                async for frame in ws:
                    self._on_frame(frame)
            self.closed = "closed by the gateway"
        except ConnectionClosed as exc:
            self.closed = f"closed {exc.rcvd.code if exc.rcvd else '?'}: {exc.rcvd.reason if exc.rcvd else ''}"
        except (OSError, InvalidStatus, TimeoutError, ValueError) as exc:
            self.closed = f"failed: {exc!r}"

    def _on_frame(self, frame: str | bytes) -> None:
        now = time.time()
        if isinstance(frame, str):
            message = json.loads(frame)
            if message.get("state") == "online":
                self._expect_init = True
                self.restarts += self.timing is not None
            elif message.get("type") == "error" or message.get("state") in ("offline", "codec_unsupported"):
                self.closed = self.closed or f"{message.get('state') or message.get('type')}: {message.get('reason')}"
            return
        if self._expect_init:
            self._expect_init = False
            self.timing = TrackTiming.of(frame)
            self._next_start = None
            return
        if self.timing is None:
            raise ValueError("a media fragment before the init segment")
        span = fragment_span(frame, self.timing)
        if self._next_start is not None and span.start != self._next_start:
            self.holes += 1
        self._next_start = span.end
        if self.last_at is not None:
            self.longest_silence_s = max(self.longest_silence_s, now - self.last_at)
        self.last_at = now
        self.fragments += 1
        self.received_bytes += len(frame)
        self.media_units += span.end - span.start
        self.longest_fragment_s = max(self.longest_fragment_s, (span.end - span.start) / self.timing.timescale)
        if self.keep_arrivals:
            self.arrivals.append(Arrival(now, span))
        self._first.set()

    @property
    def streaming(self) -> bool:
        """Whether a fragment has come yet."""
        return self._first.is_set()

    def counters(self) -> tuple[int, int, int, int]:
        return self.fragments, self.received_bytes, self.media_units, self.holes

    def reset_silence(self) -> None:
        self.longest_silence_s = 0.0

    async def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._socket.close(), 5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Vigie live latency</title></head>
<body><video id="video" muted playsinline width="384" height="288"></video>
<script>
const video = document.getElementById("video");
window.bench = {frames: [], errors: [], statuses: [], jumps: 0, firstStart: null, bufferedStart: null, closed: null};
let buffer = null, queue = [], timescale = null, expectInit = false, started = false, newest = null, fragment = 1.0;
// Index of a box's type in the bytes (-1 when absent): tfdt sits near a fragment's start, mdhd in the init segment.
function boxAt(bytes, type) {
  const code = [...type].map(c => c.charCodeAt(0));
  for (let i = 4; i + 4 <= bytes.length; i++)
    if (bytes[i] === code[0] && bytes[i + 1] === code[1] && bytes[i + 2] === code[2] && bytes[i + 3] === code[3])
      return i;
  return -1;
}
function mdhdTimescale(bytes) {
  const i = boxAt(bytes, "mdhd"), view = new DataView(bytes.buffer, bytes.byteOffset);
  return view.getUint32(i + (bytes[i + 4] === 1 ? 24 : 16));
}
function tfdtSeconds(bytes) {
  const i = boxAt(bytes, "tfdt"), view = new DataView(bytes.buffer, bytes.byteOffset);
  return (bytes[i + 4] === 1 ? Number(view.getBigUint64(i + 8)) : view.getUint32(i + 8)) / timescale;
}
function feed() {
  if (!buffer || buffer.updating || !queue.length) return;
  const item = queue.shift();
  if (item.start !== null) {
    if (newest !== null && item.start > newest) fragment = item.start - newest;
    newest = item.start;
  }
  try { buffer.appendBuffer(item.data); } catch (e) { window.bench.errors.push("append: " + e); }
}
function appended() {
  const ranges = video.buffered;
  if (!started && ranges.length) {
    started = true;
    window.bench.bufferedStart = ranges.start(0);
    video.currentTime = ranges.start(0);
    video.play().catch(e => window.bench.errors.push("play: " + e));
  } else if (started && ranges.length) {
    // Behind the live edge (a stall, a hole left by dropped fragments): jump to the newest fragment.
    const last = ranges.length - 1, end = ranges.end(last);
    if (end - video.currentTime > fragment + LIVE_EDGE_SLACK_S || video.currentTime < ranges.start(last)) {
      video.currentTime = Math.max(ranges.start(last), end - fragment);
      window.bench.jumps++;
    }
  }
  feed();
}
function presented(now, meta) {
  window.bench.frames.push([meta.mediaTime, performance.timeOrigin + now]);
  video.requestVideoFrameCallback(presented);
}
video.requestVideoFrameCallback(presented);
window.startLive = (url, ticket) => {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => ws.send(JSON.stringify({ticket}));
  ws.onclose = (e) => { window.bench.closed = [e.code, e.reason]; };
  ws.onmessage = ({data}) => {
    if (typeof data === "string") {
      const message = JSON.parse(data);
      window.bench.statuses.push(message.state || message.type);
      if (message.state !== "online") return;
      expectInit = true; buffer = null; queue = []; started = false; newest = null;
      window.bench.firstStart = null;
      const media = new MediaSource();
      video.src = URL.createObjectURL(media);
      media.addEventListener("sourceopen", () => {
        buffer = media.addSourceBuffer(message.mime);
        buffer.mode = "segments";
        buffer.addEventListener("updateend", appended);
        buffer.addEventListener("error", () => window.bench.errors.push("source buffer error"));
        feed();
      }, {once: true});
      return;
    }
    const bytes = new Uint8Array(data);
    if (expectInit) {
      expectInit = false;
      timescale = mdhdTimescale(bytes);
      queue.push({data, start: null});
    } else {
      const start = tfdtSeconds(bytes);
      if (window.bench.firstStart === null) window.bench.firstStart = start;
      queue.push({data, start});
    }
    feed();
  };
  video.addEventListener("error", () => window.bench.errors.push("video: " + (video.error && video.error.message)));
};
</script></body></html>
""".replace("LIVE_EDGE_SLACK_S", str(LIVE_EDGE_SLACK_S))


@contextlib.contextmanager
def page_server() -> Iterator[str]:
    """The bench page on 127.0.0.1 (a real origin, which the gateway is told to allow); yields that origin."""
    body = PAGE.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def measure_latency(world: World, base: str, origin: str, seconds: float) -> dict[str, Any]:
    camera_id = world.cameras[0]
    url = f"{base}/live/cameras/{camera_id}?stream=sub"
    reference = WebSocketViewer(url, origin, keep_arrivals=True)
    reference.start(await world.ticket(camera_id))
    try:
        if not await reference.first_fragment(30):
            raise RuntimeError(f"the reference viewer got no fragment: {reference.closed}")
        async with launched_chromium() as browser:
            page = await browser.new_page()
            await page.goto(origin + "/")
            offsets = []
            for _ in range(5):
                before = time.time() * 1000
                in_page = await page.evaluate("performance.timeOrigin + performance.now()")
                after = time.time() * 1000
                offsets.append((after - before, in_page - (before + after) / 2))
            round_trip_ms, clock_offset_ms = min(offsets)
            await page.evaluate("([url, ticket]) => window.startLive(url, ticket)",
                                [url, await world.ticket(camera_id)])
            await asyncio.sleep(seconds)
            state: dict[str, Any] = await page.evaluate("window.bench")
            await page.close()
    finally:
        await reference.stop()
    timing = reference.timing
    if timing is None or not state["frames"] or state["firstStart"] is None or state["bufferedStart"] is None:
        diagnosis = {key: value for key, value in state.items() if key != "frames"}
        raise RuntimeError(f"the page presented no frame: {json.dumps(diagnosis)}")
    scale = timing.timescale
    arrivals = sorted(reference.arrivals, key=lambda a: a.span.start)
    starts = [a.span.start / scale for a in arrivals]
    # The page's first picture is the first keyframe it was given: its presentation time against its decode time is
    # the offset an edit list (or the browser) puts between mediaTime and the fragments' decode times.
    first_key = next((a for a in arrivals if a.span.start / scale >= state["firstStart"] - 1e-6 and a.span.keyframe),
                     None)
    if first_key is None:
        raise RuntimeError("the reference viewer never saw the page's first keyframe fragment")
    media_offset_s = state["bufferedStart"] - first_key.span.start / scale
    first_presented = state["frames"][0][1]
    latencies, after_fragment, unmatched = [], [], 0
    for media_time, presented_ms in state["frames"]:
        if presented_ms - first_presented < LATENCY_WARMUP_S * 1000:
            continue
        t = media_time - media_offset_s
        index = bisect.bisect_right(starts, t + 1e-6) - 1
        if index < 0 or t >= arrivals[index].span.end / scale - 1e-6:
            unmatched += 1
            continue
        arrival = arrivals[index]
        presented_s = (presented_ms - clock_offset_ms) / 1000
        received_s = arrival.at - (arrival.span.end / scale - t)
        latencies.append((presented_s - received_s) * 1000)
        after_fragment.append((presented_s - arrival.at) * 1000)
    if not latencies:
        raise RuntimeError(f"no presented frame matched a fragment ({unmatched} unmatched)")
    durations = [(a.span.end - a.span.start) / scale * 1000 for a in arrivals]
    return {
        "live_latency_p50_ms": round(statistics.median(latencies), 1),
        "live_latency_p95_ms": round(percentile(latencies, 0.95), 1),
        "live_latency_max_ms": round(max(latencies), 1),
        "fragment_to_present_p50_ms": round(statistics.median(after_fragment), 1),
        "fragment_to_present_p95_ms": round(percentile(after_fragment, 0.95), 1),
        "fragment_duration_ms": round(statistics.median(durations), 1),
        "latency_frames": len(latencies),
        "latency_frames_unmatched": unmatched,
        "latency_window_s": round((state["frames"][-1][1] - first_presented) / 1000 - LATENCY_WARMUP_S, 1),
        "latency_page_jumps_to_live_edge": state["jumps"],
        "latency_page_errors": state["errors"],
        "latency_media_offset_ms": round(media_offset_s * 1000, 1),
        "latency_clock": "CLOCK_REALTIME of this machine: time.time() in the bench, performance.timeOrigin + now in "
                         "Chromium, corrected by their offset measured by round trips",
        "latency_browser_clock_offset_ms": round(clock_offset_ms, 2),
        "latency_browser_clock_round_trip_ms": round(round_trip_ms, 2),
    }


@dataclass
class Verdict:
    kept_up: int
    behind: list[str]
    media_share_min: float
    bytes_per_s: float


async def gateway_step(world: World, base: str, origin: str, count: int, window_s: float, gateway_pid: int,
                       camera_pids: list[int], *, offer_deflate: bool = True) -> tuple[Window, Verdict, dict[str, Any]]:
    """`count` viewers over the cameras' sub streams; CPU of the gateway and its ffmpeg over the window."""
    viewers: list[WebSocketViewer] = []
    start_gate = asyncio.Semaphore(16)

    async def join(index: int) -> None:
        camera_id = world.cameras[index % len(world.cameras)]
        async with start_gate:
            viewer = WebSocketViewer(f"{base}/live/cameras/{camera_id}?stream=sub", origin, offer_deflate=offer_deflate)
            viewers.append(viewer)
            viewer.start(await world.ticket(camera_id))
            await viewer.first_fragment(5)

    try:
        await asyncio.gather(*(join(i) for i in range(count)))
        waiting = [v for v in viewers if not v.streaming]
        await asyncio.gather(*(v.first_fragment(30) for v in waiting))
        # Past the first fragments (each session's probe and first keyframe): the steady state is measured.
        await asyncio.sleep(3)
        window = Window([gateway_pid], camera_pids)
        before = [v.counters() for v in viewers]
        for viewer in viewers:
            viewer.reset_silence()
        window.open()
        await asyncio.sleep(window_s)
        window.close()
        now = time.time()
        after = [v.counters() for v in viewers]
        behind, shares, rates = [], [], []
        for index, (viewer, first, last) in enumerate(zip(viewers, before, after, strict=True)):
            scale = viewer.timing.timescale if viewer.timing else 1
            media = (last[2] - first[2]) / scale
            share = media / window.seconds
            silence = max(viewer.longest_silence_s, now - viewer.last_at if viewer.last_at else window.seconds)
            shares.append(share)
            rates.append((last[1] - first[1]) / window.seconds)
            problems = [
                *([viewer.closed] if viewer.closed else []),
                *([f"{last[3] - first[3]} holes"] if last[3] > first[3] else []),
                *([f"silent {silence:.1f} s"] if silence > SILENCE_LIMIT_S else []),
                *([] if keeps_pace(media, window.seconds, viewer.longest_fragment_s)
                  else [f"{media:.1f} s of media in {window.seconds:.1f} s"]),
            ]
            if problems:
                behind.append(f"viewer {index}: {', '.join(problems)}")
        deflate = sum(v.deflate for v in viewers)
    finally:
        await asyncio.gather(*(v.stop() for v in viewers))
    verdict = Verdict(count - len(behind), behind, min(shares), statistics.median(rates))
    return window, verdict, {"viewers_with_permessage_deflate": deflate}


class BaselineRemuxes:
    """Plain ffmpeg, one per viewer: what serving each viewer its own remux would cost."""

    def __init__(self, urls: list[str], out: Path) -> None:
        self.files = [out / f"viewer-{i}.mp4" for i in range(len(urls))]
        # Each remux's warnings go to a file beside its output: a remux that falls behind says why, if it knows.
        self.logs = [path.with_suffix(".log") for path in self.files]
        # Its progress too: the media time it has muxed, every half second, whatever the file's write buffering.
        self.progress = [path.with_suffix(".progress") for path in self.files]
        self.processes = []
        for url, path, log, progress in zip(urls, self.files, self.logs, self.progress, strict=True):
            with log.open("wb") as stderr:
                self.processes.append(subprocess.Popen(
                    ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-rtsp_transport", "tcp", "-i",
                     url, "-c", "copy", "-f", "mp4", "-movflags", "frag_keyframe+empty_moov",
                     "-progress", str(progress), "-stats_period", str(PROGRESS_PERIOD_S), str(path)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr))

    def muxed_seconds(self) -> list[float]:
        return [progress_seconds(path) or 0.0 for path in self.progress]

    def last_words(self, index: int) -> str:
        lines = self.logs[index].read_text(errors="replace").strip().splitlines()
        return lines[-1][-200:] if lines else "nothing logged"

    def sizes(self) -> list[int]:
        return [path.stat().st_size if path.exists() else 0 for path in self.files]

    async def writing(self, within: float) -> None:
        """Until every remux wrote its init segment and a first fragment (or `within` seconds)."""
        for _ in range(int(within * 2)):
            if min(self.sizes()) >= 4096:
                return
            await asyncio.sleep(0.5)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for path in (*self.files, *self.logs, *self.progress):
            path.unlink(missing_ok=True)


def progress_seconds(path: Path) -> float | None:
    """The media time an ffmpeg has muxed: the last `out_time_us` of its -progress file (None before the first)."""
    if not path.exists():
        return None
    muxed = None
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key == "out_time_us" and value.strip().isdigit():
            muxed = int(value) / 1e6
    return muxed


def keeps_pace(media_s: float, window_s: float, longest_fragment_s: float) -> bool:
    """Whether a viewer (or a remux) got the stream at its real pace over a window: at least KEEP_UP_SHARE of it in
    media time, less two fragments for those straddling the window's edges."""
    return media_s >= KEEP_UP_SHARE * window_s - 2 * longest_fragment_s


async def baseline_step(urls: list[str], count: int, window_s: float, out: Path,
                        camera_pids: list[int]) -> tuple[Window, Verdict]:
    remuxes = BaselineRemuxes([urls[i % len(urls)] for i in range(count)], out)
    try:
        await remuxes.writing(30)
        # ffmpeg probes its input for 5 s by default, then writes what it read meanwhile at once: past that burst.
        await asyncio.sleep(5)
        window = Window([p.pid for p in remuxes.processes], camera_pids)
        before, muxed_before = remuxes.sizes(), remuxes.muxed_seconds()
        window.open()
        await asyncio.sleep(window_s)
        window.close()
        after, muxed_after = remuxes.sizes(), remuxes.muxed_seconds()
        behind, rates, shares = [], [], []
        for index, (process, first, last, media) in enumerate(zip(
                remuxes.processes, before, after,
                (end - start for start, end in zip(muxed_before, muxed_after, strict=True)), strict=True)):
            rates.append((last - first) / window.seconds)
            shares.append(media / window.seconds)
            if process.poll() is not None:
                behind.append(f"ffmpeg {index}: exited {process.returncode} ({remuxes.last_words(index)})")
            elif not keeps_pace(media, window.seconds, PROGRESS_PERIOD_S):
                behind.append(f"ffmpeg {index}: muxed {media:.1f} s of media in {window.seconds:.1f} s "
                              f"({remuxes.last_words(index)})")
    finally:
        await asyncio.to_thread(remuxes.stop)
    verdict = Verdict(count - len(behind), behind, min(shares), statistics.median(rates))
    return window, verdict


async def measure_capacity(world: World, base: str, origin: str, urls: list[str], steps: list[int], window_s: float,
                           gateway_pid: int, camera_pids: list[int], work: Path, linger_s: float
                           ) -> dict[str, Any]:
    live_steps: list[dict[str, Any]] = []
    baseline_steps: list[dict[str, Any]] = []
    baseline_stopped: str | None = None
    stopped: str | None = None
    for count in steps:
        window, verdict, extra = await gateway_step(world, base, origin, count, window_s, gateway_pid, camera_pids)
        step = {**window.figures(count), "kept_up": verdict.kept_up, "behind": verdict.behind[:10],
                "media_share_min": round(verdict.media_share_min, 3),
                "stream_bytes_per_s": round(verdict.bytes_per_s), "client_cpu_s": round(window.client_cpu_s, 3),
                **extra}
        live_steps.append(step)
        print(f"gateway, {count} viewers: {json.dumps(step)}", flush=True)
        # The sessions stop once their last viewer left: the baseline runs without them.
        await asyncio.sleep(linger_s + 1)
        if baseline_stopped is None:
            base_window, base_verdict = await baseline_step(urls, count, window_s, work, camera_pids)
            base_step = {**base_window.figures(count), "kept_up": base_verdict.kept_up,
                         "behind": base_verdict.behind[:10], "media_share_min": round(base_verdict.media_share_min, 3),
                         "stream_bytes_per_s": round(base_verdict.bytes_per_s)}
            baseline_steps.append(base_step)
            print(f"baseline, {count} remuxes: {json.dumps(base_step)}", flush=True)
            if base_window.machine_busy >= SATURATED_SHARE:
                baseline_stopped = f"the machine was saturated at {count} remuxes"
            elif len(base_verdict.behind) > BASELINE_BEHIND_SHARE * count:
                baseline_stopped = f"{len(base_verdict.behind)} remuxes of {count} fell behind"
        if verdict.behind:
            stopped = f"viewers fell behind at {count}"
            break
        if window.machine_busy >= SATURATED_SHARE:
            stopped = f"the machine was saturated at {count} viewers"
            break
    kept = [s["viewers"] for s in live_steps if s["kept_up"] == s["viewers"]]
    without_deflate = None
    if kept:
        # The same load once more with viewers that do not offer permessage-deflate: what compressing video costs.
        await asyncio.sleep(linger_s + 1)
        window, verdict, extra = await gateway_step(world, base, origin, kept[-1], window_s, gateway_pid, camera_pids,
                                                    offer_deflate=False)
        without_deflate = {**window.figures(kept[-1]), "kept_up": verdict.kept_up, "behind": verdict.behind[:10],
                           "client_cpu_s": round(window.client_cpu_s, 3), **extra}
        print(f"gateway, {kept[-1]} viewers without permessage-deflate: {json.dumps(without_deflate)}", flush=True)
    return {"live_steps": live_steps, "baseline_steps": baseline_steps, "live_stopped": stopped,
            "baseline_stopped": baseline_stopped, "live_step_without_permessage_deflate": without_deflate}


def headline(capacity: dict[str, Any]) -> dict[str, Any]:
    kept = [s for s in capacity["live_steps"] if s["kept_up"] == s["viewers"]]
    live = kept[-1] if kept else None
    baselines = [s for s in capacity["baseline_steps"] if s["kept_up"] == s["viewers"]
                 and s["machine_busy_share"] < SATURATED_SHARE]
    same = [s for s in baselines if live is not None and s["viewers"] == live["viewers"]]
    below = [s for s in baselines if live is not None and s["viewers"] <= live["viewers"]]
    baseline = same[-1] if same else (below[-1] if below else None)
    live_rate = live["viewers_per_2_cores"] if live else None
    base_rate = baseline["viewers_per_2_cores"] if baseline else None
    without = capacity["live_step_without_permessage_deflate"]
    return {
        "live_viewers_per_2_cores": live_rate,
        "baseline_viewers_per_2_cores": base_rate,
        "ratio_to_baseline": round(live_rate / base_rate, 2) if live_rate and base_rate else None,
        "live_viewers_served": live["viewers"] if live else 0,
        "baseline_at_viewers": baseline["viewers"] if baseline else None,
        "live_viewers_per_2_cores_without_permessage_deflate": without["viewers_per_2_cores"] if without else None,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"vigie_bench_live_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="vigie-bench-live-") as tmp:
        work = Path(tmp)
        settings = await prepare_database(Settings(environment="test", var_dir=work / "var",
                                                   database=DatabaseSettings(name=name)))
        simulator = CameraSimulator([CameraSpec(f"bench-live-{i}", args.footage) for i in range(args.cameras)],
                                    cache_dir=CACHE)
        db: Database | None = None
        try:
            simulator.start()
            cameras = list(simulator.cameras.values())
            urls = [camera.sub_url for camera in cameras]
            camera_pids = [camera.pid for camera in cameras if camera.pid is not None]
            principal, camera_ids = await seed(settings, urls)
            db = await open_database(settings.database.app_dsn, app_pool_size=(1, 4))
            with page_server() as origin, gateway_process(settings, work, origin) as (base, gateway_pid):
                live = LiveSettings(public_url=base)
                service = LiveService(db=db, signer=TicketSigner(live.ticket_key.get_secret_value()), settings=live)
                world = World(service, principal, camera_ids)
                latency = await measure_latency(world, base, origin, args.latency_seconds)
                print(f"latency: {json.dumps(latency)}", flush=True)
                # The latency viewers' session ends before the capacity steps start.
                await asyncio.sleep(live.linger_s + 1)
                capacity = await measure_capacity(world, base, origin, urls, args.steps, args.window, gateway_pid,
                                                  camera_pids, work, live.linger_s)
        finally:
            if db is not None:
                await db.close()
            simulator.stop()
            await drop_database(settings)
    sub = args.footage
    return {
        **headline(capacity),
        **{k: v for k, v in latency.items() if k.startswith("live_")},
        "goal_live_latency_p95_ms": GOAL_LATENCY_P95_MS,
        "goal_live_viewers_per_2_cores": GOAL_VIEWERS_PER_2_CORES,
        "goal_ratio_to_baseline": GOAL_RATIO_TO_BASELINE,
        **{k: v for k, v in latency.items() if not k.startswith("live_")},
        **capacity,
        "cameras": args.cameras, "footage": sub, "window_s": args.window, "cpus": os.cpu_count(),
        "method": METHOD.format(footage=sub, sub=_sub_description(sub), slack=LIVE_EDGE_SLACK_S,
                                warmup=LATENCY_WARMUP_S, silence=SILENCE_LIMIT_S, share=KEEP_UP_SHARE,
                                window=args.window, saturated=SATURATED_SHARE,
                                baseline_behind=BASELINE_BEHIND_SHARE, progress=PROGRESS_PERIOD_S),
    }


def _sub_description(footage: str) -> str:
    variant = FOOTAGES[footage].sub
    return f"{variant.width}x{variant.height} at {variant.fps} fps"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument("--steps", default="25,50,100,150,200", help="viewer counts, comma-separated, increasing")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of CPU measured per step and side")
    parser.add_argument("--latency-seconds", type=float, default=45.0, help="how long the page watches")
    parser.add_argument("--footage", default="vtest", help="the simulated cameras' footage (camsim.footage)")
    args = parser.parse_args()
    args.steps = [int(v) for v in args.steps.split(",")]
    figures = asyncio.run(run(args))
    path = write_result("live", figures)
    print(json.dumps(figures, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
