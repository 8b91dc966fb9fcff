"""SSD decoding, tracker, motion gate and fair scheduler: pure components, checked against first principles."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import av
import numpy as np
import pytest

from inference.model import TrackedObject
from inference.motion import MotionGate, frame_stats, small_grey
from inference.rtsp import DecodedFrame
from inference.scheduler import FairScheduler, UsageMeter
from inference.ssd import (
    BOX_SCALES,
    INPUT_SIZE,
    NUM_ANCHORS,
    decode_boxes,
    iou_matrix,
    letterbox_size,
    non_max_suppression,
    per_class_detections,
    postprocess,
    preprocess,
    ssd_anchors,
    unletterbox,
)
from inference.tracker import DetectedBox, DisplacementConfirmation, IouTracker

# SSD ------------------------------------------------------------------------------------------------------

def test_anchor_grid_matches_the_model_outputs() -> None:
    anchors = ssd_anchors()
    assert anchors.shape == (NUM_ANCHORS, 4)
    # Lowest layer: 19x19 cells, 3 boxes each, the first centred in the first cell of a 19-wide grid.
    assert anchors[0, :2] == pytest.approx([0.5 / 19, 0.5 / 19])
    assert anchors[0, 2:] == pytest.approx([0.1, 0.1])
    assert anchors[1083 - 1, :2] == pytest.approx([18.5 / 19, 18.5 / 19])
    # Last layer: a single cell at the centre with six boxes.
    assert anchors[-6:, :2] == pytest.approx(np.full((6, 2), 0.5))
    assert float(anchors[:, 2:].min()) > 0


def test_zero_encodings_decode_to_the_anchor_itself() -> None:
    anchors = np.asarray([[0.5, 0.4, 0.2, 0.3]], dtype=np.float32)  # y, x, h, w
    box = decode_boxes(np.zeros((1, 4), dtype=np.float32), anchors)[0]
    assert box == pytest.approx([0.4 - 0.15, 0.5 - 0.1, 0.4 + 0.15, 0.5 + 0.1])
    shifted = decode_boxes(np.asarray([[BOX_SCALES[0] * 0.5, 0, BOX_SCALES[2] * math.log(2), 0]],
                                      dtype=np.float32), anchors)[0]
    # ty of one scale unit moves the centre by half the anchor height; th of log 2 doubles the height.
    assert (shifted[1] + shifted[3]) / 2 == pytest.approx(0.5 + 0.1)
    assert shifted[3] - shifted[1] == pytest.approx(0.4)


def test_nms_keeps_the_best_of_overlapping_boxes_and_distinct_ones() -> None:
    boxes = np.asarray([[0.1, 0.1, 0.3, 0.3], [0.11, 0.1, 0.31, 0.3], [0.6, 0.6, 0.8, 0.8]], dtype=np.float32)
    scores = np.asarray([0.7, 0.9, 0.5], dtype=np.float32)
    assert non_max_suppression(boxes, scores, 0.45) == [1, 2]
    assert iou_matrix(boxes[:1], boxes[:1])[0, 0] == pytest.approx(1.0)


def test_nms_keeps_what_greedy_suppression_box_by_box_keeps_on_random_boxes() -> None:
    def box_by_box(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
        order = [int(i) for i in np.argsort(-scores)]
        kept = []
        while order:
            best = order.pop(0)
            kept.append(best)
            order = [i for i in order if iou_matrix(boxes[best:best + 1], boxes[i:i + 1])[0, 0] <= threshold]
        return kept

    rng = np.random.default_rng(5)
    for _ in range(200):
        count = int(rng.integers(1, 40))
        corners = rng.random((count, 2), dtype=np.float32) * 0.8
        sizes = rng.random((count, 2), dtype=np.float32) * 0.3
        boxes = np.concatenate([corners, corners + sizes], axis=1)
        scores = rng.random(count, dtype=np.float32)
        for threshold in (0.3, 0.45, 0.7):
            assert non_max_suppression(boxes, scores, threshold) == box_by_box(boxes, scores, threshold)


def test_one_pass_over_all_classes_keeps_what_nms_class_by_class_keeps() -> None:
    def class_by_class(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, threshold: float,
                       limit: int) -> list[tuple[int, float, tuple[float, ...]]]:
        kept = []
        for class_id in np.unique(class_ids):
            same = np.nonzero(class_ids == class_id)[0]
            for index in non_max_suppression(boxes[same], scores[same], threshold):
                i = same[index]
                if boxes[i, 2] > boxes[i, 0] and boxes[i, 3] > boxes[i, 1]:
                    kept.append((int(class_id), float(scores[i]), tuple(float(v) for v in boxes[i])))
        kept.sort(key=lambda d: -d[1])
        return kept[:limit]

    rng = np.random.default_rng(11)
    for _ in range(200):
        count = int(rng.integers(1, 40))
        corners = rng.random((count, 2), dtype=np.float32) * 0.8
        sizes = rng.random((count, 2), dtype=np.float32) * 0.3
        sizes[rng.random(count) < 0.1, 0] = 0.0  # some empty boxes, which are never reported
        boxes = np.concatenate([corners, corners + sizes], axis=1)
        scores = rng.random(count, dtype=np.float32)
        class_ids = rng.integers(1, 4, size=count)
        for threshold, limit in ((0.3, 100), (0.45, 100), (0.45, 3)):
            found = per_class_detections(boxes, scores, class_ids, threshold, limit)
            assert [(d.class_id, d.score, d.box) for d in found] == class_by_class(
                boxes, scores, class_ids, threshold, limit)


def test_postprocess_picks_the_best_foreground_class_above_threshold() -> None:
    anchors = ssd_anchors()
    logits = np.full((NUM_ANCHORS, 24), -10.0, dtype=np.float32)
    logits[100, 4] = 2.0  # "Person" with sigmoid(2) = 0.88
    logits[100, 23] = 1.0
    logits[200, 0] = 5.0  # background only
    logits[300, 23] = -0.5  # below threshold
    detections = postprocess(np.zeros((NUM_ANCHORS, 4), dtype=np.float32), logits, anchors,
                             score_threshold=0.4, iou_threshold=0.45)
    assert [(d.class_id, round(d.score, 3)) for d in detections] == [(4, round(1 / (1 + math.exp(-2)), 3))]
    only_cars = postprocess(np.zeros((NUM_ANCHORS, 4), dtype=np.float32), logits, anchors, score_threshold=0.4,
                            iou_threshold=0.45, allowed_classes=frozenset({23}))
    assert only_cars == []


def test_preprocess_maps_pixels_to_minus_one_one_in_nchw() -> None:
    frame = np.zeros((300, 300, 3), dtype=np.uint8)
    frame[..., 0] = 255
    batch = preprocess([frame, frame])
    assert batch.shape == (2, 3, 300, 300)
    assert float(batch[0, 0].min()) == pytest.approx(1.0)
    assert float(batch[1, 2].max()) == pytest.approx(-1.0)


def test_preprocess_equals_the_plain_formula_on_random_pixels() -> None:
    frames = [np.random.default_rng(seed).integers(0, 256, (300, 300, 3), dtype=np.uint8) for seed in range(3)]
    expected = np.stack(frames).astype(np.float32).transpose(0, 3, 1, 2) * np.float32(1.0 / 127.5) - np.float32(1.0)
    batch = preprocess(frames)
    assert batch.dtype == np.float32
    assert batch.flags.c_contiguous
    assert np.array_equal(batch, expected)


# Tracker --------------------------------------------------------------------------------------------------

def test_tracker_keeps_identities_of_crossing_walkers_and_confirms_after_two_hits() -> None:
    tracker = IouTracker()
    first = tracker.update([DetectedBox("Person", 0.8, (0.1, 0.1, 0.2, 0.4))], 0.0)
    assert first == []  # one sighting is not a track yet
    ids: dict[str, set[int]] = {"left": set(), "right": set()}
    for step in range(1, 20):
        t = step * 0.2
        dx = 0.02 * step
        seen = tracker.update([DetectedBox("Person", 0.8, (0.1 + dx, 0.1, 0.2 + dx, 0.4)),
                               DetectedBox("Person", 0.7, (0.8 - dx, 0.5, 0.9 - dx, 0.8))], t)
        for obj in seen:
            ids["left" if obj.box[1] < 0.3 else "right"].add(obj.track_id)
    assert len(ids["left"]) == 1
    assert len(ids["right"]) == 1
    assert ids["left"] != ids["right"]
    assert tracker.moving_tracks == 2


def test_tracker_drops_tracks_after_misses_and_does_not_mix_labels() -> None:
    tracker = IouTracker(max_misses=2)
    for step in range(3):
        tracker.update([DetectedBox("Car", 0.8, (0.1, 0.1, 0.3, 0.3))], step * 0.2)
    assert tracker.live_tracks == 1
    same_place_person = tracker.update([DetectedBox("Person", 0.8, (0.1, 0.1, 0.3, 0.3))], 0.6)
    assert same_place_person == []  # a new track, not the car's
    for step in range(4, 8):
        tracker.update([], step * 0.2)
    assert tracker.live_tracks == 0


# Motion gate ----------------------------------------------------------------------------------------------

def test_motion_gate_ignores_noise_and_lighting_steps_but_sees_a_moving_object() -> None:
    rng = np.random.default_rng(1)
    scene = rng.integers(40, 200, size=(90, 160), dtype=np.uint8)
    gate = MotionGate()
    assert gate.observe(scene).has_motion  # the first frame is always looked at
    noisy = [np.clip(scene.astype(int) + rng.integers(-6, 7, scene.shape), 0, 255).astype(np.uint8)
             for _ in range(20)]
    assert not any(gate.observe(f).has_motion for f in noisy)
    walker = scene.copy()
    walker[40:60, 70:78] = 255
    assert gate.observe(walker).has_motion
    lights_on = np.clip(scene.astype(int) + 90, 0, 255).astype(np.uint8)
    result = gate.observe(lights_on)
    assert result.scene_changed
    assert not result.has_motion
    assert not gate.observe(lights_on).has_motion  # the new lighting became the background


def test_motion_gate_restarts_when_the_resolution_changes() -> None:
    gate = MotionGate()
    gate.observe(np.zeros((90, 160), dtype=np.uint8))
    gate.observe(np.zeros((90, 160), dtype=np.uint8))
    assert gate.observe(np.zeros((120, 160), dtype=np.uint8)).has_motion


def test_frame_stats_tell_black_textured_and_blurred_pictures_apart() -> None:
    rng = np.random.default_rng(2)
    textured = frame_stats(rng.integers(0, 255, size=(90, 160), dtype=np.uint8), 0.0)
    black = frame_stats(np.full((90, 160), 3, dtype=np.uint8), 0.0)
    gradient = np.tile(np.linspace(0, 255, 160, dtype=np.float32), (90, 1)).astype(np.uint8)
    smooth = frame_stats(gradient, 0.0)
    assert black.mean_luma < 5
    assert black.flat_share == 1.0
    assert textured.sharpness > 20 * max(smooth.sharpness, 0.1)
    assert textured.flat_share == 0.0


def _plain_frame_stats(grey: np.ndarray, previous: np.ndarray) -> dict[str, object]:
    """The statistics by their definitions, in floats: what frame_stats must compute, however it does it."""
    image = grey.astype(np.float64)
    h, w = image.shape
    blocks = image[: h - h % 8, : w - w % 8].reshape(h // 8, 8, w // 8, 8)
    laplacian = (4 * image[1:-1, 1:-1] - image[:-2, 1:-1] - image[2:, 1:-1] - image[1:-1, :-2] - image[1:-1, 2:])
    return {"mean_luma": image.mean(), "contrast": image.std(), "sharpness": np.abs(laplacian).mean(),
            "frame_delta": np.abs(image - previous).mean(), "flat_share": (blocks.std(axis=(1, 3)) < 2.0).mean(),
            "histogram": np.bincount(grey.ravel() // 16, minlength=16) / grey.size}


def test_frame_stats_equal_their_plain_definitions() -> None:
    rng = np.random.default_rng(5)
    # Blocks spreading by exactly 2 levels (half at 100, half at 104) sit on the flat threshold and are not flat;
    # 1.5 levels (half at 100, half at 103) are.
    edge = np.tile(np.array([[100, 104], [104, 100]], dtype=np.uint8), (48, 64))
    edge[:, 64:] = np.tile(np.array([[100, 103], [103, 100]], dtype=np.uint8), (48, 32))
    pictures = [rng.integers(0, 256, size=(96, 128), dtype=np.uint8),
                rng.integers(100, 106, size=(97, 131), dtype=np.uint8),  # sizes that are not multiples of 8
                np.tile(np.linspace(0, 255, 160).astype(np.uint8), (90, 1)), edge]
    for picture in pictures:
        previous = np.roll(picture, 3, axis=1)
        stats = frame_stats(picture, 0.25, previous)
        plain = _plain_frame_stats(picture, previous)
        for name in ("mean_luma", "contrast", "sharpness", "frame_delta"):
            assert getattr(stats, name) == pytest.approx(plain[name], abs=1e-6), name
        assert stats.flat_share == plain["flat_share"]
        assert stats.histogram == pytest.approx(tuple(plain["histogram"]), abs=1e-12)
        assert stats.scene_change == 0.25
    assert frame_stats(edge, 0.0).flat_share == 0.5
    assert frame_stats(np.zeros((5, 7), dtype=np.uint8), 0.0).flat_share == 0.0  # no whole block

# Fair scheduler -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cam:
    camera_id: uuid.UUID
    tenant_id: uuid.UUID
    weight: float


def test_a_large_tenant_cannot_starve_a_small_one_and_weights_set_the_ratio() -> None:
    big, small, premium = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cameras = ([Cam(uuid.uuid4(), big, 1.0) for _ in range(200)] + [Cam(uuid.uuid4(), small, 1.0) for _ in range(5)]
               + [Cam(uuid.uuid4(), premium, 2.0) for _ in range(50)])
    scheduler = FairScheduler()
    served: dict[uuid.UUID, int] = {big: 0, small: 0, premium: 0}
    per_camera: dict[uuid.UUID, int] = {}
    for _ in range(100):  # saturated: every camera always has a frame ready, 8 slots per batch
        for cam in scheduler.select(cameras, 8):
            served[cam.tenant_id] += 1
            per_camera[cam.camera_id] = per_camera.get(cam.camera_id, 0) + 1
    assert served[small] == pytest.approx(200, abs=2)  # 1 share of 4 of 800 slots
    assert served[big] == pytest.approx(200, abs=2)
    assert served[premium] == pytest.approx(400, abs=2)  # twice the weight
    small_cams = [c.camera_id for c in cameras if c.tenant_id == small]
    assert {per_camera[c] for c in small_cams} == {40}  # round-robin inside a tenant


def test_an_idle_tenant_does_not_bank_credit() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    cam_a, cam_b = Cam(uuid.uuid4(), a, 1.0), Cam(uuid.uuid4(), b, 1.0)
    scheduler = FairScheduler()
    for _ in range(100):
        scheduler.select([cam_a], 1)
    picks = [scheduler.select([cam_a, cam_b], 1)[0].tenant_id for _ in range(10)]
    # b, idle until now, starts level with a (at most one slot ahead), instead of owning the next 100 slots.
    assert abs(picks.count(a) - picks.count(b)) <= 2
    assert a in picks[:3]


def test_metering_splits_batch_time_among_its_frames_and_survives_a_failed_flush() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    meter = UsageMeter()
    meter.record_batch([a, a, b, a], 0.04)
    drained = meter.drain()
    assert drained[a].detector_seconds == pytest.approx(0.03)
    assert drained[a].frames == 3
    assert drained[b].detector_seconds == pytest.approx(0.01)
    assert meter.drain() == {}
    meter.restore(drained)
    meter.record_batch([b], 0.02)
    again = meter.drain()
    assert again[b].detector_seconds == pytest.approx(0.03)
    assert meter.totals[a].frames == 3


# Letterboxing -----------------------------------------------------------------------------------------------

def test_letterboxing_keeps_the_aspect_ratio_and_maps_boxes_back_to_the_picture() -> None:
    assert letterbox_size(640, 272) == (300, 128)
    assert letterbox_size(384, 288) == (300, 225)
    assert letterbox_size(272, 640) == (128, 300)
    assert letterbox_size(300, 300) == (INPUT_SIZE, INPUT_SIZE)
    # A bounded stretch: 4:3 fills the square, 2.35:1 is squeezed by 1.5 and padded for the rest.
    assert letterbox_size(384, 288, 1.5) == (INPUT_SIZE, INPUT_SIZE)
    assert letterbox_size(640, 272, 1.5) == (300, 191)
    # A box over the whole content area is the whole picture; padding below maps past it and is clipped.
    assert unletterbox((0.0, 0.0, 1.0, 128 / 300), (300, 128)) == pytest.approx((0.0, 0.0, 1.0, 1.0))
    assert unletterbox((0.5, 0.2, 0.6, 0.9), (300, 128))[3] == 1.0


def test_a_letterboxed_detector_input_holds_the_picture_unstretched_above_black_padding() -> None:
    picture = np.zeros((272, 640, 3), dtype=np.uint8)
    picture[:, 320:] = 255  # right half white
    frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
    decoded = DecodedFrame(camera_id=uuid.uuid4(), timestamp=0.0, captured_at=None,  # type: ignore[arg-type]
                           frame_size=(640, 272), motion=None, stats=None, picture=frame)  # type: ignore[arg-type]
    decoded.max_stretch = 1.0
    image = decoded.detector_input
    assert image.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    assert image[:128, 160:].mean() > 240  # the halves where they were
    assert image[:128, :140].mean() < 15
    assert image[130:].max() == 0  # padding
    stretched = DecodedFrame(camera_id=uuid.uuid4(), timestamp=0.0, captured_at=None,  # type: ignore[arg-type]
                             frame_size=(640, 272), motion=None, stats=None,  # type: ignore[arg-type]
                             picture=frame, max_stretch=10.0)
    assert stretched.detector_input[250:].mean() > 100  # the picture fills the square



@pytest.mark.parametrize(("size", "max_stretch"), [((384, 288), 1.5), ((384, 288), 1.0), ((640, 360), 1.0)])
def test_the_detector_input_is_the_rgb_picture_scaled_in_red_green_blue_order(size: tuple[int, int],
                                                                              max_stretch: float) -> None:
    """Made through swscale's BGRA path and read as RGB: each colour lands in its own channel, and the pixels are
    those of a plain RGB scaling but for resampling rounding."""
    width, height = size
    rng = np.random.default_rng(5)
    blocks = rng.integers(0, 256, size=(height // 16, width // 16, 3), dtype=np.uint8)
    blocks[0, 0] = (255, 0, 0)  # a red corner, top left, where it stays
    rgb = np.kron(blocks, np.ones((16, 16, 1), dtype=np.uint8))
    picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    decoded = DecodedFrame(camera_id=uuid.uuid4(), timestamp=0.0, captured_at=None,  # type: ignore[arg-type]
                           frame_size=size, motion=None, stats=None,  # type: ignore[arg-type]
                           picture=picture, max_stretch=max_stretch)
    content_width, content_height = decoded.detector_content
    image = decoded.detector_input
    assert image.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    corner = image[2:6, 2:6].reshape(-1, 3).mean(axis=0)
    assert corner[0] > 200
    assert corner[1] < 60
    assert corner[2] < 60
    plain = picture.to_ndarray(width=content_width, height=content_height, format="rgb24")
    difference = np.abs(image[:content_height, :content_width].astype(int) - plain.astype(int))
    assert difference.mean() < 1.5
    assert difference.max() <= 8
    assert image[content_height:].max(initial=0) == 0
    assert image[:, content_width:].max(initial=0) == 0
    # The normalisation reads it as it reads a plain RGB array.
    assert np.array_equal(preprocess([image]), preprocess([np.ascontiguousarray(image)]))


# Track confirmation -----------------------------------------------------------------------------------------

def test_a_person_track_reaches_the_rules_only_once_it_has_moved_and_then_stays() -> None:
    tracker = IouTracker(min_hits=2)
    confirmation = DisplacementConfirmation(0.03)
    post = DetectedBox("Person", 0.6, (0.8, 0.2, 0.82, 0.35))  # a lamp post the detector takes for a person
    reported: list[set[int]] = []
    for step in range(12):
        x = 0.1 + 0.01 * min(step, 6)  # walks 6 steps, then stands still
        walker = DetectedBox("Person", 0.8, (x, 0.5, x + 0.05, 0.7))
        t = step * 0.2
        reported.append({o.track_id for o in confirmation.filter(tracker.update([post, walker], t), t)})
    post_id, walker_id = 1, 2
    assert all(post_id not in ids for ids in reported)
    assert walker_id not in reported[3]  # reported by the tracker from the second frame, 2 % from there
    assert walker_id in reported[4]  # 3 % from where the tracker first reported it
    assert all(walker_id in ids for ids in reported[4:])  # standing still later does not hide them
    parked = TrackedObject(track_id=9, label="Car", score=0.8, box=(0.1, 0.1, 0.3, 0.3))
    assert confirmation.filter([parked], 3.0) == [parked]  # only people need to move


# Small grey image -------------------------------------------------------------------------------------------

def test_small_grey_reads_the_luma_plane_subsampled_by_an_integer_step() -> None:
    luma = np.tile(np.arange(384, dtype=np.uint16) % 256, (288, 1)).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(np.dstack([luma] * 3), format="rgb24").reformat(format="yuv420p")
    grey = small_grey(frame)
    assert grey.shape == (96, 128)  # 384 / 3, 288 / 3
    luma_plane = frame.to_ndarray()[:288]  # yuv420p as an array: the Y rows, then the chroma
    assert np.array_equal(grey, luma_plane[::3, ::3])
    rgb = av.VideoFrame.from_ndarray(np.dstack([luma] * 3), format="rgb24")
    assert small_grey(rgb).shape == (96, 128)  # other pixel formats go through a conversion
