"""Scenes built for the rules that no real footage shows (python -m bench.scenes).

Loitering, abandoned object, person on the ground and crowd have no instance in vtest or bikes, so each gets a scene
composited from real material: the plate is vtest's median background (the campus without its pedestrians), the
people are cut out of vtest frames inside the person boxes annotated in bench/data/vtest.json (their silhouette is
where the frame differs from the plate), and the left object is the dark bag lying on the gravel by the tripod in
vtest's own background. Actors move along scripted paths, scaled for perspective by the person heights annotated in
vtest, over sensor noise. Everything is drawn from a fixed seed: the same seed gives the same frames and the same
ground truth. `python -m bench.scenes` writes bench/data/scene-*.json (committed) and renders each scene to an mp4
in var/scenes/ (regenerated, never committed); bench.rules renders a missing scene on first use.

Limits, said plainly: a cut-out moves rigidly (no walking gait); a fallen person is the standing cut-out turned by
90 degrees; the object is small (about 25 px wide at full size) and the current model has no bag class.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from PIL import ImageFilter

from camsim.footage import VTEST_PATH, source_path
from inference.rules import point_in_polygon

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
CACHE = ROOT / "var" / "scenes"
SEED = 17
SIZE = (768, 576)
FPS = 10
# Bumped whenever the drawing changes, so that cached renders are rebuilt.
SCENE_FORMAT_VERSION = 2
# The dark bag on the gravel next to the tripod in vtest's background (pixels, full size).
BAG_BOX = (401, 164, 428, 182)

Image = npt.NDArray[np.uint8]


@dataclass
class Sprite:
    """A cut-out: RGB pixels and an alpha mask; its anchor is the bottom centre (a person's feet)."""

    rgb: npt.NDArray[np.float32]
    alpha: npt.NDArray[np.float32]

    def scaled(self, factor: float) -> Sprite:
        h, w = self.alpha.shape
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        rgb = PILImage.fromarray(np.clip(self.rgb, 0, 255).astype(np.uint8)).resize(size, PILImage.Resampling.BILINEAR)
        alpha = PILImage.fromarray(self.alpha.astype(np.float32), mode="F").resize(size, PILImage.Resampling.BILINEAR)
        return Sprite(np.asarray(rgb, dtype=np.float32), np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0))

    def lying(self) -> Sprite:
        """The same cut-out turned by 90 degrees: a person on the ground."""
        return Sprite(np.ascontiguousarray(np.rot90(self.rgb, 1)), np.ascontiguousarray(np.rot90(self.alpha, 1)))


@dataclass
class Actor:
    """A sprite following keyframes (seconds, feet x, feet y in pixels), visible from the first to the last one.
    `height` is the sprite's height where it stands at y (perspective), unless `fixed_scale` is given."""

    sprite: str
    keys: list[tuple[float, float, float]]
    fixed_scale: float | None = None
    sway: float = 1.0  # pixels of jitter: a standing person is never perfectly still

    def at(self, t: float) -> tuple[float, float] | None:
        if t < self.keys[0][0] or t > self.keys[-1][0]:
            return None
        for (t0, x0, y0), (t1, x1, y1) in zip(self.keys, self.keys[1:], strict=False):
            if t0 <= t <= t1:
                f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + f * (x1 - x0), y0 + f * (y1 - y0)
        return self.keys[-1][1], self.keys[-1][2]


@dataclass
class Scene:
    name: str
    rule: str
    duration_s: float
    zone: dict[str, Any] | None
    params: dict[str, Any]
    actors: list[Actor] = field(default_factory=list)
    truth: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def _frames(path: Path) -> Iterator[tuple[float, Image]]:
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            yield index / FPS, np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


@dataclass
class Material:
    plate: npt.NDArray[np.float32]
    people: list[Sprite]
    bag: Sprite
    height_at: tuple[float, float]  # person height in pixels = a * feet_y + b


def _boxes() -> dict[float, list[list[float]]]:
    clip = json.loads((DATA / "vtest.json").read_text())
    return {float(t): boxes for t, boxes in clip["person_boxes"].items()}


