"""Analytics rules, zone geometry and legal gating, on synthetic tracks (no video, no I/O)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime

import pytest

from inference.analytics import CameraRules
from inference.errors import ForbiddenAnalysis, InvalidRule, InvalidZone, RuleNotAuthorised
from inference.model import (
    FrameAnalysis,
    FrameStats,
    LegalBasis,
    Rule,
    RuleParams,
    RuleType,
    TimeWindow,
    TrackedObject,
    Zone,
)
from inference.rules import check_model_classes, check_rule, in_schedule, validate_zone

TENANT = uuid.uuid4()
CAMERA = uuid.uuid4()
NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # a Wednesday
LABELS = frozenset({"Person", "Car", "Box", "Bottle"})


def zone(points: Iterable[tuple[float, float]], kind: str = "zone", name: str = "z") -> Zone:
    return Zone(id=uuid.uuid4(), tenant_id=TENANT, camera_id=CAMERA, name=name, kind=kind,  # type: ignore[arg-type]
                points=tuple(points))


def rule(rule_type: RuleType, z: Zone | None = None, **params: object) -> Rule:
    return Rule(id=uuid.uuid4(), tenant_id=TENANT, camera_id=CAMERA, rule_type=rule_type,
                zone_id=None if z is None else z.id, params=RuleParams(**params))  # type: ignore[arg-type]


def person(track_id: int, x: float, y: float, w: float = 0.05, h: float = 0.15, label: str = "Person") -> TrackedObject:
    """A box whose bottom-centre (where the person stands) is (x, y)."""
    return TrackedObject(track_id=track_id, label=label, score=0.8, box=(x - w / 2, y - h, x + w / 2, y))


def frame(t: float, *objects: TrackedObject, stats: FrameStats | None = None) -> FrameAnalysis:
    return FrameAnalysis(camera_id=CAMERA, tenant_id=TENANT, timestamp=t, objects=tuple(objects), stats=stats)


def run(engine: CameraRules, frames: Iterable[FrameAnalysis], now: datetime = NOON) -> list[tuple[float, set[int]]]:
    """Feed frames in order; returns (time, track ids) of every hit."""
    hits = []
    for f in frames:
        hits += [(f.timestamp, set(h.track_ids)) for h in engine.evaluate(f, now)]
    return hits


LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]


# Geometry ----------------------------------------------------------------------------------------------

def test_a_simple_polygon_inside_the_frame_is_accepted() -> None:
    assert validate_zone("zone", [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]) == ((0.1, 0.1), (0.9, 0.1), (0.5, 0.9))


@pytest.mark.parametrize(("points", "message"), [
    ([[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]], "self-intersects"),
    ([[0.1, 0.1], [1.4, 0.1], [0.5, 0.9]], "leaves the frame"),
    ([[0.1, 0.1], [0.9, 0.1]], "at least three"),
    ([[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]], "no area"),
    ([[0.1, 0.1], [0.9], [0.5, 0.9]], "not an \\(x, y\\) pair"),
    ([[0.1, 0.1], [float("nan"), 0.2], [0.5, 0.9]], "not an \\(x, y\\) pair"),
])
def test_unusable_zones_are_refused_with_the_reason(points: list[list[float]], message: str) -> None:
    with pytest.raises(InvalidZone, match=message) as caught:
        validate_zone("zone", points)
    assert caught.value.field == "points"


def test_a_line_has_two_distinct_points() -> None:
    assert len(validate_zone("line", [[0.5, 0.0], [0.5, 1.0]])) == 2
    with pytest.raises(InvalidZone):
        validate_zone("line", [[0.5, 0.5], [0.5, 0.5]])


# Legal gating ------------------------------------------------------------------------------------------

def basis(event_type: str, start: date = date(2026, 1, 1), end: date = date(2026, 12, 31)) -> LegalBasis:
    return LegalBasis(event_type=event_type, valid_from=start, valid_until=end)


def test_a_rule_needs_a_legal_basis_for_its_event_type_valid_today() -> None:
    z = zone(LEFT_HALF)
    ok = check_rule("intrusion", RuleParams(), zone=z, bases=[basis("forbidden_zone")], today=date(2026, 6, 1),
                    model_labels=LABELS)
    assert ok is RuleType.INTRUSION
    with pytest.raises(RuleNotAuthorised, match="forbidden_zone") as caught:
        check_rule("intrusion", RuleParams(), zone=z, bases=[basis("wrong_way")], today=date(2026, 6, 1),
                   model_labels=LABELS)
    assert "2023-828" in caught.value.reference
    with pytest.raises(RuleNotAuthorised):
        check_rule("intrusion", RuleParams(), zone=z, bases=[basis("forbidden_zone", end=date(2026, 5, 31))],
                   today=date(2026, 6, 1), model_labels=LABELS)


def test_a_disabled_rule_can_be_prepared_before_its_basis_but_not_enabled() -> None:
    z = zone(LEFT_HALF)
    kind = check_rule("loitering", RuleParams(), zone=z, bases=[], today=date(2026, 6, 1), model_labels=LABELS,
                      enabling=False)
    assert kind is RuleType.LOITERING
    with pytest.raises(RuleNotAuthorised):
        check_rule("loitering", RuleParams(), zone=z, bases=[], today=date(2026, 6, 1), model_labels=LABELS)


def test_camera_tamper_is_equipment_health_and_needs_no_basis() -> None:
    assert check_rule("camera_tamper", RuleParams(), zone=None, bases=[], today=date(2026, 6, 1),
                      model_labels=LABELS) is RuleType.CAMERA_TAMPER


@pytest.mark.parametrize("name", ["face_recognition", "licence_plate_reading", "LPR"])
def test_biometric_identification_and_plate_reading_can_never_be_enabled(name: str) -> None:
    with pytest.raises(ForbiddenAnalysis, match="forbidden"):
        check_rule(name, RuleParams(), zone=None, bases=[basis(t) for t in ("forbidden_zone", "weapon")],
                   today=date(2026, 6, 1), model_labels=LABELS)


def test_a_model_declaring_faces_or_plates_is_refused() -> None:
    check_model_classes(["Person", "Car"])
    with pytest.raises(ForbiddenAnalysis, match="Vehicle registration plate"):
        check_model_classes(["Person", "Vehicle registration plate"])
    with pytest.raises(ForbiddenAnalysis):
        check_model_classes(["Human face"])


def test_fire_and_weapon_rules_need_a_model_that_detects_them() -> None:
    bases = [basis("fire_start"), basis("weapon")]
    with pytest.raises(InvalidRule, match="needs a model"):
        check_rule("fire_start", RuleParams(classes=("Person",)), zone=None, bases=bases, today=date(2026, 6, 1),
                   model_labels=LABELS)
    kind = check_rule("fire_start", RuleParams(classes=("Fire",)), zone=None, bases=bases, today=date(2026, 6, 1),
                      model_labels=LABELS | {"Fire"})
    assert kind is RuleType.FIRE_START


def test_rule_shape_errors_name_the_field() -> None:
    with pytest.raises(InvalidRule) as no_zone:
        check_rule("intrusion", RuleParams(), zone=None, bases=[basis("forbidden_zone")], today=date(2026, 6, 1),
                   model_labels=LABELS)
    assert no_zone.value.field == "zone_id"
    with pytest.raises(InvalidRule) as unknown_class:
        check_rule("intrusion", RuleParams(classes=("Unicorn",)), zone=zone(LEFT_HALF),
                   bases=[basis("forbidden_zone")], today=date(2026, 6, 1), model_labels=LABELS)
    assert unknown_class.value.field == "params.classes"
    with pytest.raises(InvalidRule):
        check_rule("teleportation", RuleParams(), zone=None, bases=[], today=date(2026, 6, 1), model_labels=LABELS)


# Schedules ---------------------------------------------------------------------------------------------

def test_schedule_windows_including_one_across_midnight() -> None:
    night = (TimeWindow(days=(0, 1, 2, 3, 4), start="20:00", end="07:00"),)
    wednesday = datetime(2026, 6, 10, tzinfo=UTC)
    assert in_schedule(night, wednesday.replace(hour=22))
    assert in_schedule(night, wednesday.replace(hour=3))  # Wednesday 03:00 belongs to Tuesday's night
    assert not in_schedule(night, wednesday.replace(hour=12))
    saturday_early = datetime(2026, 6, 13, 3, tzinfo=UTC)  # Friday's night runs into Saturday morning
    assert in_schedule(night, saturday_early)
    sunday_night = datetime(2026, 6, 14, 22, tzinfo=UTC)
    assert not in_schedule(night, sunday_night)
    assert in_schedule((), wednesday)


# Rules on synthetic tracks -------------------------------------------------------------------------------

def walk(track_id: int, start: tuple[float, float], end: tuple[float, float], seconds: float, fps: float = 5.0,
         t0: float = 0.0) -> list[tuple[float, TrackedObject]]:
    steps = int(seconds * fps)
    return [(t0 + i / fps, person(track_id, start[0] + (end[0] - start[0]) * i / steps,
                                  start[1] + (end[1] - start[1]) * i / steps)) for i in range(steps + 1)]


def frames_of(*tracks: list[tuple[float, TrackedObject]]) -> list[FrameAnalysis]:
    by_time: dict[float, list[TrackedObject]] = {}
    for track in tracks:
        for t, obj in track:
            by_time.setdefault(round(t, 6), []).append(obj)
    return [frame(t, *objs) for t, objs in sorted(by_time.items())]


def test_intrusion_fires_once_per_entry_and_rearms_after_leaving() -> None:
    z = zone(LEFT_HALF)
    engine = CameraRules([z], [rule(RuleType.INTRUSION, z)])
    path = walk(1, (0.9, 0.5), (0.1, 0.5), 4) + walk(1, (0.1, 0.5), (0.9, 0.5), 4, t0=4.2) \
        + walk(1, (0.9, 0.5), (0.3, 0.5), 3, t0=8.4)
    hits = run(engine, frames_of(path))
    assert [ids for _, ids in hits] == [{1}, {1}]
    assert 1.5 < hits[0][0] < 2.5  # crossing x = 0.5 half-way through the first 4 s walk


def test_intrusion_respects_its_schedule() -> None:
    z = zone(LEFT_HALF)
    engine = CameraRules([z], [rule(RuleType.INTRUSION, z, schedule=(TimeWindow(start="20:00", end="07:00"),))])
    assert run(engine, frames_of(walk(1, (0.9, 0.5), (0.1, 0.5), 2)), now=NOON) == []
    engine = CameraRules([z], [rule(RuleType.INTRUSION, z, schedule=(TimeWindow(start="20:00", end="07:00"),))])
    assert len(run(engine, frames_of(walk(1, (0.9, 0.5), (0.1, 0.5), 2)), now=NOON.replace(hour=23))) == 1


def test_loitering_fires_after_the_dwell_time_only_for_who_stays() -> None:
    z = zone(LEFT_HALF)
    engine = CameraRules([z], [rule(RuleType.LOITERING, z, dwell_s=10)])
    lingerer = walk(1, (0.2, 0.5), (0.25, 0.55), 15)
    passer = walk(2, (0.1, 0.3), (0.9, 0.3), 6)
    hits = run(engine, frames_of(lingerer, passer))
    assert [ids for _, ids in hits] == [{1}]
    assert hits[0][0] == pytest.approx(10.0, abs=0.25)


def test_line_crossing_reports_direction_and_ignores_crossings_beyond_the_segment() -> None:
    line = zone([(0.5, 0.2), (0.5, 0.8)], kind="line")
    both = CameraRules([line], [rule(RuleType.LINE_CROSSING, line)])
    one_way = CameraRules([line], [rule(RuleType.LINE_CROSSING, line, direction="left_to_right")])
    to_left = walk(1, (0.8, 0.5), (0.2, 0.5), 3)
    to_right = walk(2, (0.2, 0.6), (0.8, 0.6), 3, t0=5)
    outside = walk(3, (0.2, 0.95), (0.8, 0.95), 3, t0=10)  # passes below the segment's end
    assert [ids for _, ids in run(both, frames_of(to_left, to_right, outside))] == [{1}, {2}]
    # Facing along a→b (down the screen), the left-hand side is the screen's right: track 1 goes left to right.
    assert [ids for _, ids in run(one_way, frames_of(to_left, to_right, outside))] == [{1}]
    reverse = CameraRules([line], [rule(RuleType.LINE_CROSSING, line, direction="right_to_left")])
    assert [ids for _, ids in run(reverse, frames_of(to_left, to_right, outside))] == [{2}]


def test_wrong_way_flags_only_movement_against_the_allowed_direction() -> None:
    z = zone([(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])
    engine = CameraRules([z], [rule(RuleType.WRONG_WAY, z, allowed_direction=(1.0, 0.0))])
    with_flow = walk(1, (0.1, 0.4), (0.9, 0.4), 5)
    against = walk(2, (0.9, 0.6), (0.1, 0.6), 5)
    standing = walk(3, (0.5, 0.8), (0.505, 0.8), 5)
    hits = run(engine, frames_of(with_flow, against, standing))
    assert [ids for _, ids in hits] == [{2}]


def test_excessive_density_fires_once_the_count_holds_then_cools_down() -> None:
    z = zone(LEFT_HALF)
    engine = CameraRules([z], [rule(RuleType.EXCESSIVE_DENSITY, z, max_objects=3, hold_s=2, cooldown_s=30)])
    crowd = [person(i, 0.1 + 0.05 * i, 0.5) for i in range(5)]
    frames = [frame(t / 5, *crowd) for t in range(50)]
    hits = run(engine, frames)
    assert len(hits) == 1
    assert hits[0][0] == pytest.approx(2.0, abs=0.21)
    assert hits[0][1] == set(range(5))
    sparse = CameraRules([z], [rule(RuleType.EXCESSIVE_DENSITY, z, max_objects=3, hold_s=2)])
    assert run(sparse, [frame(t / 5, *crowd[:3]) for t in range(50)]) == []


def test_excessive_density_holds_through_a_missed_person_but_not_a_real_lapse() -> None:
    z = zone(LEFT_HALF)
    crowd = [person(i, 0.1 + 0.05 * i, 0.5) for i in range(5)]
    engine = CameraRules([z], [rule(RuleType.EXCESSIVE_DENSITY, z, max_objects=3, hold_s=4, cooldown_s=60)])
    # Every seventh frame the detector misses two of the five: the count dips to 3 for one frame.
    flicker = [frame(t / 5, *(crowd[:3] if t % 7 == 6 else crowd)) for t in range(40)]
    hits = run(engine, flicker)
    assert len(hits) == 1
    assert hits[0][0] == pytest.approx(4.0, abs=0.21)
    # Three seconds below the limit (longer than the grace) start the hold again.
    engine = CameraRules([z], [rule(RuleType.EXCESSIVE_DENSITY, z, max_objects=3, hold_s=4, cooldown_s=60)])
    lapse = [frame(t / 5, *(crowd[:3] if 10 <= t < 25 else crowd)) for t in range(60)]
    hits = run(engine, lapse)
    assert len(hits) == 1
    assert hits[0][0] == pytest.approx(9.0, abs=0.21)


def test_crowd_movement_detects_a_sudden_collective_dispersal_but_not_calm_walking() -> None:
    engine = CameraRules([], [rule(RuleType.CROWD_MOVEMENT, min_tracks=5)])
    centre = (0.5, 0.5)
    calm = [walk(i, (0.3 + 0.08 * i, 0.5), (0.32 + 0.08 * i, 0.52), 10) for i in range(6)]
    assert run(engine, frames_of(*calm)) == []
    burst = []
    for i in range(6):
        angle = 2 * math.pi * i / 6
        start = (centre[0] + 0.05 * math.cos(angle), centre[1] + 0.05 * math.sin(angle))
        end = (centre[0] + 0.4 * math.cos(angle), centre[1] + 0.4 * math.sin(angle))
        burst.append(walk(10 + i, start, end, 2, t0=11))
    hits = run(engine, frames_of(*burst))
    assert len(hits) == 1
    assert hits[0][1] == set(range(10, 16))


def test_crowd_movement_detects_a_sudden_speed_up_against_the_baseline() -> None:
    engine = CameraRules([], [rule(RuleType.CROWD_MOVEMENT, min_tracks=4, speedup_factor=3)])
    slow = [walk(i, (0.1, 0.1 + 0.15 * i), (0.2, 0.1 + 0.15 * i), 10) for i in range(5)]
    fast = [walk(i, (0.2, 0.1 + 0.15 * i), (0.9, 0.1 + 0.15 * i), 2, t0=10.2) for i in range(5)]
    hits = run(engine, frames_of(*slow) + frames_of(*fast))
    assert len(hits) == 1
    assert hits[0][0] > 10


def test_abandoned_object_needs_stillness_and_nobody_near() -> None:
    engine = CameraRules([], [rule(RuleType.ABANDONED_OBJECT, classes=("Box",), stationary_s=20, owner_radius=0.1)])
    bag = TrackedObject(track_id=7, label="Box", score=0.6, box=(0.48, 0.48, 0.52, 0.52))
    owner_leaves = walk(1, (0.5, 0.52), (0.95, 0.9), 5)
    frames = [frame(t / 5, bag, *[o for tt, o in owner_leaves if abs(tt - t / 5) < 1e-6]) for t in range(150)]
    hits = run(engine, frames)
    assert [ids for _, ids in hits] == [{7}]
    assert hits[0][0] == pytest.approx(20.0, abs=0.25)
    watched = CameraRules([], [rule(RuleType.ABANDONED_OBJECT, classes=("Box",), stationary_s=20)])
    guard = person(2, 0.55, 0.55)
    assert run(watched, [frame(t / 5, bag, guard) for t in range(150)]) == []


def test_person_on_ground_needs_a_horizontal_box_that_stays() -> None:
    engine = CameraRules([], [rule(RuleType.PERSON_ON_GROUND, hold_s=4)], frame_size=(768, 576))
    standing = [frame(t / 5, person(1, 0.5, 0.6, w=0.05, h=0.2)) for t in range(10)]
    fallen = [frame(2 + t / 5, person(1, 0.5, 0.6, w=0.2, h=0.06)) for t in range(30)]
    hits = run(engine, standing + fallen)
    assert [ids for _, ids in hits] == [{1}]
    assert hits[0][0] == pytest.approx(6.0, abs=0.21)
    bends = CameraRules([], [rule(RuleType.PERSON_ON_GROUND, hold_s=4)], frame_size=(768, 576))
    brief = [frame(2 + t / 5, person(1, 0.5, 0.6, w=0.2, h=0.06)) for t in range(10)]
    assert run(bends, standing + brief + [frame(4 + t / 5, person(1, 0.5, 0.6)) for t in range(30)]) == []


def stats(luma: float = 110, contrast: float = 50, sharpness: float = 12, scene: float = 0.0,
          flat: float = 0.05) -> FrameStats:
    return FrameStats(mean_luma=luma, contrast=contrast, sharpness=sharpness, scene_change=scene, flat_share=flat)


@pytest.mark.parametrize(("tampered", "reason"), [
    (stats(luma=5, contrast=1, sharpness=0.1, flat=1.0), "blackout"),
    (stats(sharpness=2.0), "blur"),
    (stats(flat=0.8, luma=90, contrast=6), "obstruction"),
    (stats(scene=0.9), "scene change"),
])
def test_camera_tamper_detects_each_kind_after_it_persists(tampered: FrameStats, reason: str) -> None:
    engine = CameraRules([], [rule(RuleType.CAMERA_TAMPER, hold_s=3, cooldown_s=600)])
    normal = [frame(t / 5, stats=stats()) for t in range(50)]
    bad = [frame(10 + t / 5, stats=tampered) for t in range(30)]
    hits = []
    for f in normal + bad:
        hits += engine.evaluate(f, NOON)
    assert len(hits) == 1
    assert reason in hits[0].detail
    engine_brief = CameraRules([], [rule(RuleType.CAMERA_TAMPER, hold_s=3)])
    blip = [frame(10 + t / 5, stats=tampered) for t in range(5)]
    after = [frame(11 + t / 5, stats=stats()) for t in range(30)]
    assert all(not engine_brief.evaluate(f, NOON) for f in normal + blip + after)


def test_rules_only_consider_their_classes() -> None:
    z = zone(LEFT_HALF)
    engine = CameraRules([z], [rule(RuleType.INTRUSION, z, classes=("Car",))])
    people = walk(1, (0.9, 0.5), (0.1, 0.5), 3)
    car = [(t, person(2, x, 0.7, label="Car")) for t, x in ((0.0, 0.9), (1.0, 0.6), (2.0, 0.3))]
    assert [ids for _, ids in run(engine, frames_of(people, car))] == [{2}]


def test_disabled_rules_do_not_run() -> None:
    z = zone(LEFT_HALF)
    off = Rule(id=uuid.uuid4(), tenant_id=TENANT, camera_id=CAMERA, rule_type=RuleType.INTRUSION, zone_id=z.id,
               enabled=False)
    assert run(CameraRules([z], [off]), frames_of(walk(1, (0.9, 0.5), (0.1, 0.5), 3))) == []


def test_a_briefly_missed_track_keeps_its_state_but_a_lost_one_does_not() -> None:
    z = zone(LEFT_HALF)
    intrusion = rule(RuleType.INTRUSION, z)
    loitering = rule(RuleType.LOITERING, z, dwell_s=6)
    engine = CameraRules([z], [intrusion, loitering])
    inside = person(1, 0.2, 0.5)
    # Seen, missed by the detector for 1 s, seen again: one intrusion, and the dwell time keeps counting.
    frames = [frame(t / 5, inside) for t in range(10)] + [frame(2 + t / 5) for t in range(5)] \
        + [frame(3 + t / 5, inside) for t in range(20)]
    hits = [(f.timestamp, h.rule_id) for f in frames for h in engine.evaluate(f, NOON)]
    assert [r for _, r in hits] == [intrusion.id, loitering.id]
    assert hits[1][0] == pytest.approx(6.0, abs=0.21)
    # Lost for longer than the grace period: the same track id coming back is a new presence.
    later = [frame(8 + t / 5) for t in range(20)] + [frame(12.0, inside)]
    assert [h.rule_id for f in later for h in engine.evaluate(f, NOON)] == [intrusion.id]


def test_a_fragmented_track_inside_the_zone_does_not_raise_the_same_intrusion_again() -> None:
    z = zone(LEFT_HALF)
    engine = CameraRules([z], [rule(RuleType.INTRUSION, z)])
    # The tracker loses person 1 for two frames inside the zone and finds them again as track 7.
    first = walk(1, (0.9, 0.5), (0.3, 0.5), 3)
    again = walk(7, (0.24, 0.5), (0.1, 0.5), 1, t0=3.6)
    newcomer = walk(9, (0.45, 0.9), (0.3, 0.9), 1, t0=3.6)  # someone else, far from where track 1 was lost
    hits = run(engine, frames_of(first, again, newcomer))
    assert [ids for _, ids in hits] == [{1}, {9}]


def test_a_fragment_continues_the_side_of_the_line_so_a_crossing_in_the_gap_counts_once() -> None:
    line = zone([(0.5, 0.2), (0.5, 0.8)], kind="line")
    engine = CameraRules([line], [rule(RuleType.LINE_CROSSING, line)])
    before = walk(1, (0.8, 0.5), (0.52, 0.5), 2)
    after = walk(4, (0.48, 0.5), (0.2, 0.5), 2, t0=2.4)  # lost while on the line, found past it
    assert [ids for _, ids in run(engine, frames_of(before, after))] == [{4}]


RIGHT_HALF = [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]


def test_someone_coming_in_where_a_person_walked_out_of_the_frame_is_a_new_intrusion() -> None:
    z = zone(RIGHT_HALF)
    engine = CameraRules([z], [rule(RuleType.INTRUSION, z)])
    leaving = walk(1, (0.7, 0.5), (0.975, 0.5), 2)  # the last box touches the right border, moving out
    coming_in = walk(2, (0.97, 0.55), (0.8, 0.55), 1, t0=2.6)  # found there 0.6 s later: someone else
    assert [ids for _, ids in run(engine, frames_of(leaving, coming_in))] == [{1}, {2}]
    # Standing against the border is not leaving: a fragment found there continues the track.
    standing = CameraRules([z], [rule(RuleType.INTRUSION, z)])
    still = walk(1, (0.975, 0.5), (0.975, 0.5), 2)
    again = walk(2, (0.97, 0.5), (0.97, 0.5), 1, t0=2.6)
    assert [ids for _, ids in run(standing, frames_of(still, again))] == [{1}]


def test_a_fragment_is_sought_within_the_lost_persons_own_height_per_second() -> None:
    z = zone(RIGHT_HALF)
    # Far away (a box 0.09 high), lost for 1.6 s: someone 0.3 of the frame off is another person.
    far = CameraRules([z], [rule(RuleType.INTRUSION, z)])
    small = [(t / 5, person(1, 0.85, 0.3, w=0.03, h=0.09)) for t in range(6)]
    other = [(2.6 + t / 5, person(2, 0.85, 0.6, w=0.03, h=0.09)) for t in range(3)]
    assert [ids for _, ids in run(far, frames_of(small, other))] == [{1}, {2}]
    # Close to the camera (a box 0.5 high), a fragment 0.12 of the frame off after 0.4 s is the same person.
    near = CameraRules([z], [rule(RuleType.INTRUSION, z)])
    big = [(t / 5, person(1, 0.6 + 0.04 * t, 0.9, w=0.2, h=0.5)) for t in range(6)]
    fragment = [(1.4 + t / 5, person(2, 0.92 - 0.04 * t, 0.9, w=0.2, h=0.5)) for t in range(3)]
    assert [ids for _, ids in run(near, frames_of(big, fragment))] == [{1}]


def test_a_track_that_took_over_a_lost_one_which_shows_up_again_is_someone_else() -> None:
    z = zone(RIGHT_HALF)
    engine = CameraRules([z], [rule(RuleType.INTRUSION, z)])
    # Person 1 walks east towards the zone; person 2, already inside, walks west. Where they meet both are missed
    # and a new track 3 starts nearer to 2, so it takes 2's memory ("already reported")...
    east = walk(1, (0.3, 0.6), (0.47, 0.6), 2)
    west = walk(2, (0.8, 0.62), (0.53, 0.62), 2) + walk(2, (0.47, 0.62), (0.35, 0.62), 1, t0=2.6)
    third = walk(3, (0.52, 0.6), (0.53, 0.6), 0.4, t0=2.2) + walk(3, (0.53, 0.6), (0.6, 0.6), 1, t0=2.8)
    # ...until 2 shows up again outside: 3 was person 1 entering the zone, an intrusion of its own.
    assert [(round(t, 1), ids) for t, ids in run(engine, frames_of(east, west, third))] == [(0.0, {2}), (2.6, {3})]


def test_a_rule_ignores_detections_below_its_score_or_too_small_to_tell() -> None:
    z = zone(LEFT_HALF)
    faint = CameraRules([z], [rule(RuleType.INTRUSION, z, min_score=0.9)])
    assert run(faint, frames_of(walk(1, (0.9, 0.5), (0.1, 0.5), 2))) == []  # walk() scores 0.8
    tiny = CameraRules([z], [rule(RuleType.INTRUSION, z, min_box_height=0.2)])
    assert run(tiny, frames_of(walk(1, (0.9, 0.5), (0.1, 0.5), 2))) == []  # boxes are 0.15 high
    tall_enough = CameraRules([z], [rule(RuleType.INTRUSION, z, min_box_height=0.1)])
    assert len(run(tall_enough, frames_of(walk(1, (0.9, 0.5), (0.1, 0.5), 2)))) == 1
    with pytest.raises(InvalidRule, match="min_box_height"):
        check_rule("intrusion", RuleParams(min_box_height=1.5), zone=z, bases=[basis("forbidden_zone")],
                   today=date(2026, 6, 1), model_labels=LABELS)
