"""HLS (fMP4) playlists over the segment index, and the head of a recorded segment read for its init section."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise

from dvr.model import Segment

# The recorder writes each 10 s segment as a self-contained fragmented MP4 (ffmpeg's segment muxer with
# frag_keyframe+empty_moov+default_base_moof): ftyp and an empty moov (the init section), then moof+mdat fragments.
# HLS wants the init section apart (EXT-X-MAP) and the media as moof+mdat: both are byte ranges of the same object,
# so the stored segments are served as they are, each from its signed URL.
_LARGE_SIZE = 1
_TO_END = 0


def init_size(head: bytes) -> int | None:
    """Offset of the first `moof` box in a segment's head (the init section's length); None when the head does
    not hold the top-level boxes up to a fragment (not a fragmented MP4, or cut too short)."""
    at = 0
    while at + 8 <= len(head):
        size, kind = struct.unpack_from(">I4s", head, at)
        if kind == b"moof":
            return at if at > 0 else None
        if size == _LARGE_SIZE:
            if at + 16 > len(head):
                return None
            size = struct.unpack_from(">Q", head, at + 8)[0]
        if size == _TO_END or size < 8:
            return None
        at += size
    return None


def _iso(instant: datetime) -> str:
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def playlist(segments: Sequence[Segment], init_sizes: Sequence[int], urls: Sequence[str], *, start: datetime,
             gap_tolerance_s: float, gap_uri: str = "gap.mp4") -> str:
    """A VOD media playlist (HLS version 7, fMP4) of the segments, in order.

    Each segment's timestamps start from zero (the recorder resets them at every cut), so every segment after the
    first opens a discontinuity with its own init section; EXT-X-PROGRAM-DATE-TIME gives each its wall-clock
    start. A hole in the index longer than the tolerance is written as an EXT-X-GAP segment of the hole's length
    (players skip it without loading it), so the playlist's timeline keeps wall-clock time across outages.
    EXT-X-START places the player at the requested start inside the first segment.
    """
    if not segments or not len(segments) == len(init_sizes) == len(urls):
        raise ValueError("a playlist needs segments, each with its init section's length and its link")
    durations = [(s.end_at - s.start_at).total_seconds() for s in segments]
    holes = [(prev.end_at, seg.start_at) for prev, seg in pairwise(segments)]
    longest = max([*durations, *((b - a).total_seconds() for a, b in holes)])
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{max(1, math.ceil(longest))}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]
    offset = (start - segments[0].start_at).total_seconds()
    if offset > 0:
        lines.append(f"#EXT-X-START:TIME-OFFSET={offset:.3f},PRECISE=YES")
    for i, (seg, head, url, duration) in enumerate(zip(segments, init_sizes, urls, durations, strict=True)):
        if i > 0:
            hole_start, hole_end = holes[i - 1]
            hole = (hole_end - hole_start).total_seconds()
            if hole > gap_tolerance_s:
                lines += ["#EXT-X-DISCONTINUITY", f"#EXT-X-PROGRAM-DATE-TIME:{_iso(hole_start)}", "#EXT-X-GAP",
                          f"#EXTINF:{hole:.3f},", gap_uri]
            lines.append("#EXT-X-DISCONTINUITY")
        lines += [f"#EXT-X-PROGRAM-DATE-TIME:{_iso(seg.start_at)}",
                  f'#EXT-X-MAP:URI="{url}",BYTERANGE="{head}@0"',
                  f"#EXTINF:{duration:.3f},",
                  f"#EXT-X-BYTERANGE:{seg.size_bytes - head}@{head}",
                  url]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def link_lifetime(segments: Sequence[Segment], base_s: int, cap_s: float) -> timedelta:
    """How long a playlist's signed links live: the usual link lifetime plus the recording's length, so an
    operator watching at normal speed never meets an expired link; bounded by the longest playback allowed."""
    recorded = sum((s.end_at - s.start_at).total_seconds() for s in segments)
    return timedelta(seconds=base_s + min(recorded, cap_s))