def _apart(box: list[float], others: list[list[float]]) -> bool:
    x1, y1, x2, y2 = box
    return all(o is box or o[2] <= x1 or o[0] >= x2 or o[3] <= y1 or o[1] >= y2 for o in others)


def _cutout(frame: Image, plate: npt.NDArray[np.float32], box: tuple[int, int, int, int]) -> Sprite:
    x1, y1, x2, y2 = box
    rgb = frame[y1:y2, x1:x2].astype(np.float32)
    difference = np.abs(rgb - plate[y1:y2, x1:x2]).max(axis=2)
    # Opening (drop specks of noise), then closing (fill small holes in clothes of the plate's colour).
    mask = _morph(_morph(difference > 28.0, 3), 5, close=True)
    return Sprite(rgb, _soft(mask))


def _morph(mask: npt.NDArray[np.bool_], size: int, *, close: bool = False) -> npt.NDArray[np.bool_]:
    image = PILImage.fromarray(mask.astype(np.uint8) * 255)
    first, second = (ImageFilter.MaxFilter(size), ImageFilter.MinFilter(size)) if close else (
        ImageFilter.MinFilter(size), ImageFilter.MaxFilter(size))
    return np.asarray(image.filter(first).filter(second)) > 127


def _soft(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """A 3 by 3 box blur of a mask: soft edges, no cut-out halo."""
    padded = np.pad(mask.astype(np.float32), 1, mode="edge")
    h, w = mask.shape
    return sum((padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)),
               np.zeros((h, w), np.float32)) / 9.0


def _whole(sprite: Sprite) -> bool:
    """Whether a cut-out holds a whole person: its silhouette spans the box's height and fills enough of it."""
    rows = np.nonzero(sprite.alpha.max(axis=1) > 0.5)[0]
    if rows.size == 0:
        return False
    span = (rows[-1] - rows[0] + 1) / sprite.alpha.shape[0]
    return span >= 0.85 and float((sprite.alpha > 0.5).mean()) >= 0.3


def material() -> Material:
    """The plate, the person cut-outs and the bag, all from vtest."""
    boxes = _boxes()
    wanted = {round(t * FPS): t for t in boxes}
    sampled: list[Image] = []
    annotated: dict[int, Image] = {}
    for index, (_, frame) in enumerate(_frames(source_path("vtest"))):
        if index % 8 == 0:
            sampled.append(frame)
        if index in wanted:
            annotated[index] = frame
    plate = np.median(np.stack(sampled).astype(np.float32), axis=0)
    people: list[Sprite] = []
    heights: list[tuple[float, float]] = []
    for index, frame in sorted(annotated.items()):
        frame_boxes = boxes[wanted[index]]
        for box in frame_boxes:
            heights.append((box[3], box[3] - box[1]))
            if box[3] - box[1] >= 60 and _apart(box, frame_boxes):
                x1, y1, x2, y2 = (round(v) for v in box)
                sprite = _cutout(frame, plate, (x1 - 2, y1 - 2, x2 + 2, y2 + 2))
                if _whole(sprite):
                    people.append(sprite)
    feet, tall = np.array(heights).T
    a, b = np.polyfit(feet, tall, 1)
    x1, y1, x2, y2 = BAG_BOX
    bag_rgb = plate[y1:y2, x1:x2].copy()
    # The bag is much darker than the gravel around it: its silhouette is the dark part of the box.
    bag_alpha = _soft(_morph(bag_rgb.mean(axis=2) < 90.0, 3))
    return Material(plate, people, Sprite(bag_rgb, bag_alpha), (float(a), float(b)))


def _entries(actor: Actor, polygon: list[list[float]], duration: float) -> list[tuple[float, float]]:
    """[enter, leave] intervals of an actor's feet inside a polygon (fractions), at the scene's frame times."""
    width, height = SIZE
    spans: list[tuple[float, float]] = []
    start: float | None = None
    last = 0.0
    for index in range(round(duration * FPS) + 1):
        t = index / FPS
        at = actor.at(t)
        inside = at is not None and point_in_polygon((at[0] / width, at[1] / height), [(p[0], p[1]) for p in polygon])
        if inside and start is None:
            start = t
        if not inside and start is not None:
            spans.append((start, last))
            start = None
        if inside:
            last = t
    if start is not None:
        spans.append((start, last))
    return spans


