"""Per-camera analytics: the rules that turn tracked objects into signalements d'attention, with their memory.

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
from datetime import datetime
from statistics import median

from inference.events import Box
from inference.model import (
    FrameAnalysis,
    FrameStats,
    Point,
    Rule,
    RuleHit,
    RuleType,
    TrackedObject,
    Zone,
    covered,
)
from inference.rules import anchor, cross, in_schedule, point_in_polygon, segments_intersect

HISTORY_S = 12.0
# A detector misses people now and then; a track unseen for less than this keeps its dwell time, its side of a
# line and its "already reported" mark, so one missed frame does not restart timers or repeat an alert.
GRACE_S = 2.0
STILL_DISTANCE = 0.02  # frame fractions: below this an object counts as not having moved
# A track that appears near where a track of the same label was lost less than GRACE_S ago is taken as the same
# object: the tracker lost it for a frame or two and started over (fragmentation); the new track inherits the old
# one's "already reported", dwell and side-of-line memory instead of raising the same alert again. "Near" is measured
# in the lost object's own height, so that it means the same for a person close to the camera and one far away: a
# quarter of it (box jitter) plus one height per second lost (a brisk walk, about 1.7 m/s for a person).
SUCCESSOR_REACH_HEIGHTS = 0.25
SUCCESSOR_HEIGHTS_PER_S = 1.0
SUCCESSOR_MAX_GAP_S = GRACE_S
# Abandoned object: a reported place stays reported while something is seen there, and this long (or stationary_s
# if longer) after it was last seen, so a passer-by hiding the object for a while does not make it a new one.
PLACE_MEMORY_S = 30.0
PERSON_COVER = 0.3  # share of a static region under a person's box from which it is that person standing
STATIC_LABEL = "static object"  # how a left object found without a detector class is labelled in its alert
# A track last seen with its box against the frame's border (within this share of the frame) while moving towards
# it at least this fast (frame fractions per second) walked out of the picture: whoever appears there next is
# someone else coming in, not the same person found again.
BORDER_MARGIN = 0.01
EXIT_MIN_SPEED = STILL_DISTANCE


@dataclass
class _TrackHistory:
    first_seen: float
    label: str = ""
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

    def left_the_frame(self) -> bool:
        """Whether the object was last seen against the frame's border, moving out through it."""
        if not self.samples:
            return False
        last_t, _, (x1, y1, x2, y2) = self.samples[-1]
        velocity = self.velocity(last_t, 1.0)
        if velocity is None:
            return False
        vx, vy = velocity
        return ((x2 >= 1 - BORDER_MARGIN and vx >= EXIT_MIN_SPEED) or (x1 <= BORDER_MARGIN and vx <= -EXIT_MIN_SPEED)
                or (y2 >= 1 - BORDER_MARGIN and vy >= EXIT_MIN_SPEED)
                or (y1 <= BORDER_MARGIN and vy <= -EXIT_MIN_SPEED))

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
    condition_seen: float = -math.inf  # when the condition last held
    baseline: deque[float] = field(default_factory=lambda: deque(maxlen=600))
    places: list[tuple[Box, float]] = field(default_factory=list)  # reported left objects: box, when last seen
    lying_ids: set[int] = field(default_factory=set)  # lying people handed by the backend in the last frame


