"""Events the detection workers publish on JetStream stream DETECTIONS, subjects detections.<tenant>.<camera>."""

from __future__ import annotations

import uuid

from core.bus import StreamSpec, tenant_subject
from core.events import Event

# The alert engine consumes detections.>; the camera in the subject keeps one camera's events together for filters.
DETECTIONS_STREAM = StreamSpec("DETECTIONS", ["detections.>"], max_age_s=7 * 86400)
SUBJECT_PREFIX = "detections"

# (x1, y1, x2, y2), normalised to the frame: 0..1 left to right and top to bottom, so any resolution fits.
Box = tuple[float, float, float, float]


class ObjectDetected(Event, frozen=True, kw_only=True):
    """A new object (track) appeared on a camera."""

    camera_id: uuid.UUID
    track_id: int
    label: str
    score: float
    box: Box
    snapshot_key: str | None = None


class RuleTriggered(Event, frozen=True, kw_only=True):
    """An analytics rule fired: a signalement d'attention for a human to verify, never an automatic decision."""

    camera_id: uuid.UUID
    rule_id: uuid.UUID
    rule_type: str
    legal_event_type: str | None
    zone_id: uuid.UUID | None
    track_ids: tuple[int, ...]
    boxes: tuple[Box, ...]
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    detail: str
    snapshot_key: str | None = None


class CameraWentOffline(Event, frozen=True, kw_only=True):
    """A camera stopped delivering frames (unreachable, refused, stalled or undecodable)."""

    camera_id: uuid.UUID
    reason: str


class CameraRestored(Event, frozen=True, kw_only=True):
    """A camera that was offline delivers frames again."""

    camera_id: uuid.UUID
    offline_for_s: float


DETECTION_EVENTS: tuple[type[Event], ...] = (ObjectDetected, RuleTriggered, CameraWentOffline, CameraRestored)


def subject_for(event: Event) -> str:
    """detections.<tenant>.<camera>: every detection event names its camera."""
    camera_id = getattr(event, "camera_id", None)
    if not isinstance(camera_id, uuid.UUID):
        raise TypeError(f"{type(event).__name__} is not a detection event")
    return tenant_subject(SUBJECT_PREFIX, event.tenant_id, str(camera_id))