WALKWAY = [[0.30, 0.36], [0.70, 0.36], [0.70, 0.56], [0.30, 0.56]]


def scenes(seed: int = SEED, people: int = 12) -> list[Scene]:
    """The scenes' scripts; the seed chooses the cut-outs and the paths' small variations."""
    rng = np.random.default_rng(seed)

    def who() -> str:
        return f"person{int(rng.integers(people))}"

    def j(value: float, spread: float = 6.0) -> float:
        return round(value + float(rng.uniform(-spread, spread)), 1)

    out: list[Scene] = []

    # Loitering: two people stay in the walkway zone longer than dwell_s, three pass through or stop briefly.
    loiter = Scene("scene-loitering", "loitering", 60.0, {"kind": "zone", "points": WALKWAY}, {"dwell_s": 15.0},
                   description="two people wait in the walkway zone for about 25 s (dwell_s 15 s), one stops in it "
                               "for about 12 s, two walk through it")
    loiter.actors = [
        Actor(who(), [(1.0, -20, j(250)), (6.0, j(300), j(260)), (28.0, j(310), j(262)), (34.0, 800, j(250))]),
        Actor(who(), [(4.0, 800, j(300)), (12.0, j(470), j(290)), (20.0, j(460), j(292)), (26.0, -20, j(300))]),
        Actor(who(), [(30.0, -20, j(270)), (36.0, j(420), j(280)), (56.0, j(425), j(282)), (60.0, j(600), j(300))]),
        Actor(who(), [(10.0, 800, j(230)), (22.0, -20, j(240))]),
        Actor(who(), [(40.0, -20, j(310)), (52.0, 800, j(300))]),
    ]
    polygon = WALKWAY
    spans = [s for a in loiter.actors for s in _entries(a, polygon, loiter.duration_s)]
    loiter.truth = {"intervals": sorted([round(s, 1), round(e, 1)] for s, e in spans)}
    out.append(loiter)

    # Abandoned object: a person walks in, the bag is left at their feet, they walk away; a passer-by later.
    drop_t, drop_x, drop_y = 8.0, j(380, 20), j(300, 10)
    owner = who()
    abandoned = Scene("scene-abandoned", "abandoned_object", 45.0, None,
                      {"stationary_s": 20.0, "classes": ["Box", "Bottle", "Laptop", "Book", "Camera"]},
                      description="a person leaves vtest's dark bag on the walkway at 8 s and walks off; the bag "
                                  "stays to the end; a passer-by at 30 s")
    abandoned.actors = [
        Actor(owner, [(1.0, -20, j(280)), (7.0, drop_x - 15, drop_y), (9.0, drop_x - 15, drop_y),
                      (16.0, 800, j(280))]),
        Actor("bag", [(drop_t, drop_x + 10, drop_y), (45.0, drop_x + 10, drop_y)], fixed_scale=2.0, sway=0.0),
        Actor(who(), [(30.0, 800, j(240)), (40.0, -20, j(250))]),
    ]
    abandoned.truth = {"drops": [[drop_t, None]]}
    out.append(abandoned)

    # Person on the ground: two people fall and stay down; one walks by; one stands still (not a fall).
    ground = Scene("scene-ground", "person_on_ground", 50.0, None, {"hold_s": 5.0},
                   description="two people fall on the walkway (at 8 s for 14 s, at 30 s to the end); one walks "
                               "by, one stands still for 15 s")
    first, second = who(), who()
    x1, y1, x2, y2 = j(330), j(290), j(470), j(270)
    ground.actors = [
        Actor(first, [(1.0, -20, y1), (8.0, x1, y1)]),
        Actor(first + ":lying", [(8.1, x1, y1), (22.0, x1, y1)]),
        Actor(first, [(22.1, x1, y1), (28.0, 800, j(280))]),
        Actor(second, [(24.0, 800, y2), (30.0, x2, y2)]),
        Actor(second + ":lying", [(30.1, x2, y2), (50.0, x2, y2)]),
        Actor(who(), [(12.0, -20, j(240)), (24.0, 800, j(230))]),
        Actor(who(), [(33.0, 800, j(320)), (38.0, j(560), j(320)), (45.0, j(560), j(320))]),
    ]
    ground.truth = {"falls": [[8.1, 22.0], [30.1, None]]}
    out.append(ground)

    # Crowd: two or three people in the walkway zone, then seven gather there for 25 s, then they leave.
    crowd = Scene("scene-crowd", "excessive_density", 60.0, {"kind": "zone", "points": WALKWAY},
                  {"max_objects": 4, "hold_s": 5.0, "cooldown_s": 60.0},
                  description="up to three people in the walkway zone for 15 s, seven from about 18 s to 43 s, "
                              "then two")
    spots = [(250, 245), (330, 240), (410, 245), (490, 242), (290, 295), (380, 305), (470, 300)]
    for index, (x, y) in enumerate(spots):
        arrive = 14.0 + index * 0.6
        crowd.actors.append(Actor(who(), [(arrive - 4.0, -20 if x < 380 else 800, j(y, 10)),
                                          (arrive, j(x, 8), j(y, 5)), (43.0, j(x, 8), j(y, 5)),
                                          (47.0 + index * 0.3, 800 if x < 380 else -20, j(y, 10))]))
    crowd.actors += [
        Actor(who(), [(0.0, j(300), j(260)), (12.0, j(350), j(262)), (16.0, -20, j(260))]),
        Actor(who(), [(2.0, 800, j(240)), (10.0, j(420), j(245)), (15.0, 800, j(245))]),
        Actor(who(), [(48.0, -20, j(280)), (60.0, 800, j(270))]),
    ]
    counts = []
    for index in range(round(crowd.duration_s * FPS) + 1):
        t = index / FPS
        inside = 0
        for actor in crowd.actors:
            at = actor.at(t)
            if at is not None and point_in_polygon((at[0] / SIZE[0], at[1] / SIZE[1]), [(p[0], p[1]) for p in WALKWAY]):
                inside += 1
        counts.append((t, inside > crowd.params["max_objects"]))
    intervals: list[list[float]] = []
    for t, over in counts:
        if over and (not intervals or intervals[-1][1] < t - 0.15):
            intervals.append([t, t])
        elif over:
            intervals[-1][1] = t
    crowd.truth = {"intervals": [[round(s, 1), round(e, 1)] for s, e in intervals]}
    out.append(crowd)
    return out


