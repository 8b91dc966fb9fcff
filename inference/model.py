"""Detection domain records: geometry, rules, tracked objects, frame statistics, and the events published on NATS."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

import msgspec

from inference.events import Box

Point = tuple[float, float]


class RuleType(StrEnum):
    """Analytics the platform offers. There is deliberately no face-recognition or licence-plate type."""

    INTRUSION = "intrusion"
    LOITERING = "loitering"
    LINE_CROSSING = "line_crossing"
    WRONG_WAY = "wrong_way"
    EXCESSIVE_DENSITY = "excessive_density"
    CROWD_MOVEMENT = "crowd_movement"
    ABANDONED_OBJECT = "abandoned_object"
    PERSON_ON_GROUND = "person_on_ground"
    CAMERA_TAMPER = "camera_tamper"
    FIRE_START = "fire_start"
    WEAPON = "weapon"


# The décret 2023-828 art. 3 event type each rule produces; None: not a behavioural analysis (equipment health).
LEGAL_EVENT_TYPE: dict[RuleType, str | None] = {
    RuleType.INTRUSION: "forbidden_zone",
    RuleType.LOITERING: "forbidden_zone",
    RuleType.LINE_CROSSING: "forbidden_zone",
    RuleType.WRONG_WAY: "wrong_way",
    RuleType.EXCESSIVE_DENSITY: "excessive_density",
    RuleType.CROWD_MOVEMENT: "crowd_movement",
    RuleType.ABANDONED_OBJECT: "abandoned_object",
    RuleType.PERSON_ON_GROUND: "person_on_ground",
    RuleType.CAMERA_TAMPER: None,
    RuleType.FIRE_START: "fire_start",
    RuleType.WEAPON: "weapon",
}

# Rules that only make sense with a model that declares the matching classes.
MODEL_CLASSES_REQUIRED: dict[RuleType, frozenset[str]] = {
    RuleType.FIRE_START: frozenset({"Fire", "Smoke", "Flame"}),
    RuleType.WEAPON: frozenset({"Weapon", "Handgun", "Rifle", "Knife", "Gun"}),
}

# Classes whose detection would amount to biometric identification or plate reading (EU AI Act art. 5):
# a model declaring one of them is refused.
FORBIDDEN_MODEL_CLASSES = frozenset({
    "face", "human face", "licence plate", "license plate", "vehicle registration plate", "number plate",
})

ZONE_RULES = frozenset({
    RuleType.INTRUSION, RuleType.LOITERING, RuleType.WRONG_WAY, RuleType.EXCESSIVE_DENSITY,
})
LINE_RULES = frozenset({RuleType.LINE_CROSSING})


class TimeWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Local-time window on some weekdays (0 = Monday); end before start spans midnight."""

    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    start: str = "00:00"
    end: str = "24:00"


class RuleParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Parameters of every rule type; each rule reads the ones it needs, the service checks their ranges."""

    classes: tuple[str, ...] = ("Person",)
    # Per rule (so per zone): detections below this score, or boxes shorter than this share of the frame's height
    # (too far away to tell what they are), are not considered by this rule.
    min_score: float = 0.0
    min_box_height: float = 0.0
    dwell_s: float = 30.0
    direction: Literal["both", "left_to_right", "right_to_left"] = "both"
    allowed_direction: Point = (1.0, 0.0)
    min_speed: float = 0.03  # frame widths per second: slower is "standing", not "going the wrong way"
    max_objects: int = 10
    speedup_factor: float = 2.5
    min_tracks: int = 4
    stationary_s: float = 60.0
    owner_radius: float = 0.15
    ground_aspect_ratio: float = 1.3  # width / height above which a person's box reads as lying down
    hold_s: float = 5.0
    cooldown_s: float = 60.0
    schedule: tuple[TimeWindow, ...] = ()


class Zone(msgspec.Struct, frozen=True, kw_only=True):
    """A polygon (kind "zone") or an oriented segment a→b (kind "line") on a camera, in normalised coordinates."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    name: str
    kind: Literal["zone", "line"]
    points: tuple[Point, ...]


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """An analytic enabled on a camera, optionally bound to a zone or a line."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    rule_type: RuleType
    zone_id: uuid.UUID | None = None
    params: RuleParams = msgspec.field(default_factory=RuleParams)
    enabled: bool = True
    disabled_reason: str | None = None


class RuleOption(msgspec.Struct, frozen=True, kw_only=True):
    """An analytic as the rules editor offers it on one camera: what it needs drawn, its décret event type, and
    whether it may be enabled today (`reason` and `reference` say why not)."""

    rule_type: RuleType
    event_type: str | None
    needs: Literal["zone", "line"] | None
    available: bool
    reason: str | None = None
    reference: str | None = None


class LegalBasis(msgspec.Struct, frozen=True, kw_only=True):
    """One authorised event type of a camera's authorisation and its validity window (inclusive)."""

    event_type: str
    valid_from: date
    valid_until: date


class CameraConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a worker needs to analyse one camera."""

    camera_id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    stream_url: str
    username: str | None = None
    password: str | None = None
    zones: tuple[Zone, ...] = ()
    rules: tuple[Rule, ...] = ()
    legal_bases: tuple[LegalBasis, ...] = ()
    weight: float = 1.0
    # Privacy-mask polygons (normalised): blacked out of every frame before motion, detection and snapshots.
    privacy_masks: tuple[tuple[tuple[float, float], ...], ...] = ()
    # The camera's profile: its sub stream's frame rate (the picture is degraded well under it); None when unknown.
    expected_fps: float | None = None


class TrackedObject(msgspec.Struct, frozen=True, kw_only=True):
    """An object followed across frames; the same struct whichever backend (portable or DeepStream) produced it."""

    track_id: int
    label: str
    score: float
    box: Box


class FrameStats(msgspec.Struct, frozen=True, kw_only=True):
    """Cheap picture statistics for camera-tamper checks (computed on a small grey image)."""

    mean_luma: float
    contrast: float  # standard deviation of luma
    sharpness: float  # mean absolute Laplacian
    scene_change: float  # share of pixels far from the long-term background
    flat_share: float  # share of the image in large textureless blocks (a hand or tape on the lens)
    # Mean absolute difference with the previous sampled frame (luma levels): 0 when the picture no longer changes.
    frame_delta: float | None = None
    # Luma histogram (16 bins, shares summing to 1): a camera turned away shows another scene's distribution.
    histogram: tuple[float, ...] | None = None


class StaticRegion(msgspec.Struct, frozen=True, kw_only=True):
    """A patch of the picture that appeared and then stayed still, whatever it is (inference.static_objects): a
    left object, or a person standing, which the rules tell apart with the tracked people."""

    box: Box
    still_s: float  # how long it has differed from the long-term background


class FrameAnalysis(msgspec.Struct, frozen=True, kw_only=True):
    """What a backend hands to the rules for one analysed frame."""

    camera_id: uuid.UUID
    tenant_id: uuid.UUID
    timestamp: float  # seconds, monotonic per camera
    objects: tuple[TrackedObject, ...]
    stats: FrameStats | None = None
    # Computed only for cameras with an abandoned-object rule: by the portable backend on every frame taken (also for
    # cameras with a person-on-the-ground rule), by DeepStream's pixel probe at detect_fps.
    static_regions: tuple[StaticRegion, ...] = ()
    # People lying on the ground, found by the detector on turned crops of static regions (inference.lying_people):
    # portable backend only, cameras with a person-on-the-ground rule only; read by that rule alone.
    lying_people: tuple[TrackedObject, ...] = ()


class RuleHit(msgspec.Struct, frozen=True, kw_only=True):
    """A rule's decision that something deserves an operator's attention."""

    rule_id: uuid.UUID
    rule_type: RuleType
    zone_id: uuid.UUID | None
    track_ids: tuple[int, ...]
    boxes: tuple[Box, ...]
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    detail: str


# Inputs of the service functions (the API decodes requests into these) ----------------------------------


class ZoneInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A zone (polygon, three points or more) or a line (two points), in fractions of the frame."""

    # The CHECK on detection_zones.name (migration 0010): a longer name is a 400, not a failed insert.
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    kind: Literal["zone", "line"] = "zone"
    points: list[list[float]]


class RuleInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A rule to enable on a camera; `rule_type` is free text so a forbidden type gets its own clear error."""

    rule_type: str
    zone_id: uuid.UUID | None = None
    params: dict[str, object] = msgspec.field(default_factory=dict)
    enabled: bool = True


class UsageDay(msgspec.Struct, frozen=True, kw_only=True):
    """Detector time a tenant consumed on one day."""

    day: date
    detector_seconds: float
    frames: int


def covered(box: Box, by: Box) -> float:
    """The share of `box` (normalised x1, y1, x2, y2) inside `by`."""
    width = min(box[2], by[2]) - max(box[0], by[0])
    height = min(box[3], by[3]) - max(box[1], by[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    return width * height / area if width > 0 and height > 0 and area > 0 else 0.0
