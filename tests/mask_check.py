"""Checks a decoded frame of a masked camera: uniform black inside its masks, close to the camera's own picture outside.

The camera's picture is the simulated camera's encoded clip (what it sends); a recorded or live frame is matched to
the clip's frame that resembles it most outside the masks (camsim loops its clip, so every frame shown is one of
them), and compared to it there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from camsim.footage import encoded_clip
from core.masks import mask_raster

# A pixel inside a mask "leaks" when any of its RGB channels is further than this from black.
LEAK_TOLERANCE = 16
# Outside the masks, a masked (re-encoded) frame keeps at least this PSNR against the camera's own frame.
MIN_PSNR_DB = 30.0
_THUMB = 8  # matching runs on frames shrunk by this factor


@dataclass(frozen=True)
class MaskVerdict:
    leak_pixels: int
    masked_pixels: int
    psnr_outside_db: float


def decode_rgb(path: Path, *, limit: int | None = None) -> list[npt.NDArray[np.uint8]]:
    """The frames of a video file as RGB arrays (the first `limit` ones when given)."""
    frames: list[npt.NDArray[np.uint8]] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
            if limit is not None and len(frames) >= limit:
                break
    return frames


def decode_rgb_bytes(data: bytes, suffix: str, workdir: Path, *, limit: int | None = None
                     ) -> list[npt.NDArray[np.uint8]]:
    path = workdir / f"decoded-{len(list(workdir.iterdir()))}{suffix}"
    path.write_bytes(data)
    return decode_rgb(path, limit=limit)


class CameraPicture:
    """The frames a simulated camera sends on one stream, for comparison."""

    def __init__(self, cache_dir: Path, footage: str, stream: str) -> None:
        self._path = encoded_clip(cache_dir, footage, stream).data
        self._thumbs: list[npt.NDArray[np.float32]] = []
        with av.open(str(self._path), format="h264") as container:
            for frame in container.decode(video=0):
                self.size = (frame.width, frame.height)
                small = frame.to_ndarray(width=frame.width // _THUMB, height=frame.height // _THUMB, format="gray")
                self._thumbs.append(np.asarray(small, dtype=np.float32))

    def frame(self, index: int) -> npt.NDArray[np.uint8]:
        with av.open(str(self._path), format="h264") as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i == index:
                    return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        raise IndexError(index)

    def closest(self, picture: npt.NDArray[np.uint8], visible: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
        """The camera's frame most like `picture` on its visible pixels."""
        grey = picture.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        th, tw = self._thumbs[0].shape
        small = grey[:th * _THUMB, :tw * _THUMB].reshape(th, _THUMB, tw, _THUMB).mean(axis=(1, 3))
        keep = visible[:th * _THUMB, :tw * _THUMB].reshape(th, _THUMB, tw, _THUMB).all(axis=(1, 3))
        errors = [float(np.mean((thumb[keep] - small[keep]) ** 2)) for thumb in self._thumbs]
        return self.frame(int(np.argmin(errors)))


def judge(picture: npt.NDArray[np.uint8], polygons: Iterable[Sequence[Sequence[float]]],
          camera: CameraPicture, *, edge_px: int = 0) -> MaskVerdict:
    """Leaking pixels inside the masks (`edge_px` in from their edges) and PSNR outside them, for one RGB frame."""
    height, width = picture.shape[:2]
    hidden = mask_raster(list(polygons), width, height)
    judged = hidden.copy()
    for dy in range(-edge_px, edge_px + 1):
        for dx in range(-edge_px, edge_px + 1):
            judged &= np.roll(hidden, (dy, dx), (0, 1))
    leaks = int(np.count_nonzero((picture[judged].astype(np.int16) > LEAK_TOLERANCE).any(axis=-1)))
    reference = camera.closest(picture, ~hidden)
    assert reference.shape == picture.shape, (reference.shape, picture.shape)
    diff = picture[~hidden].astype(np.float64) - reference[~hidden].astype(np.float64)
    mse = float(np.mean(diff ** 2))
    psnr = 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
    return MaskVerdict(leak_pixels=leaks, masked_pixels=int(hidden.sum()), psnr_outside_db=float(psnr))
