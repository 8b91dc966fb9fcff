"""People on the ground: static regions shaped like someone lying, checked by the detector on turned, enlarged crops."""

# The SSD never calls a person lying across the frame a Person: lying, they are a small, wide patch it was not
# trained on, and a whole frame turned by 90 degrees makes them no larger (docs/detection.md, "Measured"). The
# static-foreground model (inference.static_objects) says where something arrived and stopped; a crop around it,
# enlarged to the model's input and turned a quarter each way, shows the detector an upright person of a size it
# knows. What it finds there is mapped back through the turn and the crop to the frame and handed to the
# person-on-the-ground rule as a lying Person, with one stable track id per place so the rule's hold applies.

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from inference.conversions import array_to_array
from inference.model import StaticRegion, TrackedObject, covered
from inference.ssd import RawDetection, letterbox_size, unletterbox

Box = tuple[float, float, float, float]
PixelBox = tuple[int, int, int, int]
# np.rot90's quarter turns: 1 is counter-clockwise (a person lying head to the right stands up), 3 clockwise.
TURNS = (1, 3)
LOOK_TURNS = (0, *TURNS)  # the unturned crop first: an upright person found in it vetoes the place
# Track ids of lying people start here, far above the tracker's own (it counts from 1), so they never collide.
LYING_TRACK_BASE = 1 << 30
LYING_LABEL = "Person"


@dataclass(frozen=True)
class LyingOptions:
    """Which static regions are worth a look, and what the detector must say about them."""

    min_aspect: float = 1.0  # width / height in pixels: a lying person is wider than tall
    crop_scale: float = 2.5  # the crop's side, in the region's longer side
    min_crop_px: int = 48  # a crop never smaller than this (sub-stream pixels)
    min_still_s: float = 0.0  # a region younger than this is not looked at yet
    score_threshold: float = 0.4  # a Person in a turned crop
    upright_score_threshold: float = 0.4  # an upright Person in the unturned crop vetoes the place
    person_cover: float = 0.3  # a region this much under a tracked person's box is that person standing
    min_overlap: float = 0.3  # share of the region a found person's box must cover
    recheck_s: float = 1.0  # one look per place at most this often
    # A place that showed nobody in this many looks in a row is something else (a bag, a parked scooter): it is
    # looked at half as often after each further empty look, down to once every max_recheck_s, so that a still
    # object does not cost three detector images a second until it joins the background.
    patience: int = 3
    max_recheck_s: float = 16.0
    forget_s: float = 3.0  # a place whose region has been gone this long is forgotten
    grace_looks: int = 1  # empty looks a lying person found at a place is kept through
    # The second stage (inference.pose), where a pose model is loaded: what the detector found lying is kept only
    # when the pose model's score on a tight crop (pose_crop_scale times the region's longer side) reaches this.
    pose_threshold: float = 0.28
    pose_crop_scale: float = 1.6
    min_pose_crop_px: int = 24


def region_pixels(box: Box, frame_size: tuple[int, int]) -> PixelBox:
    """A normalised box in whole pixels of a frame of `frame_size` (width, height)."""
    width, height = frame_size
    return (max(0, math.floor(box[0] * width)), max(0, math.floor(box[1] * height)),
            min(width, math.ceil(box[2] * width)), min(height, math.ceil(box[3] * height)))


def crop_box(region: Box, frame_size: tuple[int, int], scale: float, min_side: int) -> PixelBox:
    """A square crop centred on the region, `scale` times its longer side (at least `min_side`), moved inside the
    frame rather than cut where it can be, and cut only where the frame is smaller than the square."""
    width, height = frame_size
    x1, y1, x2, y2 = region_pixels(region, frame_size)
    side = max(min_side, round(scale * max(x2 - x1, y2 - y1)))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2

    def span(centre: float, limit: int) -> tuple[int, int]:
        length = min(side, limit)
        start = min(max(0, round(centre - length / 2)), limit - length)
        return start, start + length

    left, right = span(cx, width)
    top, bottom = span(cy, height)
    return left, top, right, bottom


def turn_box(box: Box, turn: int) -> Box:
    """A normalised box found in a picture turned by `turn` quarter turns (np.rot90's k) → the same box in the
    picture before the turn."""
    x1, y1, x2, y2 = box
    match turn % 4:
        case 0:
            return box
        case 1:  # counter-clockwise: (x, y) became (y, 1 - x)
            return (1 - y2, x1, 1 - y1, x2)
        case 2:
            return (1 - x2, 1 - y2, 1 - x1, 1 - y1)
        case _:  # clockwise: (x, y) became (1 - y, x)
            return (y1, 1 - x2, y2, 1 - x1)


