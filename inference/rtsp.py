"""Camera sub-stream reader over RTSP/TCP with PyAV: one thread per camera, newest frame wins, reconnects with backoff.

Each reader decodes its camera at the detection rate, prepares what the detector and the motion gate need, and
leaves only the newest frame in its slot (older unconsumed frames are counted as dropped, never queued). When the
stream fails (refused, unreachable, stalled, undecodable) it reconnects with capped exponential backoff and full
jitter, and reports the camera offline once frames have been missing for `offline_after_s`, and restored on the
first frame after that.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from urllib.parse import quote, urlsplit, urlunsplit

import av
import numpy as np
import numpy.typing as npt

from core.logging import get_logger, redact_credentials
from core.masks import mask_boxes
from inference.conversions import frame_to_array
from inference.model import FrameStats
from inference.motion import MotionGate, MotionResult, frame_stats, small_grey
from inference.ssd import INPUT_SIZE, letterbox_size

log = get_logger(__name__)

# probesize small: the SDP already carries SPS/PPS, and a large probe would buffer seconds of a low-bitrate stream.
LIVE_OPTIONS = {"rtsp_transport": "tcp", "probesize": "8192"}


@dataclass
class DecodedFrame:
    """One frame of a camera, with what the motion gate found; the detector input is made only if it is needed."""

    camera_id: uuid.UUID
    timestamp: float
    captured_at: datetime
    frame_size: tuple[int, int]
    motion: MotionResult
    stats: FrameStats
    picture: av.VideoFrame
    max_stretch: float = 1.5
    input_size: int = INPUT_SIZE  # the model's square input, pixels a side
    grey: npt.NDArray[np.uint8] | None = None  # the small luma image the motion gate read (inference.motion)
    _detector_input: npt.NDArray[np.uint8] | None = None

    @property
    def detector_content(self) -> tuple[int, int]:
        """Pixels of the model's square input the picture fills: all of it when stretched, less when letterboxed."""
        return letterbox_size(self.picture.width, self.picture.height, self.max_stretch, self.input_size)

    @property
    def detector_input(self) -> npt.NDArray[np.uint8]:
        """The model's square input in RGB, letterboxed (top-left, black padding) or stretched; made on first use
        (most frames are gated out). A view of BGRA pixels: swscale scales YUV to BGRA on its SIMD path whatever the
        two sizes, to RGB on a plain one, 0.13 against 0.24-0.33 ms a frame from 384x288 (bench.detector); the
        detector's normalisation reads the three colour channels through the view and never the fourth."""
        if self._detector_input is None:
            width, height = self.detector_content
            bgra = frame_to_array(self.picture, width, height, "bgra")
            if (width, height) != (self.input_size, self.input_size):
                padded = np.zeros((self.input_size, self.input_size, 4), dtype=np.uint8)
                padded[:height, :width] = bgra
                bgra = padded
            self._detector_input = bgra[..., 2::-1]
        return self._detector_input


PixelBox = tuple[int, int, int, int]
_YUV420 = frozenset({"yuv420p", "yuvj420p"})
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG: black is luma 0, not 16


def masked_copy(frame: av.VideoFrame, boxes: tuple[PixelBox, ...]) -> av.VideoFrame:
    """A copy of the frame with the pixel boxes (x0, y0, x1, y1, end excluded) black; the decoder's frame is left
    as it is (the decoder may still refer to it).

    4:2:0 YUV, what H.264 decoders hand out, is painted on its planes: the cover lies on the 16-pixel grid, so its
    chroma lands on whole chroma samples, and the frame stays in the format the motion check, the detector's scaling
    and the snapshot read fastest (0.64 ms a frame through RGB and back at 384x288, and the scaling from RGB cost
    0.52 against 0.13 ms). Any other format goes through RGB."""
    if frame.format.name not in _YUV420:
        picture = frame_to_array(frame)
        for x0, y0, x1, y1 in boxes:
            picture[y0:y1, x0:x1] = 0
        return av.VideoFrame.from_ndarray(picture, format="rgb24")
    copy = av.VideoFrame(frame.width, frame.height, frame.format.name)
    copy.colorspace, copy.color_range = frame.colorspace, frame.color_range
    full_range = frame.format.name == "yuvj420p" or frame.color_range == _FULL_RANGE
    for index, (source, target) in enumerate(zip(frame.planes, copy.planes, strict=True)):
        rows, columns = source.height, source.width
        pixels = np.frombuffer(memoryview(target), dtype=np.uint8).reshape(-1, target.line_size)[:rows, :columns]
        pixels[...] = np.frombuffer(memoryview(source), dtype=np.uint8).reshape(-1, source.line_size)[:rows, :columns]
        shift = 0 if index == 0 else 1  # chroma planes are half the size each way
        black = (0 if full_range else 16) if index == 0 else 128
        for x0, y0, x1, y1 in boxes:
            pixels[y0 >> shift:-(-y1 >> shift), x0 >> shift:-(-x1 >> shift)] = black
    return copy