def _sprite(material: Material, name: str) -> Sprite:
    if name == "bag":
        return material.bag
    base, _, pose = name.partition(":")
    sprite = material.people[int(base.removeprefix("person")) % len(material.people)]
    return sprite.lying() if pose == "lying" else sprite


def _paste(canvas: npt.NDArray[np.float32], sprite: Sprite, x: float, y: float) -> None:
    h, w = sprite.alpha.shape
    left, top = round(x - w / 2), round(y - h)
    cx1, cy1 = max(left, 0), max(top, 0)
    cx2, cy2 = min(left + w, canvas.shape[1]), min(top + h, canvas.shape[0])
    if cx1 >= cx2 or cy1 >= cy2:
        return
    alpha = sprite.alpha[cy1 - top:cy2 - top, cx1 - left:cx2 - left, None]
    rgb = sprite.rgb[cy1 - top:cy2 - top, cx1 - left:cx2 - left]
    canvas[cy1:cy2, cx1:cx2] = alpha * rgb + (1.0 - alpha) * canvas[cy1:cy2, cx1:cx2]


def render_frames(scene: Scene, material: Material, seed: int = SEED, limit: int | None = None
                  ) -> Iterator[Image]:
    """The scene's frames at FPS, full size, RGB; people further away (higher up) are drawn first."""
    rng = np.random.default_rng([seed, sum(scene.name.encode())])
    a, b = material.height_at
    cache: dict[tuple[str, int], Sprite] = {}
    total = round(scene.duration_s * FPS)
    for index in range(total if limit is None else min(limit, total)):
        t = index / FPS
        drift = 4.0 * math.sin(t / scene.duration_s * math.pi)
        canvas = material.plate + drift + 3.0 * rng.standard_normal(material.plate.shape, dtype=np.float32)
        placed = []
        for actor in scene.actors:
            at = actor.at(t)
            if at is None:
                continue
            x, y = at
            if actor.sway:
                x += float(rng.normal(0.0, actor.sway))
            sprite = _sprite(material, actor.sprite)
            if actor.fixed_scale is not None:
                scale = actor.fixed_scale
            else:
                standing = _sprite(material, actor.sprite.partition(":")[0])
                scale = max(a * y + b, 20.0) / standing.alpha.shape[0]
            key = (actor.sprite, round(scale * 50))  # scales quantised to 2 %: a handful of zooms per actor
            if key not in cache:
                cache[key] = sprite.scaled(key[1] / 50)
            placed.append((y, cache[key], x))
        for y, sprite, x in sorted(placed, key=lambda p: p[0]):
            _paste(canvas, sprite, x, y)
        yield np.clip(canvas, 0, 255).astype(np.uint8)


