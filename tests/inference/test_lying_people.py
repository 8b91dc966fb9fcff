"""People on the ground found in turned crops of static regions (inference.lying_people), on synthetic arrays."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import numpy.typing as npt
import pytest

from inference.analytics import CameraRules
from inference.lying_people import (
    LOOK_TURNS,
    LYING_TRACK_BASE,
    Look,
    LyingOptions,
    LyingPeople,
    Place,
    candidate,
    confirm_with_pose,
    crop_box,
    decide,
    detector_box_to_frame,
    model_input,
    read_look,
    turn_box,
)
from inference.model import CameraConfig, FrameAnalysis, Rule, RuleParams, RuleType, StaticRegion, TrackedObject
from inference.portable import PortableBackend, _Looks
from inference.settings import InferenceSettings
from inference.ssd import RawDetection
from tests.inference.test_static_objects import NOON, Alerts, Reader, plates

TENANT = uuid.uuid4()
CAMERA = uuid.uuid4()
FRAME = (384, 288)


def bounds(mask: npt.NDArray[np.bool_]) -> tuple[float, float, float, float]:
    """The normalised box around the True pixels of a mask."""
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    return (xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height)


# Geometry ----------------------------------------------------------------------------------------------------


def test_the_crop_is_a_square_around_the_region_scaled_and_kept_inside_the_frame() -> None:
    region = (0.5, 0.5, 0.6, 0.55)  # pixels 192-231 x 144-159 (whole pixels around it)
    left, top, right, bottom = crop_box(region, FRAME, 2.5, 48)
    assert right - left == bottom - top == round(2.5 * 39)
    assert (left + right) / 2 == pytest.approx(0.55 * 384, abs=1)
    assert (top + bottom) / 2 == pytest.approx(0.525 * 288, abs=1)
    small = crop_box((0.5, 0.5, 0.51, 0.51), FRAME, 2.5, 48)
    assert small[2] - small[0] == small[3] - small[1] == 48  # never under min_side
    # Against the border the square moves inside rather than being cut.
    assert crop_box((0.0, 0.9, 0.1, 1.0), FRAME, 2.5, 48) == (0, 190, 98, 288)
    # In a frame smaller than the square, it is cut to the frame.
    assert crop_box((0.2, 0.2, 0.8, 0.4), (100, 40), 2.5, 48) == (0, 0, 100, 40)


@pytest.mark.parametrize("turn", [0, 1, 2, 3])
def test_a_box_found_in_a_turned_picture_maps_back_to_where_it_was(turn: int) -> None:
    picture = np.zeros((60, 80), dtype=bool)
    picture[10:25, 50:70] = True
    assert turn_box(bounds(np.rot90(picture, turn)), turn) == pytest.approx(bounds(picture))


@pytest.mark.parametrize("turn", [1, 3])
def test_a_lying_shape_stands_up_in_the_model_input_and_maps_back_to_the_frame(turn: int) -> None:
    rgb = np.full((288, 384, 3), 120, dtype=np.uint8)
    rgb[150:165, 200:240] = 20  # a wide dark patch: someone lying across the picture
    region = (200 / 384, 150 / 288, 240 / 384, 165 / 288)
    crop = crop_box(region, FRAME, 2.5, 48)
    image = model_input(rgb, crop, turn, 300, 1.5)
    assert image.shape == (300, 300, 3)
    dark = image[..., 0] < 70
    x1, y1, x2, y2 = bounds(dark)
    assert y2 - y1 > 2 * (x2 - x1)  # upright in the turned crop
    back = detector_box_to_frame((x1, y1, x2, y2), turn, crop, FRAME, 300, 1.5)
    assert back == pytest.approx(region, abs=2 / 288)


def test_a_crop_beyond_the_stretch_bound_is_padded_and_still_maps_back() -> None:
    rgb = np.full((288, 384, 3), 120, dtype=np.uint8)
    rgb[270:280, 20:60] = 20
    crop = (0, 248, 384, 288)  # a wide strip: letterboxed, padded at the bottom
    image = model_input(rgb, crop, 0, 300, 1.5)
    assert not image[200:].any()
    patch = (image[..., 0] > 5) & (image[..., 0] < 70)  # dark, not the black padding
    back = detector_box_to_frame(bounds(patch), 0, crop, FRAME, 300, 1.5)
    assert back == pytest.approx((20 / 384, 270 / 288, 60 / 384, 280 / 288), abs=2 / 288)


# Which regions are looked at, and what a look decides ------------------------------------------------------


def region(box: tuple[float, float, float, float], still_s: float = 2.0) -> StaticRegion:
    return StaticRegion(box=box, still_s=still_s)


WIDE = (0.5, 0.5, 0.6, 0.55)


def test_only_wide_regions_not_under_a_tracked_person_are_looked_at() -> None:
    options = LyingOptions(min_still_s=1.0)
    assert candidate(region(WIDE), FRAME, [], options)
    assert not candidate(region((0.5, 0.3, 0.53, 0.5)), FRAME, [], options)  # tall: someone standing still
    assert not candidate(region(WIDE, still_s=0.4), FRAME, [], options)
    standing = TrackedObject(track_id=1, label="Person", score=0.8, box=(0.48, 0.3, 0.62, 0.56))
    assert not candidate(region(WIDE), FRAME, [standing], options)
    car = TrackedObject(track_id=2, label="Car", score=0.8, box=(0.48, 0.3, 0.62, 0.56))
    assert candidate(region(WIDE), FRAME, [car], options)


def test_a_wide_person_on_the_region_in_a_turned_crop_is_a_person_lying() -> None:
    options = LyingOptions()
    lying = ((0.49, 0.49, 0.61, 0.56), 0.55)
    assert decide(Look(region=WIDE, lying=(lying,), upright=()), FRAME, options) == lying
    # Too unsure, elsewhere, or upright on screen: not a person lying there.
    assert decide(Look(region=WIDE, lying=(((0.49, 0.49, 0.61, 0.56), 0.3),), upright=()), FRAME, options) is None
    assert decide(Look(region=WIDE, lying=(((0.1, 0.1, 0.2, 0.15), 0.9),), upright=()), FRAME, options) is None
    assert decide(Look(region=WIDE, lying=(((0.49, 0.3, 0.61, 0.56), 0.9),), upright=()), FRAME, options) is None
    # An upright person found in the unturned crop at that place vetoes it.
    standing = ((0.5, 0.3, 0.56, 0.56), 0.6)
    assert decide(Look(region=WIDE, lying=(lying,), upright=(standing,)), FRAME, options) is None
    # The best of several.
    better = ((0.5, 0.5, 0.6, 0.55), 0.7)
    assert decide(Look(region=WIDE, lying=(lying, better), upright=()), FRAME, options) == better


class FixedPose:
    """A pose model that gives every crop the same score and keeps the crops it was asked about."""

    def __init__(self, score: float) -> None:
        self.score = score
        self.crops: list[tuple[int, int, int, int]] = []

    def lying_score(self, rgb: npt.NDArray[np.uint8], crop: tuple[int, int, int, int]) -> float:
        assert rgb.shape[2:] == (3,)
        self.crops.append(crop)
        return self.score


def test_the_pose_model_confirms_only_what_the_detector_found_lying_and_can_veto_it() -> None:
    options = LyingOptions()
    lying = ((0.49, 0.49, 0.61, 0.56), 0.55)
    found = Look(region=WIDE, lying=(lying,), upright=())
    nobody = Look(region=WIDE, lying=(), upright=())
    rgb = np.zeros((FRAME[1], FRAME[0], 3), dtype=np.uint8)
    sure, unsure = FixedPose(0.4), FixedPose(0.2)
    kept = confirm_with_pose([found, nobody], rgb, FRAME, sure, options)
    assert [k.pose_score for k in kept] == [0.4, None]  # the empty look costs no pose run
    assert sure.crops == [crop_box(WIDE, FRAME, options.pose_crop_scale, options.min_pose_crop_px)]
    assert decide(kept[0], FRAME, options) == lying
    vetoed = confirm_with_pose([found], rgb, FRAME, unsure, options)
    assert vetoed[0].pose_score == 0.2
    assert decide(vetoed[0], FRAME, options) is None
    # Without a pose model the detector alone decides.
    assert confirm_with_pose([found], rgb, FRAME, None, options) == [found]


def test_a_look_reads_the_unturned_crop_as_upright_and_the_turned_ones_as_lying() -> None:
    crop = crop_box(WIDE, FRAME, 2.5, 48)
    people = [[((0.0, 0.0, 0.5, 0.5), 0.5)] for _ in LOOK_TURNS]
    look = read_look(WIDE, crop, FRAME, people, 300, 1.5)
    assert len(look.upright) == 1
    assert len(look.lying) == len(LOOK_TURNS) - 1


def test_each_place_keeps_its_track_id_is_looked_at_once_a_second_and_is_forgotten_when_gone() -> None:
    watch = LyingPeople(LyingOptions(recheck_s=1.0, forget_s=3.0))
    due = watch.due([region(WIDE)], FRAME, [], 0.0)
    assert [p.track_id for p in due] == [LYING_TRACK_BASE]
    assert watch.due([region(WIDE)], FRAME, [], 0.4) == []
    watch.found(due[0], Look(region=WIDE, lying=((WIDE, 0.6),), upright=()), FRAME)
    assert [o.track_id for o in watch.lying(0.4)] == [LYING_TRACK_BASE]
    moved = (0.51, 0.5, 0.61, 0.55)  # the same place, its outline flickering
    assert [p.track_id for p in watch.due([region(moved)], FRAME, [], 1.0)] == [LYING_TRACK_BASE]
    assert watch.lying(1.0)[0].box == WIDE
    assert watch.due([], FRAME, [], 1.2) == []
    assert watch.lying(1.2) == ()  # not seen in this frame
    assert watch.due([], FRAME, [], 4.5) == []
    assert watch.places == []
    assert [p.track_id for p in watch.due([region(WIDE)], FRAME, [], 5.0)] == [LYING_TRACK_BASE + 1]



def test_a_place_that_keeps_showing_nobody_is_looked_at_less_and_less_often() -> None:
    watch = LyingPeople(LyingOptions(recheck_s=1.0, patience=3, max_recheck_s=8.0, forget_s=3.0))
    nobody = Look(region=WIDE, lying=(), upright=())
    looked = []
    for tenth in range(400):  # 40 s of frames at 10 a second, the place always there
        t = tenth / 10
        for place in watch.due([region(WIDE)], FRAME, [], t):
            looked.append(t)
            watch.found(place, nobody, FRAME)
    # Three looks a second apart, then 2, 4 and 8 s apart, capped at 8.
    assert looked == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0]
    place = watch.places[0]
    watch.found(place, Look(region=WIDE, lying=((WIDE, 0.6),), upright=()), FRAME)  # someone lies there now
    assert place.empty_looks == 0
    assert [p.track_id for p in watch.due([region(WIDE)], FRAME, [], 41.0)] == [place.track_id]
    assert watch.due([region(WIDE)], FRAME, [], 41.5) == []  # back to once a second


def test_a_lying_person_stays_found_through_one_empty_look_but_not_two_nor_once_seen_upright() -> None:
    watch = LyingPeople(LyingOptions(recheck_s=1.0, grace_looks=1))
    lying = Look(region=WIDE, lying=((WIDE, 0.6),), upright=())
    nobody = Look(region=WIDE, lying=(), upright=())
    upright = Look(region=WIDE, lying=(), upright=((WIDE, 0.7),))
    shown = []
    for t, look in enumerate((lying, nobody, lying, nobody, nobody, lying, upright)):
        for place in watch.due([region(WIDE)], FRAME, [], float(t)):
            watch.found(place, look, FRAME)
        shown.append(len(watch.lying(float(t))))
    assert shown == [1, 1, 1, 1, 0, 1, 0]


# The rule ----------------------------------------------------------------------------------------------------


def ground_rule(hold_s: float = 4.0) -> Rule:
    return Rule(id=uuid.uuid4(), tenant_id=TENANT, camera_id=CAMERA, rule_type=RuleType.PERSON_ON_GROUND,
                params=RuleParams(hold_s=hold_s))


def analysis(t: float, *lying: TrackedObject) -> FrameAnalysis:
    return FrameAnalysis(camera_id=CAMERA, tenant_id=TENANT, timestamp=t, objects=(), lying_people=lying)


def test_the_rule_holds_a_lying_person_from_the_backend_and_forgets_one_no_longer_handed() -> None:
    lying = TrackedObject(track_id=LYING_TRACK_BASE, label="Person", score=0.5, box=WIDE)
    engine = CameraRules([], [ground_rule()], frame_size=FRAME)
    hits = [t / 5 for t in range(40) for _ in engine.evaluate(analysis(t / 5, lying), NOON)]
    assert hits == [pytest.approx(4.0)]
    # Handed for 3 s, missing once, handed again: the hold starts over.
    engine = CameraRules([], [ground_rule()], frame_size=FRAME)
    frames = [analysis(t / 5, lying) for t in range(15)] + [analysis(3.0)] + [
        analysis(3.2 + t / 5, lying) for t in range(15)]
    assert [f.timestamp for f in frames for _ in engine.evaluate(f, NOON)] == []


# The backend ---------------------------------------------------------------------------------------------------


class UprightDarkShapes:
    """Stands for the detector: calls a dark patch a Person when it is taller than wide, in any input."""

    labels = ["Person", "Box"]

    def __init__(self) -> None:
        self.images = 0

    def detect(self, frames: list[npt.NDArray[np.uint8]]) -> list[list[RawDetection]]:
        self.images += len(frames)
        found: list[list[RawDetection]] = []
        for image in frames:
            dark = image[..., 0] < 70
            if not dark.any():
                found.append([])
                continue
            x1, y1, x2, y2 = bounds(dark)
            found.append([RawDetection(0, 0.8, (x1, y1, x2, y2))] if y2 - y1 > x2 - x1 else [])
        return found


def with_patch(shape: tuple[slice, slice], appears: float, seconds: float = 14.0
               ) -> list[tuple[float, npt.NDArray[np.uint8]]]:
    frames = []
    for t, image in plates(seconds):
        if t >= appears:
            image[shape] = 30.0
        frames.append((t, np.clip(image, 0, 255).astype(np.uint8)))
    return frames


def backend_alerts(frames: list[tuple[float, npt.NDArray[np.uint8]]], with_rule: bool = True,
                   pose: FixedPose | None = None) -> tuple[list[float], PortableBackend, UprightDarkShapes]:
    readers: dict[uuid.UUID, Reader] = {}

    def factory(camera_id: uuid.UUID, *args: object) -> Reader:
        readers[camera_id] = Reader(camera_id)
        return readers[camera_id]

    sink = Alerts()
    detector = UprightDarkShapes()
    backend = PortableBackend(detector, sink, InferenceSettings(keepalive_s=3600.0),
                              reader_factory=factory, pose=pose)  # type: ignore[arg-type]
    rules = (ground_rule(),) if with_rule else ()
    backend.apply([CameraConfig(camera_id=CAMERA, tenant_id=TENANT, name="c", stream_url="rtsp://x/sub",
                                rules=rules)])
    times: list[float] = []

    async def play() -> None:
        for t, image in frames:
            readers[CAMERA].put(image, t)
            count = len(sink.events)
            await backend.step()
            times.extend(t for e in sink.events[count:] if getattr(e, "rule_type", None) == "person_on_ground")

    asyncio.run(play())
    return times, backend, detector


# On the small grey image (96x128): 5 x 14 pixels, 15 x 42 on the 288x384 picture the backend crops.
LYING = (slice(50, 55), slice(60, 74))
STANDING = (slice(40, 54), slice(60, 65))


def test_the_portable_backend_finds_someone_lying_in_turned_crops_and_holds_them() -> None:
    times, backend, detector = backend_alerts(with_patch(LYING, appears=2.0))
    # Seen as a static region about a second after lying down, then held hold_s (4 s).
    assert len(times) == 1
    assert 6.0 <= times[0] <= 8.0
    runtime = backend.cameras[CAMERA]
    assert runtime.static is not None
    assert runtime.lying is not None
    # At most one look (three crops) per second at the place, and only while it is there.
    assert 0 < backend.crop_images <= len(LOOK_TURNS) * 13
    assert backend.crop_images % len(LOOK_TURNS) == 0
    assert detector.images == backend.crop_images + runtime.counters.detected


def test_the_portable_backend_asks_the_pose_model_and_alerts_only_when_it_agrees() -> None:
    agrees, disagrees = FixedPose(0.9), FixedPose(0.1)
    times, backend, _ = backend_alerts(with_patch(LYING, appears=2.0), pose=agrees)
    assert len(times) == 1
    assert 6.0 <= times[0] <= 8.0
    # Asked once per look the detector called lying, on a square around the patch (columns 180-222, rows 150-165).
    assert 0 < len(agrees.crops) <= backend.crop_images // len(LOOK_TURNS)
    for left, top, right, bottom in agrees.crops:
        assert 0 <= left <= 180
        assert 0 <= top <= 150
        assert 222 <= right <= 384
        assert 165 <= bottom <= 288
    times, backend, _ = backend_alerts(with_patch(LYING, appears=2.0), pose=disagrees)
    assert times == []
    assert disagrees.crops  # it was asked, and said no
    assert backend.crop_images > 0


def test_someone_standing_still_is_not_looked_at_and_cameras_without_the_rule_pay_nothing() -> None:
    times, backend, _ = backend_alerts(with_patch(STANDING, appears=2.0))
    assert times == []
    assert backend.crop_images == 0
    times, backend, _ = backend_alerts(with_patch(LYING, appears=2.0), with_rule=False)
    assert times == []
    assert backend.crop_images == 0
    assert backend.cameras[CAMERA].static is None
    assert backend.cameras[CAMERA].lying is None


def test_lying_settings_are_validated() -> None:
    from pydantic import ValidationError

    for wrong in ({"lying_score_threshold": 0.0}, {"lying_crop_scale": 0.5}, {"lying_recheck_s": 0.0},
                  {"lying_pose_threshold": -0.1}, {"lying_pose_threshold": 1.0}):
        with pytest.raises(ValidationError):
            InferenceSettings(**wrong)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="lying_score_threshold must be at least score_threshold"):
        InferenceSettings(score_threshold=0.4, lying_score_threshold=0.3)
    assert InferenceSettings(score_threshold=0.5).lying_threshold == 0.5
    assert InferenceSettings(score_threshold=0.4, lying_score_threshold=0.45).lying_threshold == 0.45


def test_looks_wait_for_room_in_the_batch_oldest_camera_first_and_one_camera_s_always_goes() -> None:
    backend = PortableBackend(UprightDarkShapes(), Alerts(), InferenceSettings(max_batch=8),
                              reader_factory=Reader)  # type: ignore[arg-type]
    cameras = [uuid.uuid4() for _ in range(3)]
    backend.apply([CameraConfig(camera_id=c, tenant_id=TENANT, name="c", stream_url="rtsp://x/sub",
                                rules=(ground_rule(),)) for c in cameras])
    frame = object()
    for count, camera_id in enumerate(cameras, start=1):  # 1, 2 and 3 places: 3, 6 and 9 images
        places = [Place(track_id=LYING_TRACK_BASE + 10 * count + i, region=WIDE, seen_at=0.0) for i in range(count)]
        backend._looks[camera_id] = _Looks(frame, places)  # type: ignore[arg-type]
    first = backend._take_looks(room=8)  # 3 fit, 3 + 6 do not
    assert [runtime.camera_id for runtime, _ in first] == cameras[:1]
    second = backend._take_looks(room=0)  # a full batch still takes one camera's looks
    assert [runtime.camera_id for runtime, _ in second] == cameras[1:2]
    assert list(backend._looks) == cameras[2:]
    backend._stop_camera(cameras[2])
    assert backend._take_looks(room=100) == []
    backend.close()
