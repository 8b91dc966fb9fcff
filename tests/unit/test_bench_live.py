"""The live benchmark's reading of fragmented MP4 (bench.live) on real ffmpeg output: each fragment's decode times and
whether it opens on a keyframe, for fragments of a whole keyframe interval and of 100 ms."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from bench.live import TrackTiming, fragment_span, keeps_pace, progress_seconds
from live.fmp4 import FragmentSplitter

SECONDS, FPS = 4, 5


def _fmp4(path: Path, short_fragments: bool) -> bytes:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         f"testsrc=size=176x144:rate={FPS}:duration={SECONDS}", "-c:v", "libx264", "-g", str(FPS), "-bf", "0",
         "-pix_fmt", "yuv420p", "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof",
         *(["-frag_duration", "100000"] if short_fragments else []), str(path)],
        check=True, timeout=60)
    return path.read_bytes()


@pytest.mark.parametrize("short_fragments", [False, True])
def test_fragment_spans_follow_each_other_and_flag_keyframes(tmp_path: Path, short_fragments: bool) -> None:
    units = FragmentSplitter().feed(_fmp4(tmp_path / "out.mp4", short_fragments))
    timing = TrackTiming.of(units[0].data)
    spans = [fragment_span(unit.data, timing) for unit in units[1:]]
    assert spans[0].start == 0
    assert all(before.end == after.start for before, after in itertools.pairwise(spans))
    assert spans[-1].end == SECONDS * timing.timescale
    assert [span.start / timing.timescale for span in spans if span.keyframe] == [0.0, 1.0, 2.0, 3.0]
    # 100 ms fragments of a 5 fps stream hold one frame each; the others a whole keyframe interval.
    assert len(spans) == (SECONDS * FPS if short_fragments else SECONDS)


def test_the_media_time_a_remux_reports_having_muxed(tmp_path: Path) -> None:
    progress = tmp_path / "remux.progress"
    assert progress_seconds(progress) is None  # not started yet
    source = tmp_path / "camera.mp4"
    _fmp4(source, short_fragments=False)
    # A stream copy, as the baseline's remuxes do.
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(source), "-c", "copy", "-f", "mp4", "-movflags",
         "frag_keyframe+empty_moov", "-progress", str(progress), "-stats_period", "0.5", str(tmp_path / "out.mp4")],
        check=True, timeout=60)
    muxed = progress_seconds(progress)
    assert muxed is not None
    assert SECONDS - 1 / FPS - 0.01 <= muxed <= SECONDS
    assert keeps_pace(muxed, SECONDS, 0.5)
    assert not keeps_pace(muxed / 2, SECONDS, 0.5)
