"""HLS playlists over the segment index: the init section found in a recorded segment's head, byte ranges,
discontinuities, gaps and the start offset written as players expect them."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dvr.hls import init_size, link_lifetime, playlist
from dvr.model import Segment
from dvr.uploader import segment_init_size
from tests.recorded_segments import record_segments

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def _box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _segment(start_s: float, end_s: float, size: int = 10_000) -> Segment:
    return Segment(id=uuid.uuid4(), tenant_id=uuid.uuid4(), camera_id=uuid.uuid4(),
                   start_at=T0 + timedelta(seconds=start_s), end_at=T0 + timedelta(seconds=end_s), size_bytes=size,
                   sha256="0" * 64, object_key=f"continuous/x/{start_s}.mp4", version_id=None)


def test_the_init_section_of_a_recorded_segment_ends_where_its_first_fragment_starts(tmp_path: Path) -> None:
    files = record_segments(tmp_path, seconds=4)
    assert len(files) >= 2
    for recorded in files:
        data = recorded.path.read_bytes()
        size = segment_init_size(recorded.path)
        assert size is not None
        assert data[size + 4:size + 8] == b"moof"
        assert b"moov" in data[:size]
        assert b"moof" not in data[:size]


def test_heads_without_a_fragment_have_no_init_section() -> None:
    init = _box(b"ftyp", b"isom\x00\x00\x02\x00") + _box(b"moov", b"\x00" * 40)
    assert init_size(init + _box(b"moof") + _box(b"mdat")) == len(init)
    # A 64-bit box size before the fragment is followed.
    large = struct.pack(">I4sQ", 1, b"free", 24) + b"\x00" * 8
    assert init_size(init + large + _box(b"moof")) == len(init) + 24
    assert init_size(init) is None  # cut before any fragment
    assert init_size(init + struct.pack(">I4s", 0, b"mdat")) is None  # a box running to the end: not fragmented
    assert init_size(_box(b"moof")) is None  # no init section at all
    assert init_size(b"\x00\x00\x00\x03junk") is None  # a size below a box header


def test_the_playlist_serves_each_segment_as_its_init_and_fragment_ranges_with_gaps_between() -> None:
    segments = [_segment(0, 10), _segment(10, 20), _segment(45, 55)]
    text = playlist(segments, [700, 710, 720], ["https://s/a?sig=1&x=2", "https://s/b", "https://s/c"],
                    start=T0 + timedelta(seconds=4), gap_tolerance_s=1.5)
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-VERSION:7" in lines
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert "#EXT-X-TARGETDURATION:25" in lines  # the 25 s gap is the longest entry
    assert "#EXT-X-START:TIME-OFFSET=4.000,PRECISE=YES" in lines
    assert '#EXT-X-MAP:URI="https://s/a?sig=1&x=2",BYTERANGE="700@0"' in lines
    assert "#EXT-X-BYTERANGE:9300@700" in lines
    assert "#EXT-X-BYTERANGE:9280@720" in lines
    # Every segment after the first restarts its timestamps: a discontinuity each, and one around the gap.
    assert lines.count("#EXT-X-DISCONTINUITY") == 3
    gap = lines.index("#EXT-X-GAP")
    assert lines[gap - 1] == "#EXT-X-PROGRAM-DATE-TIME:2026-12-03T02:00:20.000Z"
    assert lines[gap + 1] == "#EXTINF:25.000,"
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-12-03T02:00:45.000Z" in lines
    total = sum(float(line.removeprefix("#EXTINF:").rstrip(",")) for line in lines if line.startswith("#EXTINF:"))
    assert total == pytest.approx(55.0)  # the playlist keeps wall-clock time across the gap


def test_a_hole_within_the_tolerance_is_no_gap_and_the_start_before_the_recording_has_no_offset() -> None:
    text = playlist([_segment(0, 10), _segment(11, 21)], [700, 700], ["u1", "u2"], start=T0 - timedelta(seconds=30),
                    gap_tolerance_s=1.5)
    assert "#EXT-X-GAP" not in text
    assert "#EXT-X-START" not in text
    with pytest.raises(ValueError, match="segments"):
        playlist([], [], [], start=T0, gap_tolerance_s=1.5)


def test_links_live_long_enough_to_watch_the_recording_at_normal_speed() -> None:
    segments = [_segment(0, 10), _segment(10, 20)]
    assert link_lifetime(segments, 300, 4 * 3600) == timedelta(seconds=320)
    assert link_lifetime(segments, 300, 15) == timedelta(seconds=315)