@dataclass
class ReaderCounters:
    decoded: int = 0
    sampled: int = 0
    dropped: int = 0  # replaced in the slot before the detector took them
    corrupt_packets: int = 0  # packets the decoder rejected
    corrupt_frames: int = 0  # frames the decoder produced with concealed errors (not analysed)
    reconnects: int = 0
    size_changes: int = 0


class FrameSlot:
    """Holds at most one frame: a new frame replaces an unconsumed one (and counts it as dropped)."""

    def __init__(self, counters: ReaderCounters) -> None:
        self._lock = threading.Lock()
        self._frame: DecodedFrame | None = None
        self._counters = counters

    def put(self, frame: DecodedFrame) -> None:
        with self._lock:
            if self._frame is not None:
                self._counters.dropped += 1
            self._frame = frame

    def peek(self) -> DecodedFrame | None:
        with self._lock:
            return self._frame

    def take(self) -> DecodedFrame | None:
        with self._lock:
            frame, self._frame = self._frame, None
            return frame


class StreamState(Enum):
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class StreamChange:
    """Reported to the backend: a camera went offline (with the reason) or came back (after how long)."""

    camera_id: uuid.UUID
    state: StreamState
    reason: str = ""
    offline_for_s: float = 0.0


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """The URL with userinfo added; credentials live apart from URLs in the database and are joined only here.
    libav reads it in this process (PyAV): it never reaches a command line."""
    if not username:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{quote(username, safe='')}:{quote(password or '', safe='')}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact(url: str) -> str:
    return redact_credentials(url)


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Capped exponential backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
    return rng.uniform(0.0, min(cap_s, base_s * (2 ** min(attempt, 30))))


@dataclass
class ReaderOptions:
    detect_fps: float = 5.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    reconnect_base_s: float = 0.5
    reconnect_cap_s: float = 30.0
    offline_after_s: float = 3.0
    motion_pixel_threshold: int = 25
    motion_min_changed: float = 0.002
    motion_scene_change: float = 0.6
    max_stretch: float = 1.5
    input_size: int = INPUT_SIZE
    rng: random.Random = field(default_factory=random.Random)