def crop_to_frame(box: Box, crop: PixelBox, frame_size: tuple[int, int]) -> Box:
    """A normalised box of the crop → normalised frame coordinates."""
    left, top, right, bottom = crop
    width, height = frame_size
    cw, ch = right - left, bottom - top
    return ((left + box[0] * cw) / width, (top + box[1] * ch) / height,
            (left + box[2] * cw) / width, (top + box[3] * ch) / height)


def detector_box_to_frame(box: Box, turn: int, crop: PixelBox, frame_size: tuple[int, int], input_size: int,
                          max_stretch: float) -> Box:
    """A box in fractions of the model's padded input of a turned crop → fractions of the frame."""
    cw, ch = crop[2] - crop[0], crop[3] - crop[1]
    turned_w, turned_h = (ch, cw) if turn % 2 else (cw, ch)
    content = letterbox_size(turned_w, turned_h, max_stretch, input_size)
    return crop_to_frame(turn_box(unletterbox(box, content, input_size), turn), crop, frame_size)


def model_input(rgb: npt.NDArray[np.uint8], crop: PixelBox, turn: int, input_size: int,
                max_stretch: float) -> npt.NDArray[np.uint8]:
    """The crop of an RGB frame, turned, scaled into the model's square input (top-left, black padding beyond
    `max_stretch`, as the frames' own input is made)."""
    left, top, right, bottom = crop
    turned = np.ascontiguousarray(np.rot90(rgb[top:bottom, left:right], turn))
    height, width = turned.shape[:2]
    content_w, content_h = letterbox_size(width, height, max_stretch, input_size)
    scaled = array_to_array(turned, content_w, content_h)
    if (content_w, content_h) == (input_size, input_size):
        return np.asarray(scaled, dtype=np.uint8)
    padded = np.zeros((input_size, input_size, 3), dtype=np.uint8)
    padded[:content_h, :content_w] = scaled
    return padded


def candidate(region: StaticRegion, frame_size: tuple[int, int], upright: Sequence[TrackedObject],
              options: LyingOptions) -> bool:
    """Whether a static region may be a person lying down: wider than tall on screen, old enough, and not mostly
    under a tracked person's box (that is someone standing still)."""
    width, height = frame_size
    box = region.box
    w_px, h_px = (box[2] - box[0]) * width, (box[3] - box[1]) * height
    if h_px <= 0 or w_px / h_px < options.min_aspect or region.still_s < options.min_still_s:
        return False
    return all(covered(box, person.box) < options.person_cover for person in upright if person.label == "Person")


@dataclass(frozen=True)
class Look:
    """What the detector found on one place's crop: Person boxes (frame fractions, score) per turn."""

    region: Box
    lying: tuple[tuple[Box, float], ...]  # from the turned crops
    upright: tuple[tuple[Box, float], ...]  # from the unturned crop
    pose_score: float | None = None  # the pose model's, where it looked (a person lying found by the detector)


def on_region(region: Box, found: tuple[Box, float], threshold: float, options: LyingOptions) -> bool:
    """Whether a found Person (box, score) scores `threshold` and covers enough of the region."""
    return found[1] >= threshold and covered(region, found[0]) >= options.min_overlap


def upright_there(look: Look, options: LyingOptions) -> bool:
    """Whether the unturned crop shows someone upright on the region (standing or sitting there)."""
    return any(on_region(look.region, found, options.upright_score_threshold, options) for found in look.upright)


def decide(look: Look, frame_size: tuple[int, int], options: LyingOptions) -> tuple[Box, float] | None:
    """The lying person a look shows, if any: the best-scoring Person of the turned crops that covers enough of the
    region and is wider than tall on screen, unless an upright Person of the unturned crop covers the region as much
    (someone standing or sitting there: a turned crop can find a person lying across a standing body)."""
    width, height = frame_size

    def wide(box: Box) -> bool:
        return (box[2] - box[0]) * width >= options.min_aspect * (box[3] - box[1]) * height > 0

    if upright_there(look, options):
        return None
    if look.pose_score is not None and look.pose_score < options.pose_threshold:
        return None
    lying = [found for found in look.lying
             if on_region(look.region, found, options.score_threshold, options) and wide(found[0])]
    if not lying:
        return None
    return max(lying, key=lambda found: found[1])


class PoseScorer(Protocol):
    def lying_score(self, rgb: npt.NDArray[np.uint8], crop: PixelBox) -> float: ...


def confirm_with_pose(looks: Sequence[Look], rgb: npt.NDArray[np.uint8], frame_size: tuple[int, int],
                      pose: PoseScorer | None, options: LyingOptions) -> list[Look]:
    """Each look with the pose model's score where the detector found someone lying (the others as they are, and
    all of them without a pose model): the model runs a few times a second at most, only on such looks."""
    if pose is None:
        return list(looks)
    confirmed = []
    for look in looks:
        if decide(look, frame_size, options) is not None:
            crop = crop_box(look.region, frame_size, options.pose_crop_scale, options.min_pose_crop_px)
            look = replace(look, pose_score=round(pose.lying_score(rgb, crop), 3))
        confirmed.append(look)
    return confirmed


