"""Pure analytics: zone geometry, legal gating, and the rules that turn tracked objects into signalements d'attention.

Both backends feed the same `CameraRules.evaluate` with `FrameAnalysis` values, so every rule is tested once, on
synthetic tracks, and behaves identically under DeepStream and the portable backend. Positions use an object's
bottom-centre (where it stands), as DeepStream's nvdsanalytics does.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from statistics import median

from inference.errors import ForbiddenAnalysis, InvalidRule, InvalidZone, RuleNotAuthorised
from inference.events import Box
from inference.model import (
    FORBIDDEN_MODEL_CLASSES,
    LEGAL_EVENT_TYPE,
    LINE_RULES,
    MODEL_CLASSES_REQUIRED,
    ZONE_RULES,
    FrameAnalysis,
    FrameStats,
    LegalBasis,
    Point,
    Rule,
    RuleHit,
    RuleParams,
    RuleType,
    TimeWindow,
    TrackedObject,
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


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Proper or touching intersection of two segments."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
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


# Rules --------------------------------------------------------------------------------------------------

HISTORY_S = 12.0
# A detector misses people now and then; a track unseen for less than this keeps its dwell time, its side of a
# line and its "already reported" mark, so one missed frame does not restart timers or repeat an alert.
GRACE_S = 2.0
STILL_DISTANCE = 0.02  # frame fractions: below this an object counts as not having moved


@dataclass
class _TrackHistory:
    first_seen: float
    samples: deque[tuple[float, Point, Box]] = field(default_factory=lambda: deque(maxlen=256))
    # Kept apart from `samples` (which only covers HISTORY_S) so stillness can be measured over minutes.
    still_point: Point | None = None
    still_from: float = 0.0

    def add(self, t: float, obj: TrackedObject) -> None:
        point = anchor(obj.box)
        self.samples.append((t, point, obj.box))
        while self.samples and self.samples[0][0] < t - HISTORY_S:
            self.samples.popleft()
        if self.still_point is None or math.dist(point, self.still_point) > STILL_DISTANCE:
            self.still_point = point
            self.still_from = t

    def velocity(self, now: float, window_s: float) -> Point | None:
        """Mean velocity (frame fractions per second) over the last `window_s`, if that long is known."""
        recent = [s for s in self.samples if s[0] >= now - window_s]
        if len(recent) < 2 or recent[-1][0] - recent[0][0] < window_s * 0.5:
            return None
        dt = recent[-1][0] - recent[0][0]
        return ((recent[-1][1][0] - recent[0][1][0]) / dt, (recent[-1][1][1] - recent[0][1][1]) / dt)

    def still_for(self, now: float) -> float:
        """How long the object has stayed within STILL_DISTANCE of one spot."""
        return now - self.still_from


@dataclass
class _RuleState:
    armed_tracks: dict[int, float] = field(default_factory=dict)  # track -> when it started meeting the condition
    fired_tracks: set[int] = field(default_factory=set)
    last_side: dict[int, float] = field(default_factory=dict)
    last_fired: float = -math.inf
    condition_since: float | None = None
    baseline: deque[float] = field(default_factory=lambda: deque(maxlen=600))


class CameraRules:
    """The rules of one camera with the memory they need between frames (dwell times, sides of lines, baselines)."""

    def __init__(self, zones: Iterable[Zone], rules: Iterable[Rule], *, frame_size: tuple[int, int] = (16, 9)):
        self.zones = {z.id: z for z in zones}
        self.rules = [r for r in rules if r.enabled]
        self.frame_size = frame_size
        self._tracks: dict[int, _TrackHistory] = {}
        self._last_seen: dict[int, float] = {}
        self._state: dict[uuid.UUID, _RuleState] = {r.id: _RuleState() for r in self.rules}

    def evaluate(self, analysis: FrameAnalysis, local_now: datetime) -> list[RuleHit]:
        t = analysis.timestamp
        for obj in analysis.objects:
            self._tracks.setdefault(obj.track_id, _TrackHistory(first_seen=t)).add(t, obj)
            self._last_seen[obj.track_id] = t
        gone = {k for k, seen in self._last_seen.items() if t - seen > GRACE_S}
        for track_id in gone:
            del self._last_seen[track_id]
            self._tracks.pop(track_id, None)
        hits: list[RuleHit] = []
        for rule in self.rules:
            state = self._state[rule.id]
            for track_id in gone:
                state.armed_tracks.pop(track_id, None)
                state.last_side.pop(track_id, None)
            state.fired_tracks -= gone
            if not in_schedule(rule.params.schedule, local_now):
                state.armed_tracks.clear()
                continue
            hit = self._evaluate_rule(rule, state, analysis)
            if hit is not None:
                hits.append(hit)
        return hits

    # Each rule returns at most one hit per frame, grouping the tracks it concerns.

    def _evaluate_rule(self, rule: Rule, state: _RuleState, analysis: FrameAnalysis) -> RuleHit | None:
        zone = self.zones.get(rule.zone_id) if rule.zone_id is not None else None
        objects = [o for o in analysis.objects if o.label in rule.params.classes]
        t = analysis.timestamp
        match rule.rule_type:
            case RuleType.INTRUSION:
                inside = self._inside(objects, zone)
                new = [o for o in inside if o.track_id not in state.fired_tracks]
                # A track fires on entering and re-arms once it is seen outside the zone (or lost for good).
                outside = {o.track_id for o in objects} - {o.track_id for o in inside}
                state.fired_tracks = (state.fired_tracks - outside) | {o.track_id for o in inside}
                return _hit(rule, new, f"entered zone {zone.name}" if zone else "entered zone") if new else None
            case RuleType.LOITERING:
                return self._loitering(rule, state, objects, zone, t)
            case RuleType.LINE_CROSSING:
                return self._line_crossing(rule, state, objects, zone)
            case RuleType.WRONG_WAY:
                return self._wrong_way(rule, state, objects, zone, t)
            case RuleType.EXCESSIVE_DENSITY:
                inside = self._inside(objects, zone)
                crowded = len(inside) > rule.params.max_objects
                return self._sustained(rule, state, crowded, t, inside,
                                       f"{len(inside)} objects in the zone (limit {rule.params.max_objects})")
            case RuleType.CROWD_MOVEMENT:
                return self._crowd_movement(rule, state, objects, zone, t)
            case RuleType.ABANDONED_OBJECT:
                return self._abandoned(rule, state, analysis, t)
            case RuleType.PERSON_ON_GROUND:
                return self._person_on_ground(rule, state, objects, t)
            case RuleType.CAMERA_TAMPER:
                return self._tamper(rule, state, analysis, t)
            case RuleType.FIRE_START | RuleType.WEAPON:
                new = [o for o in objects if o.track_id not in state.fired_tracks]
                state.fired_tracks |= {o.track_id for o in new}
                return _hit(rule, new, f"{rule.rule_type} detected") if new else None

    def _inside(self, objects: Sequence[TrackedObject], zone: Zone | None) -> list[TrackedObject]:
        if zone is None:
            return list(objects)
        return [o for o in objects if point_in_polygon(anchor(o.box), zone.points)]

    def _loitering(self, rule: Rule, state: _RuleState, objects: list[TrackedObject], zone: Zone | None,
                   t: float) -> RuleHit | None:
        inside = self._inside(objects, zone)
        outside = {o.track_id for o in objects} - {o.track_id for o in inside}
        for tid in outside:
            state.armed_tracks.pop(tid, None)
        due = []
        for obj in inside:
            entered = state.armed_tracks.setdefault(obj.track_id, t)
            if t - entered >= rule.params.dwell_s and obj.track_id not in state.fired_tracks:
                due.append(obj)
        state.fired_tracks = (state.fired_tracks - outside) | {o.track_id for o in due}
        if not due:
            return None
        return _hit(rule, due, f"in the zone for more than {rule.params.dwell_s:.0f} s")

    def _line_crossing(self, rule: Rule, state: _RuleState, objects: list[TrackedObject],
                       zone: Zone | None) -> RuleHit | None:
        if zone is None or len(zone.points) != 2:
            return None
        a, b = zone.points
        crossed: list[TrackedObject] = []
        directions: list[str] = []
        for obj in objects:
            point = anchor(obj.box)
            side = _cross(a, b, point)
            previous = state.last_side.get(obj.track_id)
            state.last_side[obj.track_id] = side if side != 0 else (previous or 0.0)
            if previous is None or side == 0 or previous == 0 or (previous > 0) == (side > 0):
                continue
            # Only a crossing of the segment itself counts, not of the infinite line through it.
            history = self._tracks.get(obj.track_id)
            if history is not None and len(history.samples) >= 2:
                before = history.samples[-2][1]
                if not segments_intersect(before, point, a, b):
                    continue
            # Image y points down: a positive cross product is the right-hand side of a→b as drawn on screen.
            direction = "left_to_right" if side > 0 else "right_to_left"
            if rule.params.direction in ("both", direction):
                crossed.append(obj)
                directions.append(direction)
        if not crossed:
            return None
        return _hit(rule, crossed, f"crossed line {zone.name} ({', '.join(sorted(set(directions)))})")

    def _wrong_way(self, rule: Rule, state: _RuleState, objects: list[TrackedObject], zone: Zone | None,
                   t: float) -> RuleHit | None:
        ax, ay = rule.params.allowed_direction
        norm = math.hypot(ax, ay)
        offenders = []
        for obj in self._inside(objects, zone):
            history = self._tracks.get(obj.track_id)
            velocity = history.velocity(t, 1.5) if history else None
            if velocity is None or obj.track_id in state.fired_tracks:
                continue
            speed = math.hypot(*velocity)
            if speed < rule.params.min_speed:
                continue
            cosine = (velocity[0] * ax + velocity[1] * ay) / (speed * norm)
            if cosine < -0.5:
                offenders.append(obj)
        state.fired_tracks |= {o.track_id for o in offenders}
        return _hit(rule, offenders, "moving against the allowed direction") if offenders else None

    def _crowd_movement(self, rule: Rule, state: _RuleState, objects: list[TrackedObject], zone: Zone | None,
                        t: float) -> RuleHit | None:
        group = self._inside(objects, zone)
        moving: list[tuple[TrackedObject, Point]] = []
        for obj in group:
            history = self._tracks.get(obj.track_id)
            velocity = history.velocity(t, 1.0) if history else None
            if velocity is not None:
                moving.append((obj, velocity))
        if len(moving) < rule.params.min_tracks:
            state.condition_since = None
            return None
        speeds = [math.hypot(*v) for _, v in moving]
        current = median(speeds)
        baseline = median(state.baseline) if len(state.baseline) >= 5 else None
        cx = sum(anchor(o.box)[0] for o, _ in moving) / len(moving)
        cy = sum(anchor(o.box)[1] for o, _ in moving) / len(moving)
        outward = 0
        for obj, (vx, vy) in moving:
            px, py = anchor(obj.box)
            if (px - cx) * vx + (py - cy) * vy > 0 and math.hypot(vx, vy) >= rule.params.min_speed * 2:
                outward += 1
        speedup = baseline is not None and current >= max(baseline * rule.params.speedup_factor,
                                                           rule.params.min_speed * 2)
        dispersal = outward >= max(rule.params.min_tracks, 0.75 * len(moving))
        if not (speedup or dispersal):
            state.baseline.append(current)
        if (speedup or dispersal) and t - state.last_fired >= rule.params.cooldown_s:
            state.last_fired = t
            what = "sudden collective speed-up" if speedup else "sudden dispersal"
            return _hit(rule, [o for o, _ in moving], f"{what} of {len(moving)} tracks")
        return None

    def _abandoned(self, rule: Rule, state: _RuleState, analysis: FrameAnalysis, t: float) -> RuleHit | None:
        people = [anchor(o.box) for o in analysis.objects if o.label == "Person"]
        left = []
        for obj in analysis.objects:
            if obj.label not in rule.params.classes or obj.label == "Person" or obj.track_id in state.fired_tracks:
                continue
            history = self._tracks.get(obj.track_id)
            if history is None or history.still_for(t) < rule.params.stationary_s:
                continue
            centre = anchor(obj.box)
            if all(math.dist(centre, p) > rule.params.owner_radius for p in people):
                left.append(obj)
        state.fired_tracks |= {o.track_id for o in left}
        if not left:
            return None
        return _hit(rule, left, f"object still for over {rule.params.stationary_s:.0f} s with nobody near")

    def _person_on_ground(self, rule: Rule, state: _RuleState, objects: list[TrackedObject],
                          t: float) -> RuleHit | None:
        width, height = self.frame_size
        lying = {}
        for obj in objects:
            if obj.label != "Person":
                continue
            box_w = (obj.box[2] - obj.box[0]) * width
            box_h = (obj.box[3] - obj.box[1]) * height
            if box_h > 0 and box_w / box_h >= rule.params.ground_aspect_ratio:
                lying[obj.track_id] = obj
        for obj in objects:
            if obj.track_id not in lying:
                state.armed_tracks.pop(obj.track_id, None)
        due = []
        for tid, obj in lying.items():
            since = state.armed_tracks.setdefault(tid, t)
            if t - since >= rule.params.hold_s and tid not in state.fired_tracks:
                due.append(obj)
        state.fired_tracks |= {o.track_id for o in due}
        return _hit(rule, due, f"person lying down for over {rule.params.hold_s:.0f} s") if due else None

    def _tamper(self, rule: Rule, state: _RuleState, analysis: FrameAnalysis, t: float) -> RuleHit | None:
        stats = analysis.stats
        if stats is None:
            return None
        sharp_baseline = median(state.baseline) if len(state.baseline) >= 10 else None
        reasons = tamper_reasons(stats, sharp_baseline)
        if not reasons:
            state.baseline.append(stats.sharpness)
        return self._sustained(rule, state, bool(reasons), t, [], ", ".join(reasons) or "tamper")

    def _sustained(self, rule: Rule, state: _RuleState, condition: bool, t: float,
                   objects: Sequence[TrackedObject], detail: str) -> RuleHit | None:
        """Fire once a condition has held for hold_s, then not again before cooldown_s."""
        if not condition:
            state.condition_since = None
            return None
        if state.condition_since is None:
            state.condition_since = t
        if t - state.condition_since < rule.params.hold_s or t - state.last_fired < rule.params.cooldown_s:
            return None
        state.last_fired = t
        return _hit(rule, list(objects), detail)


def tamper_reasons(stats: FrameStats, sharpness_baseline: float | None) -> list[str]:
    """Why a picture looks tampered with: covered/black, blurred, obstructed, or the camera was moved."""
    reasons = []
    if stats.mean_luma < 20 and stats.contrast < 8:
        reasons.append("blackout")
    elif stats.flat_share > 0.6:
        reasons.append("obstruction")
    if sharpness_baseline is not None and sharpness_baseline > 1.0 and stats.sharpness < 0.35 * sharpness_baseline \
            and "blackout" not in reasons:
        reasons.append("blur")
    if stats.scene_change > 0.6 and "blackout" not in reasons:
        reasons.append("scene change")
    return reasons


def _hit(rule: Rule, objects: Sequence[TrackedObject], detail: str) -> RuleHit:
    return RuleHit(
        rule_id=rule.id, rule_type=rule.rule_type, zone_id=rule.zone_id,
        track_ids=tuple(o.track_id for o in objects), boxes=tuple(o.box for o in objects),
        labels=tuple(o.label for o in objects), scores=tuple(round(o.score, 3) for o in objects), detail=detail,
    )