class RtspCameraReader:
    """Decodes one camera's stream in its own thread into a FrameSlot."""

    def __init__(self, camera_id: uuid.UUID, url: str, options: ReaderOptions,
                 on_change: Callable[[StreamChange], None], on_frame: Callable[[], None] = lambda: None) -> None:
        self.camera_id = camera_id
        self.url = url
        self.options = options
        self.counters = ReaderCounters()
        self.slot = FrameSlot(self.counters)
        self.state = StreamState.CONNECTING
        self.last_error = ""
        self._on_change = on_change
        self._on_frame = on_frame
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rtsp-{camera_id}", daemon=True)
        self._gate = MotionGate(pixel_threshold=options.motion_pixel_threshold,
                                min_changed=options.motion_min_changed, scene_change=options.motion_scene_change)
        self._last_frame_at = time.monotonic()
        self._offline_since = 0.0
        self._frame_size: tuple[int, int] | None = None
        # Privacy masks (CSI L251-3), replaced whole by the backend when they change: each frame is masked first.
        self.masks: tuple[tuple[tuple[float, float], ...], ...] = ()
        self._hidden: tuple[object, tuple[int, int], tuple[PixelBox, ...]] | None = None
        self._previous_grey: npt.NDArray[np.uint8] | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self._stream()
                reason = "stream ended"
            except av.error.HTTPUnauthorizedError:
                reason = "camera refused the credentials (401)"
            except av.error.ConnectionRefusedError:
                reason = "connection refused"
            except (av.error.ExitError, TimeoutError):
                reason = f"no data for {self.options.read_timeout_s:.0f} s (stalled)"
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                # libav's errors quote the URL they opened, credentials included: the reason travels in
                # CameraWentOffline to the alerts and the operators.
                reason = redact_credentials(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # a reader thread must never die: its camera would go silent
                reason = redact_credentials(f"unexpected {type(exc).__name__}: {exc}")
                log.exception("inference.reader_crashed", camera_id=str(self.camera_id))
            if self._stop.is_set():
                break
            if reason != self.last_error:
                log.warning("inference.stream_failed", camera_id=str(self.camera_id), url=redact(self.url),
                            reason=reason)
            self.last_error = reason
            self.counters.reconnects += 1
            # A stream that had been delivering starts the backoff over; repeated failures back off further.
            attempt = 0 if self.state is StreamState.ONLINE else attempt + 1
            if self.state is StreamState.ONLINE:
                self.state = StreamState.CONNECTING
            delay = backoff_delay(attempt, self.options.reconnect_base_s, self.options.reconnect_cap_s,
                                  self.options.rng)
            self._check_offline(reason)
            # Wake up in time to announce "offline" even while waiting for the next attempt.
            deadline = time.monotonic() + delay
            while not self._stop.is_set() and time.monotonic() < deadline:
                self._stop.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                self._check_offline(reason)

    def _check_offline(self, reason: str) -> None:
        if self.state is StreamState.OFFLINE:
            return
        if time.monotonic() - self._last_frame_at >= self.options.offline_after_s:
            self.state = StreamState.OFFLINE
            self._offline_since = self._last_frame_at
            self._on_change(StreamChange(self.camera_id, StreamState.OFFLINE, reason=reason))

    def _stream(self) -> None:
        scheme = urlsplit(self.url).scheme.lower()
        if scheme not in ("rtsp", "rtsps"):
            raise ValueError(f"not an RTSP URL (scheme {scheme or 'missing'!r})")
        container = av.open(self.url, options=LIVE_OPTIONS,
                            timeout=(self.options.open_timeout_s, self.options.read_timeout_s))
        try:
            if not container.streams.video:
                raise ValueError("the stream has no video track")
            video = container.streams.video[0]
            # One decoding thread: a sub stream is small, and libavcodec's error concealment (which marks a frame
            # rebuilt from damaged data as corrupt) does not run under slice threading, PyAV's default.
            video.thread_type = "NONE"
            period = 1.0 / self.options.detect_fps
            next_due = 0.0
            for packet in container.demux(video):
                if self._stop.is_set():
                    return
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    # A corrupt packet spoils at most the frames up to the next keyframe; keep the connection.
                    self.counters.corrupt_packets += 1
                    continue
                for frame in frames:
                    self.counters.decoded += 1
                    if frame.is_corrupt:
                        # Concealed errors make smears and blocks: no detection or tamper verdict on them, and a
                        # camera that sends nothing else is reported offline like one that sends nothing.
                        self.counters.corrupt_frames += 1
                        self._check_offline("undecodable frames (corrupt stream)")
                        continue
                    now = time.monotonic()
                    self._frame_arrived(now)
                    if now + 1e-3 < next_due:
                        continue
                    next_due = max(next_due + period, now - period)
                    self._prepare(frame, now)
        finally:
            container.close()

    def _frame_arrived(self, now: float) -> None:
        self._last_frame_at = now
        if self.state is StreamState.OFFLINE:
            self._on_change(StreamChange(self.camera_id, StreamState.ONLINE,
                                         offline_for_s=round(now - self._offline_since, 3)))
        if self.state is not StreamState.ONLINE:
            self.last_error = ""
        self.state = StreamState.ONLINE

    def _masked(self, frame: av.VideoFrame) -> av.VideoFrame:
        """The frame with the camera's privacy masks blacked out (the same cover as its recordings), or as it is."""
        masks = self.masks
        if not masks:
            return frame
        size = (frame.width, frame.height)
        if self._hidden is None or self._hidden[0] is not masks or self._hidden[1] != size:
            self._hidden = (masks, size, mask_boxes(masks, frame.width, frame.height))
        return masked_copy(frame, self._hidden[2])

    def _prepare(self, frame: av.VideoFrame, now: float) -> None:
        frame = self._masked(frame)
        size = (frame.width, frame.height)
        if size != self._frame_size:
            if self._frame_size is not None:
                self.counters.size_changes += 1
                log.info("inference.stream_resized", camera_id=str(self.camera_id), old=self._frame_size, new=size)
            self._frame_size = size
        grey = small_grey(frame)
        motion = self._gate.observe(grey)
        self.slot.put(DecodedFrame(
            camera_id=self.camera_id, timestamp=now, captured_at=datetime.now(UTC), frame_size=size,
            motion=motion, stats=frame_stats(grey, motion.changed_share, self._previous_grey), picture=frame,
            max_stretch=self.options.max_stretch, input_size=self.options.input_size, grey=grey,
        ))
        self._previous_grey = grey
        self.counters.sampled += 1
        self._on_frame()
