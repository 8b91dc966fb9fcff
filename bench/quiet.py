"""Footage made for the rules bench: an empty place as cameras show it when nothing happens, and a clip at night."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar, overload

import av
import numpy as np
import numpy.typing as npt

QuietKind = Literal["still", "light", "night", "shake", "rain", "dusk", "foliage"]
QUIET_KINDS: tuple[QuietKind, ...] = ("still", "light", "night", "shake", "rain", "dusk", "foliage")
DESCRIPTIONS: dict[QuietKind, str] = {
    "still": "sensor noise (sigma 3) and a slow light drift of 4 levels",
    "light": "brightness steps to 0.7-1.3 of the plate every 45 s (a cloud, lights switched) and a cloud's shadow "
             "(down to 0.65) crossing the picture every 120 s, sensor noise",
    "night": "infrared night picture (grey, a third of the day's light, sensor noise sigma 8), a car's headlight beam "
             "sweeping the ground every 40 s, insects (bright blobs of 3-8 px on a 384-px picture, wobbling at "
             "60-150 px/s) near the lens every 8 s on average",
    "shake": "the mast shaking by up to 4 px for 6 s every 30 s, sensor noise",
    "rain": "an overcast day (0.8 of the light) in the rain: 200 streaks of 10-24 px on a 384-px picture, new in "
            "every frame, sensor noise",
    "dusk": "the camera switching between its day picture and its infrared night picture (as in night, without "
            "headlights or insects) every 150 s, as it does at dusk and dawn",
    "foliage": "a tree's crown and a bush (12 % of the picture) swaying in the wind: about 1 px always, gusts of up "
               "to 6 px for 6 s every 20 s, the crown's top moving most, sensor noise",
}
ScalarT = TypeVar("ScalarT", bound=np.generic)
NOISE_FIELDS = 16
LUMA = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601 weights of R, G, B in grey
NIGHT_BLACK = 6.0  # grey levels of the infrared picture's black
NIGHT_LIGHT = 0.35  # of the day's grey levels
NIGHT_NOISE = 8.0  # sigma of the sensor noise at night's gain, grey levels
DUSK_PERIOD_S = 150.0  # between the infrared filter's switches in the dusk footage
RAIN_STREAKS = 200  # per 384x288 frame
RAIN_SLANT = 0.2  # radians from the vertical
RAIN_BRIGHTNESS = 35.0  # grey levels a streak adds
# Foliage: (centre x, centre y, half width, half height) of each plant in picture fractions, and its leaves' colour.
PLANTS = ((0.16, 0.3, 0.13, 0.24), (0.86, 0.78, 0.09, 0.1))
LEAVES = np.asarray([48.0, 82.0, 40.0], dtype=np.float32)
GUST_EVERY_S, GUST_S = 20.0, 6.0


@dataclass(frozen=True)
class Insect:
    start: float
    end: float
    x: float
    y: float
    vx: float
    vy: float
    radius: float
    phase: float


@dataclass(frozen=True)
class Plant:
    """Leaves over an elliptical, ragged patch of the picture: their colours and cover, drawn bent by the wind."""

    top: int
    left: int
    colours: npt.NDArray[np.float32]  # RGB of the patch's box
    cover: npt.NDArray[np.bool_]  # where the leaves are, in the box

    @classmethod
    def grown(cls, height: int, width: int, box: tuple[float, float, float, float],
              rng: np.random.Generator) -> Plant:
        cx, cy, sx, sy = box[0] * width, box[1] * height, box[2] * width, box[3] * height
        top, left = max(0, int(cy - sy)), max(0, int(cx - sx))
        bottom, right = min(height, int(cy + sy) + 1), min(width, int(cx + sx) + 1)
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
        clusters = _smoothed(rng.normal(0.0, 1.0, (bottom - top, right - left)).astype(np.float32))
        inside = ((ys - cy) / sy) ** 2 + ((xs - cx) / sx) ** 2
        cover = inside + 0.35 * clusters < 1.0  # a ragged outline, gaps where the clusters are thin
        shade = 1.0 + 0.45 * clusters  # clusters of leaves in light and in shadow
        return cls(top, left, (LEAVES * shade[:, :, None]).astype(np.float32), cover)

    def draw(self, image: npt.NDArray[np.float32], push: float, t: float) -> None:
        """Over `image`, each row shifted sideways by the wind: `push` at the top, nothing at the bottom."""
        rows = self.cover.shape[0]
        for row in range(rows):
            bend = 1.0 - row / rows
            shift = round(push * bend * bend + 0.4 * math.sin(9.0 * t + row * 0.7))  # leaves flutter too
            cover, colours = np.roll(self.cover[row], shift), np.roll(self.colours[row], shift, axis=0)
            target = image[self.top + row, self.left:self.left + cover.size]
            target[cover] = colours[cover]


def _smoothed(field: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A random field blurred over 5x5 pixels and brought back to a spread of 1: clusters a few pixels wide."""
    padded = np.pad(field, 2, mode="reflect")
    total = sum(padded[dy:dy + field.shape[0], dx:dx + field.shape[1]] for dy in range(5) for dx in range(5))
    blurred = np.asarray(total, dtype=np.float32)
    return blurred / max(float(blurred.std()), 1e-6)


