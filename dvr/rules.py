"""Pure DVR decisions: legal retention, reconnect backoff, segment timing, gaps, clip coverage, lease shares."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit, urlunsplit

from core.law import LEGAL_MAX_RETENTION_DAYS
from core.objectstore import LifecycleRule
from dvr.errors import InvalidCameraUrl, InvalidInterval, RetentionAboveCap
from dvr.model import CameraCondition, Gap, RecordedSpan, RetentionInputs, Segment, Tier, TimelineGap


@dataclass(frozen=True)
class Retention:
    """How long a recording is kept: destroyed at `max_days`, never before `min_days` (if the authorisation says)."""

    max_days: int
    min_days: int | None


def effective_retention(inputs: RetentionInputs) -> Retention:
    """min(authorisation max, tenant setting, tier setting, 30 days), but never below the authorisation minimum."""
    candidates = [LEGAL_MAX_RETENTION_DAYS, inputs.tenant_days]
    if inputs.authorisation_max_days is not None:
        candidates.append(inputs.authorisation_max_days)
    if inputs.tier_days is not None:
        candidates.append(inputs.tier_days)
    days = min(candidates)
    minimum = inputs.authorisation_min_days
    if minimum is not None:
        # The minimum is bounded by the authorisation's own maximum (a CHECK in the schema), so this stays legal.
        days = max(days, min(minimum, LEGAL_MAX_RETENTION_DAYS))
    return Retention(max_days=max(1, days), min_days=minimum)


def check_retention_request(days: int, *, authorisation_max_days: int | None = None) -> None:
    """A tenant may shorten retention, never lengthen it past the authorisation or the legal month."""
    if days < 1:
        raise RetentionAboveCap("retention must be at least one day")
    if days > LEGAL_MAX_RETENTION_DAYS:
        raise RetentionAboveCap(f"{days} days exceeds the legal maximum of {LEGAL_MAX_RETENTION_DAYS} days "
                                "(Code de la sécurité intérieure, art. L252-5)")
    if authorisation_max_days is not None and days > authorisation_max_days:
        raise RetentionAboveCap(f"{days} days exceeds the {authorisation_max_days} days of the camera's "
                                "prefectoral authorisation")


def destruction_due(end_at: datetime, retention: Retention) -> datetime:
    return end_at + timedelta(days=retention.max_days)


def minimum_lock_until(end_at: datetime, retention: Retention) -> datetime | None:
    """Object-lock retain-until that enforces the authorisation's minimum, or None when there is none."""
    if retention.min_days is None:
        return None
    return end_at + timedelta(days=retention.min_days)


def lifecycle_rules(per_camera: dict[uuid.UUID, dict[Tier, Retention]]) -> list[LifecycleRule]:
    """Bucket lifecycle as the safety net under the sweeper: one rule per camera and tier.

    Lifecycle counts whole days from creation and runs on the server's schedule, so the sweeper (exact,
    version-specific) deletes first; these rules only act if the sweeper stops.
    """
    rules = []
    for camera_id, tiers in sorted(per_camera.items()):
        for tier, retention in sorted(tiers.items()):
            rules.append(LifecycleRule(rule_id=f"{tier.value}-{camera_id}", prefix=f"{tier.value}/{camera_id}/",
                                       days=retention.max_days, noncurrent_days=1))
    return rules


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^attempt)], so recovering cameras do not reconnect in step."""
    ceiling = min(cap_s, base_s * math.pow(2, max(0, attempt)))
    return (rng or random).uniform(0, ceiling)


def is_gap(previous_end: datetime | None, next_start: datetime, tolerance_s: float) -> bool:
    return previous_end is not None and (next_start - previous_end).total_seconds() > tolerance_s


class SegmentClock:
    """Wall-clock times of segments from ffmpeg's stream-relative times.

    ffmpeg reports each finished segment with stream times; the wall time at which the report arrives is close
    to the segment's end. The first report anchors stream time to wall time; a later report that drifts by more
    than `resync_s` re-anchors (a camera that froze, then resumed). Segments of one run stay contiguous.
    """

    def __init__(self, *, started_at: datetime, resync_s: float = 2.0) -> None:
        self._started_at = started_at
        self._anchor: datetime | None = None
        self._resync = timedelta(seconds=resync_s)
        self._last_end: datetime | None = None

    def place(self, stream_start_s: float, stream_end_s: float, reported_at: datetime) -> tuple[datetime, datetime]:
        estimate = reported_at - timedelta(seconds=stream_end_s)
        if self._anchor is None:
            # A burst of buffered frames at connect time can put the estimate before the process started.
            self._anchor = max(estimate, self._started_at)
        elif abs(estimate - self._anchor) > self._resync and estimate > self._anchor:
            self._anchor = estimate
        start = self._anchor + timedelta(seconds=stream_start_s)
        end = self._anchor + timedelta(seconds=stream_end_s)
        if self._last_end is not None and start < self._last_end:
            start = self._last_end
        end = max(end, start + timedelta(milliseconds=1))
        self._last_end = end
        return start, end


def parse_segment_report(line: str) -> tuple[str, float, float] | None:
    """One line of ffmpeg's CSV segment list: "name,start,end"; None for anything else."""
    parts = line.strip().rsplit(",", 2)
    if len(parts) != 3:
        return None
    try:
        return parts[0], float(parts[1]), float(parts[2])
    except ValueError:
        return None


