"""Pure DVR rules: legal retention, backoff, segment timing, coverage, URLs and lease shares."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dvr.errors import InvalidCameraUrl, RetentionAboveCap
from dvr.model import CameraCondition, RetentionInputs, Segment
from dvr.rules import (
    SegmentClock,
    backoff_delay,
    camera_condition,
    check_retention_request,
    check_stream_url,
    coverage,
    effective_retention,
    fair_share,
    parse_segment_report,
    redact_url,
    url_with_credentials,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("inputs", "expected"), [
    (RetentionInputs(30, None, None, None), (30, None)),
    (RetentionInputs(30, 10, None, None), (10, None)),
    (RetentionInputs(7, 10, None, None), (7, None)),
    (RetentionInputs(30, 20, None, 3), (3, None)),
    (RetentionInputs(2, 20, 5, None), (5, 5)),  # the authorisation's minimum beats a shorter tenant setting
    (RetentionInputs(30, 30, 5, 15), (15, 5)),
])
def test_effective_retention_is_the_smallest_cap_but_not_below_the_minimum(
        inputs: RetentionInputs, expected: tuple[int, int | None]) -> None:
    r = effective_retention(inputs)
    assert (r.max_days, r.min_days) == expected


@pytest.mark.parametrize("days", [0, 31, 365])
def test_retention_requests_outside_the_legal_range_are_refused(days: int) -> None:
    with pytest.raises(RetentionAboveCap) as info:
        check_retention_request(days)
    assert info.value.reference == "CSI L252-5"


def test_retention_request_above_the_authorisation_is_refused() -> None:
    check_retention_request(10, authorisation_max_days=10)
    with pytest.raises(RetentionAboveCap, match="authorisation"):
        check_retention_request(11, authorisation_max_days=10)


def test_backoff_is_full_jitter_under_a_cap() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, base_s=0.5, cap_s=4.0, rng=rng) for n in range(200)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert all(d <= 0.5 for d in delays[:1])
    late = delays[10:]
    # Spread over the whole window, not clustered at the cap.
    assert max(late) > 3.0
    assert min(late) < 1.0


def test_segment_clock_keeps_a_run_contiguous_and_resyncs_after_a_freeze() -> None:
    clock = SegmentClock(started_at=T0)
    s1 = clock.place(0.0, 10.0, T0 + timedelta(seconds=10.4))
    s2 = clock.place(10.0, 20.0, T0 + timedelta(seconds=20.5))
    assert s1[1] == s2[0]
    assert abs((s1[0] - T0).total_seconds() - 0.4) < 1e-6
    # The camera froze 30 s: the report arrives far later than stream time says; wall time wins.
    s3 = clock.place(20.0, 30.0, T0 + timedelta(seconds=60.4))
    assert abs((s3[1] - (T0 + timedelta(seconds=60.4))).total_seconds()) < 1e-6
    assert s3[0] >= s2[1]


def test_segment_clock_never_places_a_burst_before_the_process_started() -> None:
    clock = SegmentClock(started_at=T0)
    start, _ = clock.place(0.0, 4.0, T0 + timedelta(seconds=1))
    assert start == T0


def test_segment_report_parsing() -> None:
    assert parse_segment_report("ab_000001.mp4,10.000,20.500\n") == ("ab_000001.mp4", 10.0, 20.5)
    assert parse_segment_report("garbage") is None
    assert parse_segment_report("a,b,c") is None


def _seg(start_s: float, end_s: float) -> Segment:
    return Segment(id=uuid.uuid4(), tenant_id=uuid.uuid4(), camera_id=uuid.uuid4(),
                   start_at=T0 + timedelta(seconds=start_s), end_at=T0 + timedelta(seconds=end_s), size_bytes=1,
                   sha256="0" * 64, object_key="k", version_id="v")


def test_coverage_reports_the_holes() -> None:
    segs = [_seg(20, 30), _seg(0, 10), _seg(10, 20), _seg(45, 55)]
    cov = coverage(segs, T0 + timedelta(seconds=5), T0 + timedelta(seconds=60), tolerance_s=1.0)
    assert [s.start_at for s in cov.segments] == [T0 + timedelta(seconds=x) for x in (0, 10, 20, 45)]
    assert cov.holes == [(T0 + timedelta(seconds=30), T0 + timedelta(seconds=45)),
                         (T0 + timedelta(seconds=55), T0 + timedelta(seconds=60))]


@pytest.mark.parametrize("url", ["http://cam/stream", "file:///etc/passwd", "cam:554/x", "rtsp:///nohost"])
def test_only_rtsp_urls_are_recorded(url: str) -> None:
    with pytest.raises(InvalidCameraUrl):
        check_stream_url(url)


def test_credentials_are_injected_and_redacted() -> None:
    url = url_with_credentials("rtsp://10.0.0.5:554/main", "ad min", "p@ss:word")
    assert url == "rtsp://ad%20min:p%40ss%3Aword@10.0.0.5:554/main"
    assert redact_url(url) == "rtsp://***@10.0.0.5:554/main"
    assert "p%40ss" not in redact_url(url)


def test_fair_share_splits_the_fleet() -> None:
    assert [fair_share(10, n) for n in (0, 1, 2, 3, 4)] == [10, 10, 5, 4, 3]


def test_a_camera_shows_the_most_urgent_condition_that_holds() -> None:
    now = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    fresh = now - timedelta(seconds=5)
    base: dict[str, object] = {"configured": "online", "recording_state": "recording", "last_frame_at": fresh,
                               "recording_since": now - timedelta(hours=1), "recent_gaps": 0, "tamper": False,
                               "offline_alert": False}

    def condition(**changes: object) -> CameraCondition:
        return camera_condition(**{**base, **changes}, now=now, stale_after_s=30)  # type: ignore[arg-type]

    assert condition() is CameraCondition.ONLINE
    assert condition(configured="disabled", recording_state="offline", tamper=True) is CameraCondition.DISABLED
    assert condition(recording_state="offline", tamper=True) is CameraCondition.OFFLINE
    assert condition(offline_alert=True) is CameraCondition.OFFLINE
    assert condition(tamper=True, recent_gaps=2) is CameraCondition.TAMPER
    assert condition(recent_gaps=1) is CameraCondition.RECORDING_GAPS
    assert condition(last_frame_at=now - timedelta(seconds=31)) is CameraCondition.RECORDING_GAPS
    assert condition(last_frame_at=None) is CameraCondition.RECORDING_GAPS
    # Just started recording, no segment indexed yet: not a gap.
    assert condition(last_frame_at=None, recording_since=now - timedelta(seconds=10)) is CameraCondition.ONLINE
    assert condition(recording_state=None, last_frame_at=None) is CameraCondition.UNKNOWN
    assert condition(recording_state="starting") is CameraCondition.UNKNOWN
