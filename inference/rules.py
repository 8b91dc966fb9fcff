"""Pure decisions of detection: zone geometry, legal gating of rules and model classes, rule schedules.

Positions use an object's bottom-centre (where it stands), as DeepStream's nvdsanalytics does; the analytics that
evaluate rules frame by frame live in `inference.analytics`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from typing import Literal

import msgspec

from inference.errors import ForbiddenAnalysis, InvalidRule, InvalidZone, RuleNotAuthorised
from inference.events import Box
from inference.model import (
    FORBIDDEN_MODEL_CLASSES,
    LEGAL_EVENT_TYPE,
    LINE_RULES,
    MODEL_CLASSES_REQUIRED,
    ZONE_RULES,
    LegalBasis,
    Point,
    RuleOption,
    RuleParams,
    RuleType,
    TimeWindow,
    Zone,
)

LEGAL_REFERENCE = "décret n° 2023-828 art. 3; loi n° 2023-380 art. 10"
AI_ACT_REFERENCE = "Règlement (UE) 2024/1689 art. 5"
FORBIDDEN_RULE_NAMES = frozenset({"face_recognition", "facial_recognition", "licence_plate_reading",
                                  "license_plate_reading", "lpr", "anpr", "biometric_identification"})


# Geometry -----------------------------------------------------------------------------------------------

def anchor(box: Box) -> Point:
    """Where an object stands: the bottom-centre of its box."""
    return ((box[0] + box[2]) / 2, box[3])


def point_in_polygon(point: Point, polygon: Sequence[Point]) -> bool:
    x, y = point
    inside = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        xi, yi = polygon[i]
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def cross(o: Point, a: Point, b: Point) -> float:
    """The z of (a - o) x (b - o): its sign tells on which side of the line o→a the point b lies."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Proper or touching intersection of two segments."""
    d1, d2 = cross(q1, q2, p1), cross(q1, q2, p2)
    d3, d4 = cross(p1, p2, q1), cross(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0)) and d1 != 0 and d2 != 0 and ((d3 > 0) != (d4 > 0)) and d3 != 0 and d4 != 0:
        return True

    def on_segment(a: Point, b: Point, c: Point) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return any(d == 0 and on_segment(a, b, c) for d, a, b, c in (
        (d1, q1, q2, p1), (d2, q1, q2, p2), (d3, p1, p2, q1), (d4, p1, p2, q2)))


def polygon_area(polygon: Sequence[Point]) -> float:
    return abs(sum(polygon[i][0] * polygon[i - 1][1] - polygon[i - 1][0] * polygon[i][1]
                   for i in range(len(polygon)))) / 2