def _as_rgb(grey: npt.NDArray[ScalarT]) -> npt.NDArray[ScalarT]:
    """A grey picture as RGB, each channel the same (an infrared camera's colour stream)."""
    return np.repeat(grey[:, :, None], 3, axis=2)


def _blob(height: int, width: int, cx: float, cy: float, sx: float, sy: float) -> npt.NDArray[np.float32]:
    """A soft elliptical spot (1 at its centre) as a field of the picture's size."""
    ys = ((np.arange(height, dtype=np.float32) - cy) / sy) ** 2
    xs = ((np.arange(width, dtype=np.float32) - cx) / sx) ** 2
    return np.exp(-0.5 * (ys[:, None] + xs[None, :])).astype(np.float32)


class MadeFrames(Sequence[av.VideoFrame]):
    """Frames made when asked (`made`), so that hours of footage hold no memory; indexable like a list."""

    def made(self, index: int) -> av.VideoFrame:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> av.VideoFrame: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[av.VideoFrame]: ...

    def __getitem__(self, index: int | slice) -> av.VideoFrame | Sequence[av.VideoFrame]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.made(index % len(self))


class QuietFootage(MadeFrames):
    """`length` frames at `fps` of `plate` (an empty place, RGB) disturbed as `kind` says, made on demand from a seed
    (the same index gives the same frame) so that hours of footage need no memory; frames are yuv420p, as decoded."""

    def __init__(self, plate: npt.NDArray[np.float32], kind: QuietKind, length: int, fps: float, seed: int) -> None:
        self.plate = plate.astype(np.float32)
        self.kind = kind
        self.length = length
        self.fps = fps
        self.seed = seed
        height, width = plate.shape[:2]
        rng = np.random.default_rng(seed)
        self._noise = rng.normal(0.0, 1.0, (NOISE_FIELDS, height, width, 3)).astype(np.float32)
        duration = length / fps
        self._gains = [(t, float(rng.uniform(0.7, 1.3))) for t in np.arange(20.0, duration, 45.0)]
        self._insects: list[Insect] = []
        scale = width / 384  # sizes and speeds below are pixels of a 384-px-wide sub stream
        t = float(rng.exponential(8.0))
        while t < duration:
            speed, angle = scale * rng.uniform(60.0, 150.0), rng.uniform(0.0, 2 * math.pi)
            self._insects.append(Insect(start=t, end=t + float(rng.uniform(2.0, 6.0)), x=float(rng.uniform(0, width)),
                                        y=float(rng.uniform(0, height)), vx=speed * math.cos(angle),
                                        vy=speed * math.sin(angle), radius=scale * float(rng.uniform(3.0, 8.0)),
                                        phase=float(rng.uniform(0.0, 2 * math.pi))))
            t += float(rng.exponential(8.0))
        self._luma = plate @ LUMA
        self._padded = np.pad(self.plate, ((4, 4), (4, 4), (0, 0)), mode="edge")
        self._plants = [Plant.grown(height, width, box, np.random.default_rng((seed, number)))
                        for number, box in enumerate(PLANTS)] if kind == "foliage" else []
        gusts = np.random.default_rng((seed, len(PLANTS)))
        self._gusts = [float(gusts.uniform(2.0, 6.0)) for _ in range(int(duration // GUST_EVERY_S) + 1)]

    def __len__(self) -> int:
        return self.length

    def made(self, index: int) -> av.VideoFrame:
        rgb = self.pixels(index)
        return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")

    def pixels(self, index: int) -> npt.NDArray[np.uint8]:
        """Frame `index` as RGB."""
        t = index / self.fps
        noise = self._noise[(index * 7 + self.seed) % NOISE_FIELDS]
        height, width = self.plate.shape[:2]
        if self.kind == "dusk" and (t // DUSK_PERIOD_S) % 2:
            image = _as_rgb(night_grey(self._luma, noise[:, :, 0]))
        elif self.kind in ("still", "dusk"):
            image = self.plate + 4.0 * math.sin(math.pi * index / self.length) + 3.0 * noise
        elif self.kind == "light":
            shadow = np.ones((height, width), dtype=np.float32)
            since = (t - 60.0) % 120.0
            if t >= 60.0 and since < 40.0:  # a cloud's shadow crossing left to right in 40 s
                shadow -= 0.35 * _blob(height, width, width * (-0.4 + 0.045 * since), height * 0.6, width * 0.3,
                                       height * 0.28)
            image = self.plate * (self.gain(t) * shadow)[:, :, None] + 3.0 * noise
        elif self.kind == "night":
            grey = night_grey(self._luma, 0.0)
            since = (t - 15.0) % 40.0
            if t >= 15.0 and since < 3.0:  # headlights sweeping the ground in 3 s
                grey = grey + 180.0 * _blob(height, width, width * (-0.25 + 0.5 * since), height * 0.75, width * 0.23,
                                            height * 0.09)
            for insect in self._insects:
                if insect.start <= t < insect.end:
                    age = t - insect.start
                    wobble = 20.0 * width / 384
                    x = insect.x + insect.vx * age + wobble * math.sin(4 * math.pi * age + insect.phase)
                    y = insect.y + insect.vy * age + wobble * math.cos(4 * math.pi * age + insect.phase)
                    grey = grey + 150.0 * _blob(height, width, x, y, insect.radius, insect.radius)
            image = _as_rgb(grey + NIGHT_NOISE * noise[:, :, 0])
        elif self.kind == "rain":
            image = 0.8 * self.plate + 3.0 * noise + self._streaks(index)[:, :, None]
        elif self.kind == "foliage":
            image = self.plate.copy()
            for plant in self._plants:
                plant.draw(image, self.sway(t) * width / 384, t)
            image += 3.0 * noise
        else:
            dx = dy = 0
            since = (t - 10.0) % 30.0
            if t >= 10.0 and since < 6.0:  # wind on the mast: about a hertz, up to 4 px
                dx = round(4.0 * math.sin(2 * math.pi * 1.3 * since))
                dy = round(3.0 * math.sin(2 * math.pi * 0.9 * since + 1.0))
            image = self._padded[4 + dy:4 + dy + height, 4 + dx:4 + dx + width] + 3.0 * noise
        return np.asarray(np.clip(image, 0, 255), dtype=np.uint8)

    def _streaks(self, index: int) -> npt.NDArray[np.float32]:
        """Rain drops falling through frame `index`'s exposure: short bright lines, slanted by the wind."""
        height, width = self.plate.shape[:2]
        scale = width / 384
        rng = np.random.default_rng((self.seed, index))
        count = round(RAIN_STREAKS * width * height / (384 * 288))
        starts = rng.uniform((0, 0), (height, width), (count, 2))
        lengths = scale * rng.uniform(10.0, 24.0, count)
        steps = np.linspace(0.0, 1.0, 24, dtype=np.float32)
        ys = (starts[:, :1] + lengths[:, None] * steps * math.cos(RAIN_SLANT)).astype(np.int64)
        xs = (starts[:, 1:] + lengths[:, None] * steps * math.sin(RAIN_SLANT)).astype(np.int64)
        inside = (ys < height) & (xs < width)
        streaks = np.zeros((height, width), dtype=np.float32)
        streaks[ys[inside], xs[inside]] = RAIN_BRIGHTNESS
        return streaks

    def sway(self, t: float) -> float:
        """How far the wind pushes the plants' tops at `t` (pixels of a 384-px picture): about 1 px, and a gust's
        amplitude for GUST_S seconds at the start of every GUST_EVERY_S, rising and falling smoothly."""
        gust = t % GUST_EVERY_S
        strength = self._gusts[int(t // GUST_EVERY_S)] * math.sin(math.pi * gust / GUST_S) if gust < GUST_S else 0.0
        return (1.0 + strength) * math.sin(2 * math.pi * 0.8 * t)

    def gain(self, t: float) -> float:
        """The scene's brightness at `t`: steps reached over 0.4 s."""
        gain = 1.0
        for start, value in self._gains:
            if t < start:
                break
            gain = gain + (value - gain) * min(1.0, (t - start) / 0.4)
        return gain


def plate_of(frames: Sequence[av.VideoFrame]) -> npt.NDArray[np.float32]:
    """The place without its passers-by: the median of every fourth frame, RGB."""
    rgb = np.stack([frames[i].to_ndarray(format="rgb24") for i in range(0, len(frames), 4)])
    return np.median(rgb.astype(np.float32), axis=0).astype(np.float32)


def night_grey(luma: npt.NDArray[np.float32], noise: npt.NDArray[np.float32] | float) -> npt.NDArray[np.float32]:
    """The infrared night picture of a place whose daylight grey levels are `luma`: darker, with sensor noise."""
    return np.asarray(NIGHT_BLACK + NIGHT_LIGHT * luma + NIGHT_NOISE * noise, dtype=np.float32)


class NightClip(MadeFrames):
    """A clip as an infrared camera would show it at night (grey, a third of the light, sensor noise), each frame
    made when asked from a seed; `stretch` multiplies the picture as a camera's automatic gain would (noise too)."""

    def __init__(self, frames: Sequence[av.VideoFrame], seed: int, stretch: float = 1.0) -> None:
        self.frames = frames
        self.seed = seed
        self.stretch = stretch

    def __len__(self) -> int:
        return len(self.frames)

    def made(self, index: int) -> av.VideoFrame:
        rgb = self.frames[index].to_ndarray(format="rgb24").astype(np.float32)
        luma = rgb @ LUMA
        noise = np.random.default_rng((self.seed, index)).normal(0.0, 1.0, luma.shape)
        grey = np.clip(night_grey(luma, noise.astype(np.float32)) * self.stretch, 0, 255).astype(np.uint8)
        return av.VideoFrame.from_ndarray(_as_rgb(grey), format="rgb24").reformat(format="yuv420p")