def look_inputs(rgb: npt.NDArray[np.uint8], crop: PixelBox, input_size: int, max_stretch: float
                ) -> list[npt.NDArray[np.uint8]]:
    """The detector's inputs for one look at a place: the crop as it is, then turned each way (LOOK_TURNS)."""
    return [model_input(rgb, crop, turn, input_size, max_stretch) for turn in LOOK_TURNS]


def read_look(region: Box, crop: PixelBox, frame_size: tuple[int, int],
              people: Sequence[Sequence[tuple[Box, float]]], input_size: int, max_stretch: float) -> Look:
    """The Person boxes (model input fractions, score) found in each of a look's inputs → a Look in frame fractions."""
    mapped = [tuple((detector_box_to_frame(box, turn, crop, frame_size, input_size, max_stretch), score)
                    for box, score in found) for turn, found in zip(LOOK_TURNS, people, strict=True)]
    return Look(region=region, upright=mapped[0], lying=tuple(itertools.chain.from_iterable(mapped[1:])))


def read_looks(places: Sequence[Place], results: Sequence[Sequence[RawDetection]], labels: Sequence[str],
               frame_size: tuple[int, int], input_size: int, max_stretch: float) -> list[Look]:
    """What the detector found in the inputs `look_inputs` made for each place, in the same order → one Look per
    place (Person boxes only)."""
    turns = len(LOOK_TURNS)
    looks = []
    for index, place in enumerate(places):
        people = [[(d.box, d.score) for d in detections if labels[d.class_id] == LYING_LABEL]
                  for detections in results[index * turns:(index + 1) * turns]]
        looks.append(read_look(place.region, place.crop, frame_size, people, input_size, max_stretch))
    return looks


@dataclass
class Place:
    """A static region followed across frames: its stable track id, when it was last looked at, the lying person
    last found there."""

    track_id: int
    region: Box
    seen_at: float
    crop: PixelBox = (0, 0, 0, 0)  # where the next look cuts the frame
    looked_at: float = -math.inf
    person: TrackedObject | None = None
    empty_looks: int = 0  # looks in a row that found nobody lying there

    def recheck_after(self, options: LyingOptions) -> float:
        """Seconds until the next look: recheck_s, then doubling once the place has used up its patience."""
        beyond = self.empty_looks - options.patience
        if beyond < 0:
            return options.recheck_s
        return min(options.max_recheck_s, options.recheck_s * 2.0 ** (beyond + 1))


@dataclass
class LyingPeople:
    """Per camera: the places being watched, which of them need a look now, and the lying people found."""

    options: LyingOptions = field(default_factory=LyingOptions)
    places: list[Place] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(LYING_TRACK_BASE))

    def due(self, regions: Sequence[StaticRegion], frame_size: tuple[int, int], upright: Sequence[TrackedObject],
            t: float) -> list[Place]:
        """The places to look at in this frame (each at most once per recheck_s); forgets places gone a while."""
        self.places = [p for p in self.places if t - p.seen_at <= self.options.forget_s]
        looks = []
        for region in regions:
            if not candidate(region, frame_size, upright, self.options):
                continue
            place = self._place(region.box, t)
            if t - place.looked_at >= place.recheck_after(self.options):
                place.looked_at = t
                place.crop = crop_box(region.box, frame_size, self.options.crop_scale, self.options.min_crop_px)
                looks.append(place)
        return looks

    def _place(self, box: Box, t: float) -> Place:
        for place in self.places:
            if max(covered(box, place.region), covered(place.region, box)) >= 0.5:
                place.region, place.seen_at = box, t
                return place
        place = Place(track_id=next(self._ids), region=box, seen_at=t)
        self.places.append(place)
        return place

    def found(self, place: Place, look: Look, frame_size: tuple[int, int]) -> None:
        """Record what a look at `place` showed."""
        best = decide(look, frame_size, self.options)
        if best is not None:
            place.empty_looks = 0
            place.person = TrackedObject(track_id=place.track_id, label=LYING_LABEL, score=round(best[1], 3),
                                         box=best[0])
            return
        place.empty_looks += 1
        # Someone found lying stays found through grace_looks empty looks (a score dipping under the threshold
        # once must not restart the rule's hold), but not past someone seen upright there: they got up.
        if place.empty_looks > self.options.grace_looks or upright_there(look, self.options):
            place.person = None

    def lying(self, t: float) -> tuple[TrackedObject, ...]:
        """The lying people found at the places still seen (the last look's answer holds until the next)."""
        return tuple(p.person for p in self.places if p.person is not None and p.seen_at == t)