def validate_zone(kind: str, points: Sequence[Sequence[float]]) -> tuple[Point, ...]:
    """A zone's points, checked: inside the frame, a simple polygon (or a segment for a line)."""
    if kind not in ("zone", "line"):
        raise InvalidZone(f"kind must be 'zone' or 'line', not {kind!r}", field="kind")
    parsed: list[Point] = []
    for index, point in enumerate(points):
        if len(point) != 2 or not all(isinstance(v, int | float) and math.isfinite(v) for v in point):
            raise InvalidZone(f"point {index} is not an (x, y) pair of numbers", field="points")
        x, y = float(point[0]), float(point[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise InvalidZone(f"point {index} ({x}, {y}) leaves the frame: coordinates are fractions 0..1",
                              field="points")
        parsed.append((x, y))
    if kind == "line":
        if len(parsed) != 2 or parsed[0] == parsed[1]:
            raise InvalidZone("a line has exactly two distinct points", field="points")
        return tuple(parsed)
    if len(parsed) < 3:
        raise InvalidZone("a zone needs at least three points", field="points")
    if len(parsed) > 64:
        raise InvalidZone("a zone has at most 64 points", field="points")
    n = len(parsed)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # adjacent edges share a vertex by construction
            if segments_intersect(parsed[i], parsed[(i + 1) % n], parsed[j], parsed[(j + 1) % n]):
                raise InvalidZone(f"the zone's edges {i} and {j} cross: the polygon self-intersects",
                                  field="points")
    if polygon_area(parsed) < 1e-4:
        raise InvalidZone("the zone has no area", field="points")
    return tuple(parsed)


# Legal gating -------------------------------------------------------------------------------------------

def check_model_classes(labels: Iterable[str]) -> None:
    """Refuse a model that could identify people or read plates."""
    forbidden = sorted({label for label in labels if label.strip().lower() in FORBIDDEN_MODEL_CLASSES})
    if forbidden:
        raise ForbiddenAnalysis(
            f"the model declares {', '.join(forbidden)}: biometric identification and plate reading are forbidden",
            field="model", reference=AI_ACT_REFERENCE)


def legal_basis_valid(rule_type: RuleType, bases: Iterable[LegalBasis], today: date) -> bool:
    """True when the rule needs no basis (equipment health) or a recorded basis covers `today`."""
    event_type = LEGAL_EVENT_TYPE[rule_type]
    if event_type is None:
        return True
    return any(b.event_type == event_type and b.valid_from <= today <= b.valid_until for b in bases)


def rule_option(kind: RuleType, bases: Iterable[LegalBasis], today: date,
                model_labels: frozenset[str] | None) -> RuleOption:
    """Whether `kind` may be enabled on a camera with these legal bases today, and why not (the checks of
    `check_rule` that do not depend on the rule's parameters); `model_labels` None: no model installed."""
    needs: Literal["zone", "line"] | None = "zone" if kind in ZONE_RULES else "line" if kind in LINE_RULES else None
    event_type = LEGAL_EVENT_TYPE[kind]
    option = RuleOption(rule_type=kind, event_type=event_type, needs=needs, available=True)
    if not legal_basis_valid(kind, bases, today):
        return msgspec.structs.replace(
            option, available=False, reference=LEGAL_REFERENCE,
            reason=f"no legal basis for '{event_type}' is recorded on this camera's authorisation for "
                   f"{today.isoformat()}")
    required = MODEL_CLASSES_REQUIRED.get(kind)
    if model_labels is None:
        return msgspec.structs.replace(option, available=False,
                                       reason="the detection model is not installed on this platform")
    if required is not None and not required & model_labels:
        return msgspec.structs.replace(
            option, available=False,
            reason=f"{kind} needs a model that declares one of {', '.join(sorted(required))}; the configured model "
                   "does not")
    return option


def check_rule(
    rule_type: str,
    params: RuleParams,
    *,
    zone: Zone | None,
    bases: Iterable[LegalBasis],
    today: date,
    model_labels: frozenset[str],
    enabling: bool = True,
) -> RuleType:
    """Whether a rule may be stored (and, if `enabling`, run) on a camera; raises the error an operator needs
    to read otherwise. A disabled rule may be prepared before its legal basis is recorded."""
    if rule_type.strip().lower() in FORBIDDEN_RULE_NAMES:
        raise ForbiddenAnalysis(f"{rule_type} can never be enabled: biometric identification and plate reading "
                                "are forbidden", field="rule_type", reference=AI_ACT_REFERENCE)
    try:
        kind = RuleType(rule_type)
    except ValueError:
        raise InvalidRule(f"unknown rule type {rule_type!r}", field="rule_type") from None
    if kind in ZONE_RULES and (zone is None or zone.kind != "zone"):
        raise InvalidRule(f"a {kind} rule needs a zone", field="zone_id")
    if kind in LINE_RULES and (zone is None or zone.kind != "line"):
        raise InvalidRule(f"a {kind} rule needs a line", field="zone_id")
    required = MODEL_CLASSES_REQUIRED.get(kind)
    if required is not None and not required & model_labels:
        raise InvalidRule(f"{kind} needs a model that declares one of {', '.join(sorted(required))}; "
                          "the configured model does not", field="rule_type")
    unknown = [c for c in params.classes if c not in model_labels]
    if unknown:
        raise InvalidRule(f"the model does not detect {', '.join(unknown)}", field="params.classes")
    _check_ranges(params)
    if enabling and not legal_basis_valid(kind, bases, today):
        raise RuleNotAuthorised(
            f"no legal basis for '{LEGAL_EVENT_TYPE[kind]}' is recorded on this camera's authorisation for "
            f"{today.isoformat()}", field="rule_type", reference=LEGAL_REFERENCE)
    return kind


def _check_ranges(params: RuleParams) -> None:
    checks = [
        ("dwell_s", 1 <= params.dwell_s <= 86400), ("stationary_s", 1 <= params.stationary_s <= 86400),
        ("hold_s", 0 <= params.hold_s <= 3600), ("cooldown_s", 0 <= params.cooldown_s <= 86400),
        ("max_objects", 1 <= params.max_objects <= 10000), ("min_tracks", 2 <= params.min_tracks <= 1000),
        ("speedup_factor", 1 < params.speedup_factor <= 100), ("min_speed", 0 < params.min_speed <= 10),
        ("owner_radius", 0 < params.owner_radius <= 1),
        ("min_score", 0 <= params.min_score < 1), ("min_box_height", 0 <= params.min_box_height < 1),
        ("ground_aspect_ratio", 0.5 <= params.ground_aspect_ratio <= 10),
        ("allowed_direction", math.hypot(*params.allowed_direction) > 0), ("classes", len(params.classes) > 0),
    ]
    for name, ok in checks:
        if not ok:
            raise InvalidRule(f"{name} is out of range", field=f"params.{name}")
    for window in params.schedule:
        if not all(0 <= d <= 6 for d in window.days):
            raise InvalidRule("schedule days are 0 (Monday) to 6 (Sunday)", field="params.schedule")
        for value in (window.start, window.end):
            _parse_clock(value)


def _parse_clock(value: str) -> time | None:
    """HH:MM; 24:00 is the end of the day (None)."""
    if value == "24:00":
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise InvalidRule(f"{value!r} is not a HH:MM time", field="params.schedule") from None


def in_schedule(schedule: Sequence[TimeWindow], local_now: datetime) -> bool:
    """An empty schedule means always; a window whose end precedes its start runs past midnight."""
    if not schedule:
        return True
    clock = local_now.time()
    weekday = local_now.weekday()
    for window in schedule:
        start = _parse_clock(window.start) or time(0)
        end = _parse_clock(window.end)
        if end is None or start < end:
            if weekday in window.days and start <= clock and (end is None or clock < end):
                return True
        elif (weekday in window.days and clock >= start) or ((weekday - 1) % 7 in window.days and clock < end):
            return True
    return False