class CameraRules:
    """The rules of one camera with the memory they need between frames (dwell times, sides of lines, baselines)."""

    def __init__(self, zones: Iterable[Zone], rules: Iterable[Rule], *, frame_size: tuple[int, int] = (16, 9),
                 join_fragments: bool = True):
        self.zones = {z.id: z for z in zones}
        self.rules = [r for r in rules if r.enabled]
        self.frame_size = frame_size
        self._join_fragments = join_fragments
        self._tracks: dict[int, _TrackHistory] = {}
        self._last_seen: dict[int, float] = {}
        # Lost track -> the tracks that took over its memory, and what each took: per rule, the "already reported"
        # mark and the time it started meeting the rule's condition.
        self._continued_by: dict[int, set[int]] = {}
        self._inherited: dict[int, dict[uuid.UUID, tuple[bool, float | None]]] = {}
        self._state: dict[uuid.UUID, _RuleState] = {r.id: _RuleState() for r in self.rules}

    def evaluate(self, analysis: FrameAnalysis, local_now: datetime) -> list[RuleHit]:
        t = analysis.timestamp
        if self._join_fragments:
            self._inherit(analysis.objects, t)
        for obj in analysis.objects:
            self._tracks.setdefault(obj.track_id, _TrackHistory(first_seen=t, label=obj.label)).add(t, obj)
            self._last_seen[obj.track_id] = t
        gone = {k for k, seen in self._last_seen.items() if t - seen > GRACE_S}
        for track_id in gone:
            del self._last_seen[track_id]
            self._tracks.pop(track_id, None)
            self._continued_by.pop(track_id, None)
            self._inherited.pop(track_id, None)
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

    def _inherit(self, objects: Sequence[TrackedObject], t: float) -> None:
        """New tracks standing where a lost track of the same label was last seen continue its memory. A track
        seen in the same frame as the lost track it continued is someone else (two boxes at once are two objects):
        it gives that memory back and is matched again as if it had just appeared."""
        seen = {o.track_id for o in objects}
        mistaken = set()
        for lost_id in [tid for tid in self._continued_by if tid in seen]:
            successors = self._continued_by[lost_id]
            for successor in successors & seen:
                self._give_back(successor)
                mistaken.add(successor)
            successors -= seen
            if not successors:
                del self._continued_by[lost_id]
        lost = {tid: h for tid, h in self._tracks.items()
                if tid not in seen and h.samples
                and t - self._last_seen.get(tid, -math.inf) <= SUCCESSOR_MAX_GAP_S and not h.left_the_frame()}
        for obj in objects:
            if (obj.track_id in self._tracks and obj.track_id not in mistaken) or not lost:
                continue
            point = anchor(obj.box)
            best, best_distance = None, math.inf
            for tid, history in lost.items():
                last_t, last_point, last_box = history.samples[-1]
                if history.label != obj.label:
                    continue
                distance = self._in_heights(point, last_point, last_box)
                if distance <= SUCCESSOR_REACH_HEIGHTS + SUCCESSOR_HEIGHTS_PER_S * (t - last_t) \
                        and distance < best_distance:
                    best, best_distance = tid, distance
            if best is None:
                continue
            del lost[best]
            self._take_over(obj.track_id, best)

    def _take_over(self, successor: int, lost_id: int) -> None:
        """`successor` continues the memory of `lost_id`."""
        self._continued_by.setdefault(lost_id, set()).add(successor)
        taken = self._inherited[successor] = {}
        for rule_id, state in self._state.items():
            fired = lost_id in state.fired_tracks
            armed = state.armed_tracks.get(lost_id)
            taken[rule_id] = (fired, armed)
            if fired:
                state.fired_tracks.add(successor)
            if armed is not None:
                state.armed_tracks[successor] = armed
            if lost_id in state.last_side:
                state.last_side[successor] = state.last_side[lost_id]

    def _give_back(self, successor: int) -> None:
        """Undo what `successor` took from a track it did not continue after all. Its side of a line needs no
        undoing: every frame since has replaced it with its own."""
        for rule_id, (fired, armed) in self._inherited.pop(successor, {}).items():
            state = self._state[rule_id]
            if fired:
                state.fired_tracks.discard(successor)
            if armed is not None and state.armed_tracks.get(successor) == armed:
                del state.armed_tracks[successor]

    def _in_heights(self, point: Point, origin: Point, box: Box) -> float:
        """The distance from `origin` to `point` in heights of `box`, on screen (frame fractions are not square)."""
        width, height = self.frame_size
        box_height = max(box[3] - box[1], 1e-6)
        return math.hypot((point[0] - origin[0]) * width / height, point[1] - origin[1]) / box_height

    # Each rule returns at most one hit per frame, grouping the tracks it concerns.

    def _evaluate_rule(self, rule: Rule, state: _RuleState, analysis: FrameAnalysis) -> RuleHit | None:
        zone = self.zones.get(rule.zone_id) if rule.zone_id is not None else None
        params = rule.params
        objects = [o for o in analysis.objects if o.label in params.classes and o.score >= params.min_score
                   and o.box[3] - o.box[1] >= params.min_box_height]
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
                lying = [o for o in analysis.lying_people if o.label in params.classes and o.score >= params.min_score
                         and o.box[3] - o.box[1] >= params.min_box_height]
                return self._person_on_ground(rule, state, objects, lying, t)
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
            side = cross(a, b, point)
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
        """An object of a watched class, or a static region (inference.static_objects) that is not a person
        standing, still for stationary_s with nobody within owner_radius; each place is reported once."""
        params = rule.params
        persons = [o for o in analysis.objects if o.label == "Person"]
        people = [anchor(o.box) for o in persons]
        forget = max(params.stationary_s, PLACE_MEMORY_S)
        state.places = [(box, seen) for box, seen in state.places if t - seen <= forget]

        def unattended(box: Box) -> bool:
            return all(math.dist(anchor(box), p) > params.owner_radius for p in people)

        left = []
        for obj in analysis.objects:
            if obj.label not in params.classes or obj.label == "Person" or obj.track_id in state.fired_tracks:
                continue
            history = self._tracks.get(obj.track_id)
            if history is None or history.still_for(t) < params.stationary_s:
                continue
            if unattended(obj.box) and not _seen_place(state, obj.box, t):
                left.append(obj)
        state.fired_tracks |= {o.track_id for o in left}
        state.places += [(o.box, t) for o in left]
        regions = []
        for region in analysis.static_regions:
            # Seen again where something was already reported (by either path): keep that memory fresh, once.
            if _seen_place(state, region.box, t) or region.still_s < params.stationary_s:
                continue
            # A static region mostly under a tracked person is that person standing, not something they left.
            if any(covered(region.box, p.box) >= PERSON_COVER for p in persons) or not unattended(region.box):
                continue
            regions.append(region)
            state.places.append((region.box, t))
        if not left and not regions:
            return None
        return RuleHit(
            rule_id=rule.id, rule_type=rule.rule_type, zone_id=rule.zone_id,
            track_ids=tuple(o.track_id for o in left),
            boxes=tuple(o.box for o in left) + tuple(r.box for r in regions),
            labels=tuple(o.label for o in left) + (STATIC_LABEL,) * len(regions),
            scores=tuple(round(o.score, 3) for o in left) + (1.0,) * len(regions),
            detail=f"object still for over {params.stationary_s:.0f} s with nobody near",
        )

    def _person_on_ground(self, rule: Rule, state: _RuleState, objects: list[TrackedObject],
                          lying_people: list[TrackedObject], t: float) -> RuleHit | None:
        width, height = self.frame_size
        # The backend's lying people are not tracks: one that is no longer handed over is no longer lying there.
        handed = {o.track_id for o in lying_people}
        for track_id in state.lying_ids - handed:
            state.armed_tracks.pop(track_id, None)
        state.lying_ids = handed
        objects = objects + lying_people
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
        """Fire once a condition has held for hold_s, then not again before cooldown_s. A lapse shorter than
        GRACE_S (a person missed in one frame of a crowd) does not restart the hold."""
        if not condition:
            if t - state.condition_seen >= GRACE_S:
                state.condition_since = None
            return None
        if state.condition_since is None or t - state.condition_seen >= GRACE_S:
            state.condition_since = t
        state.condition_seen = t
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


def _seen_place(state: _RuleState, box: Box, t: float) -> bool:
    """Whether `box` is a place already reported (mostly overlapping it, either way); refreshes that memory."""
    for index, (place, _) in enumerate(state.places):
        if max(covered(box, place), covered(place, box)) >= 0.5:
            state.places[index] = (place, t)
            return True
    return False


def _hit(rule: Rule, objects: Sequence[TrackedObject], detail: str) -> RuleHit:
    return RuleHit(
        rule_id=rule.id, rule_type=rule.rule_type, zone_id=rule.zone_id,
        track_ids=tuple(o.track_id for o in objects), boxes=tuple(o.box for o in objects),
        labels=tuple(o.label for o in objects), scores=tuple(round(o.score, 3) for o in objects), detail=detail,
    )