def check_stream_url(url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("rtsp", "rtsps"):
        raise InvalidCameraUrl(f"only rtsp:// or rtsps:// streams are recorded, not {scheme or 'no scheme'!r}")
    if not urlsplit(url).hostname:
        raise InvalidCameraUrl("the stream URL has no host")


def url_with_credentials(url: str, username: str | None, password: str | None) -> str:
    if not username:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{quote(username, safe='')}:{quote(password or '', safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    netloc = f"***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_interval(start: datetime, end: datetime, *, max_s: float, now: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInterval("interval bounds must carry a time zone")
    if end <= start:
        raise InvalidInterval("the interval ends before it starts")
    if (end - start).total_seconds() > max_s:
        raise InvalidInterval(f"the interval exceeds {max_s:.0f} s")
    if start > now:
        raise InvalidInterval("the interval starts in the future")


@dataclass(frozen=True)
class Coverage:
    segments: list[Segment]
    holes: list[tuple[datetime, datetime]]


def coverage(segments: Sequence[Segment], start: datetime, end: datetime, tolerance_s: float) -> Coverage:
    """The segments overlapping [start, end) in time order, and the parts of the interval none of them covers."""
    chosen = sorted((s for s in segments if s.end_at > start and s.start_at < end), key=lambda s: s.start_at)
    holes = []
    cursor = start
    tolerance = timedelta(seconds=tolerance_s)
    for s in chosen:
        if s.start_at - cursor > tolerance:
            holes.append((cursor, s.start_at))
        cursor = max(cursor, s.end_at)
    if end - cursor > tolerance:
        holes.append((cursor, end))
    return Coverage(segments=chosen, holes=holes)


def timeline_gaps(spans: Sequence[RecordedSpan], known: Sequence[Gap], start: datetime, end: datetime,
                  tolerance_s: float) -> list[TimelineGap]:
    """The holes of [start, end) that no recorded span covers, each with the cause of the recorder's gap row
    that overlaps it most (None when the recorder noted none: a recorder down, or a camera never recorded)."""
    tolerance = timedelta(seconds=tolerance_s)
    holes: list[tuple[datetime, datetime]] = []
    cursor = start
    for span in spans:
        if span.start_at - cursor > tolerance:
            holes.append((cursor, span.start_at))
        cursor = max(cursor, span.end_at)
    if end - cursor > tolerance:
        holes.append((cursor, end))
    out = []
    for hole_start, hole_end in holes:
        overlaps = [(min(hole_end, g.end_at) - max(hole_start, g.start_at), g) for g in known
                    if g.end_at > hole_start and g.start_at < hole_end]
        cause = max(overlaps, key=lambda o: o[0])[1] if overlaps else None
        out.append(TimelineGap(start_at=hole_start, end_at=hole_end, cause=cause.cause if cause else None,
                               detail=cause.detail if cause else None))
    return out


def camera_condition(*, configured: str, recording_state: str | None, recording_since: datetime | None,
                     last_frame_at: datetime | None, recent_gaps: int, tamper: bool, offline_alert: bool,
                     now: datetime, stale_after_s: float) -> CameraCondition:
    """The one word a tile shows, the most urgent that holds: disabled, offline (the recorder says so, or an
    offline alert is open), tamper (an open tamper alert), recording gaps (recent gaps, or a recorder that says
    it records but wrote nothing for `stale_after_s`), online; unknown before any recorder reported."""
    if configured == "disabled":
        return CameraCondition.DISABLED
    if recording_state == "offline" or offline_alert:
        return CameraCondition.OFFLINE
    if tamper:
        return CameraCondition.TAMPER
    # Writing nothing for stale_after_s since the last segment (or since it said it records) is a gap in the making.
    latest = max((t for t in (last_frame_at, recording_since) if t is not None), default=None)
    stale = recording_state == "recording" and (latest is None or (now - latest).total_seconds() > stale_after_s)
    if recent_gaps > 0 or stale:
        return CameraCondition.RECORDING_GAPS
    if recording_state == "recording":
        return CameraCondition.ONLINE
    return CameraCondition.UNKNOWN


def fair_share(cameras: int, recorders: int) -> int:
    """How many cameras one recorder may hold so that the live recorders split the fleet evenly."""
    return math.ceil(cameras / max(1, recorders))