def ground_truth(scene: Scene) -> dict[str, Any]:
    """The scene's annotation in bench/data's format."""
    zones: dict[str, Any] = {}
    event: dict[str, Any] = {"params": scene.params, **scene.truth}
    if scene.zone is not None:
        zones["walkway"] = scene.zone
        event = {"zone": "walkway", **event}
    return {
        "clip": scene.name,
        "scene": {"generator": "python -m bench.scenes", "seed": SEED, "format_version": SCENE_FORMAT_VERSION,
                  "description": scene.description,
                  "material": "plate: median of every 8th vtest frame; people: cut out of vtest frames inside the "
                              "person boxes of vtest.json; object: the dark bag in vtest's background at "
                              f"{list(BAG_BOX)} (pixels), drawn at twice its size"},
        "source": {"path": str(VTEST_PATH), "package": "Debian opencv-doc 4.6.0+dfsg-12",
                   "licence": "Debian copyright: Apache-2.0 AND BSD-3-Clause (the footage looks like PETS 2009; "
                              "tests and benchmarks only)"},
        "size": list(SIZE), "fps": FPS, "duration_s": scene.duration_s, "zones": zones,
        "events": {scene.rule: event}, "person_boxes": {},
    }


def scene_named(name: str, seed: int = SEED) -> Scene:
    for scene in scenes(seed):
        if scene.name == name:
            return scene
    raise KeyError(name)


def render(scene: Scene, target: Path, material_: Material | None = None, seed: int = SEED,
           limit: int | None = None) -> Path:
    """The scene encoded to H.264 (mp4) at `target` with ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is needed to render the scenes")
    mat = material_ or material()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part.mp4")
    width, height = SIZE
    command = [ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-threads", "1",
               "-pix_fmt", "yuv420p", str(partial)]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as process:
        assert process.stdin is not None
        for frame in render_frames(scene, mat, seed, limit):
            process.stdin.write(frame.tobytes())
        process.stdin.close()
        if process.wait() != 0:
            raise RuntimeError(f"ffmpeg failed rendering {scene.name}")
    partial.replace(target)
    return target


def cache_key(scene: Scene) -> str:
    key = json.dumps([SCENE_FORMAT_VERSION, ground_truth(scene), [a.__dict__ for a in scene.actors]], default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def scene_path(name: str) -> Path:
    """The rendered mp4 of a scene, rendering it into the cache on first use."""
    scene = scene_named(name)
    path = CACHE / f"{name}-{cache_key(scene)}.mp4"
    if not path.is_file():
        render(scene, path)
    return path


def main() -> int:
    mat = material()
    for scene in scenes():
        (DATA / f"{scene.name}.json").write_text(json.dumps(ground_truth(scene), indent=1) + "\n")
        path = CACHE / f"{scene.name}-{cache_key(scene)}.mp4"
        if not path.is_file():
            render(scene, path, mat)
        sys.stdout.write(f"{scene.name}: {json.dumps(scene.truth)} → {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
