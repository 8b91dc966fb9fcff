"""Reads ffmpeg's fragmented MP4 output: cuts the byte stream into the init segment (ftyp+moov) and media fragments
(moof+mdat), tells the fragments that open on a keyframe, and reads the video track's codec and size from the init
segment's sample description."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from live.model import TrackInfo

# A box larger than this in a live stream is a broken stream, not a picture (a 4K keyframe is a few MB).
MAX_BOX_BYTES = 64 * 1024 * 1024
# Boxes that travel with the next fragment when ffmpeg writes them (segment type, index, producer time).
_FRAGMENT_PREFIX = {b"styp", b"sidx", b"prft", b"emsg", b"free", b"skip"}
# The random access index ffmpeg appends when it ends: of no use to a live viewer.
_DROPPED = {b"mfra"}
# Sample entries Chromium's Media Source Extensions decode (H.264); H.265 ones (hvc1, hev1) they do not.
PLAYABLE_ENTRIES = frozenset({"avc1", "avc3"})


class StreamError(ValueError):
    """The bytes are not a fragmented MP4 stream."""


@dataclass(frozen=True)
class Unit:
    """An init segment (`init`) or a media fragment (`fragment`), as whole bytes; `keyframe`: a fragment whose first
    sample a decoder can start at."""

    kind: str
    data: bytes
    keyframe: bool = False


class FragmentSplitter:
    """Incremental: `feed` takes whatever the pipe gave and returns the units completed so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending: list[bytes] = []

    def feed(self, data: bytes) -> list[Unit]:
        self._buffer += data
        units: list[Unit] = []
        while True:
            box = self._next_box()
            if box is None:
                return units
            kind, raw = box
            if kind == b"moov":
                units.append(Unit("init", b"".join((*self._pending, raw))))
                self._pending = []
            elif kind == b"mdat":
                if not self._pending:
                    raise StreamError("mdat without moof")
                fragment = b"".join((*self._pending, raw))
                units.append(Unit("fragment", fragment, keyframe=opens_on_keyframe(fragment)))
                self._pending = []
            elif kind in (b"ftyp", b"moof") or kind in _FRAGMENT_PREFIX:
                self._pending.append(raw)
            elif kind in _DROPPED:
                continue
            else:
                raise StreamError(f"unexpected top-level box {kind!r}")

    def _next_box(self) -> tuple[bytes, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", buffer)
        header = 8
        if size == 1:
            if len(buffer) < 16:
                return None
            (size,) = struct.unpack_from(">Q", buffer, 8)
            header = 16
        if size < header or size > MAX_BOX_BYTES:
            # size 0 ("to the end of the file") has no end in a live stream either.
            raise StreamError(f"box {kind!r} of {size} bytes")
        if len(buffer) < size:
            return None
        raw = bytes(buffer[:size])
        del buffer[:size]
        return bytes(kind), raw


def child_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in data[start:end]."""
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        if size < header or offset + size > end:
            raise StreamError(f"box {kind!r} overruns its parent")
        yield bytes(kind), offset + header, offset + size
        offset += size


def find_boxes(data: bytes, start: int, end: int, path: list[bytes]) -> list[tuple[int, int]]:
    """Payload spans of every box along `path` under data[start:end]."""
    head, *rest = path
    found: list[tuple[int, int]] = []
    for kind, payload, box_end in child_boxes(data, start, end):
        if kind == head:
            found += [(payload, box_end)] if not rest else find_boxes(data, payload, box_end, rest)
    return found


# Sample flags (ISO/IEC 14496-12 8.8.3.1): a sample a decoder cannot start at has sample_is_non_sync_sample set.
_NON_SYNC_SAMPLE = 0x00010000
# tfhd optional fields, in order, by flag: base_data_offset (8 bytes), sample_description_index, default duration,
# default size (4 each), then default_sample_flags (0x20).
_TFHD_FIELDS = ((0x01, 8), (0x02, 4), (0x08, 4), (0x10, 4))
_TFHD_DEFAULT_FLAGS = 0x20
# trun: data_offset (0x01) then first_sample_flags (0x04); per-sample duration (0x100) and size (0x200) precede each
# sample's flags (0x400).
_TRUN_DATA_OFFSET, _TRUN_FIRST_FLAGS = 0x01, 0x04
_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS = 0x100, 0x200, 0x400


def _full_box_flags(data: bytes, payload: int) -> int:
    return int.from_bytes(data[payload + 1:payload + 4], "big")


def opens_on_keyframe(fragment: bytes) -> bool:
    """Whether a media fragment's first sample is a sync sample. Fragments are cut shorter than a keyframe interval,
    so a viewer may only start, or resume after a drop, at one of these. A fragment that states no flags at all is
    taken as one (what a fragment cut at every keyframe is)."""
    for traf_start, traf_end in find_boxes(fragment, 0, len(fragment), [b"moof", b"traf"]):
        default_flags: int | None = None
        for kind, payload, _ in child_boxes(fragment, traf_start, traf_end):
            if kind == b"tfhd":
                flags, offset = _full_box_flags(fragment, payload), payload + 8  # version+flags, track_ID
                offset += sum(size for flag, size in _TFHD_FIELDS if flags & flag)
                if flags & _TFHD_DEFAULT_FLAGS:
                    (default_flags,) = struct.unpack_from(">I", fragment, offset)
            elif kind == b"trun":
                flags, offset = _full_box_flags(fragment, payload), payload + 8  # version+flags, sample_count
                offset += 4 if flags & _TRUN_DATA_OFFSET else 0
                if flags & _TRUN_FIRST_FLAGS:
                    (first,) = struct.unpack_from(">I", fragment, offset)
                elif flags & _TRUN_FLAGS:
                    offset += (4 if flags & _TRUN_DURATION else 0) + (4 if flags & _TRUN_SIZE else 0)
                    (first,) = struct.unpack_from(">I", fragment, offset)
                elif default_flags is not None:
                    first = default_flags
                else:
                    return True
                return not first & _NON_SYNC_SAMPLE
    raise StreamError("a fragment without a track run")


# A visual sample entry: 8 bytes of SampleEntry, then pre_defined/reserved (16), width and height (2 each), then
# resolutions, reserved, frame count, compressor name, depth and pre_defined (50): 78 bytes before its child boxes.
_VISUAL_ENTRY_FIELDS = 78


def track_info(init: bytes) -> TrackInfo:
    """The first video track of an init segment: its sample entry, the codec string MSE wants, its picture size."""
    for stsd_start, stsd_end in find_boxes(init, 0, len(init), [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]):
        # stsd is a full box (version and flags) with an entry count before its entries.
        for kind, payload, entry_end in child_boxes(init, stsd_start + 8, stsd_end):
            if payload + _VISUAL_ENTRY_FIELDS > entry_end:
                continue
            entry = kind.decode("latin-1")
            width, height = struct.unpack_from(">HH", init, payload + 24)
            codec = entry
            for child, child_payload, _ in child_boxes(init, payload + _VISUAL_ENTRY_FIELDS, entry_end):
                if child == b"avcC" and entry in PLAYABLE_ENTRIES:
                    profile, compatibility, level = init[child_payload + 1:child_payload + 4]
                    codec = f"{entry}.{profile:02x}{compatibility:02x}{level:02x}"
            return TrackInfo(sample_entry=entry, codec=codec, width=width, height=height)
    raise StreamError("the init segment describes no video track")
