"""Events dvr publishes on JetStream stream DVR, subjects dvr.<tenant>.<event type>: recordings, gaps, clips, and the
cameras' health transitions (the health watch runs in the recorder process)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from core.bus import StreamSpec, tenant_subject
from core.events import AwareDatetime, Event


class SegmentRecorded(Event, frozen=True, kw_only=True):
    """A 10 s segment is stored and indexed (published only when VIGIE_DVR_PUBLISH_SEGMENTS asks)."""

    camera_id: uuid.UUID
    start_at: AwareDatetime
    end_at: AwareDatetime
    object_key: str
    sha256: str


class RecordingGapDetected(Event, frozen=True, kw_only=True):
    """An interval of a camera went unrecorded (one gap row per interval)."""

    camera_id: uuid.UUID
    start_at: AwareDatetime
    end_at: AwareDatetime
    cause: str


class RecordingInterrupted(Event, frozen=True, kw_only=True):
    """The recorder lost the camera's main stream (unreachable or stalled): recording stopped."""

    camera_id: uuid.UUID
    since: AwareDatetime
    reason: str


class RecordingResumed(Event, frozen=True, kw_only=True):
    """The recorder records the camera again."""

    camera_id: uuid.UUID
    offline_since: AwareDatetime | None


class SpoolHighWater(Event, frozen=True, kw_only=True):
    """The local spool passed its high-water mark: the object store is not keeping up (or is down)."""

    SCHEMA_VERSION: ClassVar[int] = 1
    recorder_id: str
    spooled_bytes: int
    high_water_bytes: int


class ClipRecorded(Event, frozen=True, kw_only=True):
    """An alert's clip is cut from the segments and stored."""

    clip_id: uuid.UUID
    camera_id: uuid.UUID
    alert_id: uuid.UUID | None
    start_at: AwareDatetime
    end_at: AwareDatetime
    sha256: str


class ClipUnavailable(Event, frozen=True, kw_only=True):
    """No clip can be made for an alert: nothing was recorded over its interval (camera offline, gap)."""

    alert_id: uuid.UUID
    camera_id: uuid.UUID
    reason: str


class CameraHealthChanged(Event, frozen=True, kw_only=True):
    """A camera's health changed (online, offline, degraded, frozen, tampered, unauthorised), as combined from what
    the recorders and the detector see; published once per stored transition by the health watch."""

    camera_id: uuid.UUID
    from_state: str | None
    to_state: str
    detail: str | None
    changed_at: AwareDatetime


DVR_EVENTS: tuple[type[Event], ...] = (SegmentRecorded, RecordingGapDetected, RecordingInterrupted, RecordingResumed,
                                       SpoolHighWater, ClipRecorded, ClipUnavailable, CameraHealthChanged)

# Declared by every process that publishes or consumes it (the recorder, the alerts process), from this one spec.
DVR_STREAM = StreamSpec("DVR", ["dvr.>"])
SUBJECT_PREFIX = "dvr"


def subject_for(event: Event) -> str:
    """dvr.<tenant>.<event type>: consumers filter e.g. dvr.*.ClipRecorded."""
    return tenant_subject(SUBJECT_PREFIX, event.tenant_id, type(event).__name__)
