"""The privacy-mask cover (core.masks): it contains every polygon, and ffmpeg paints exactly the pixels it names."""

from __future__ import annotations

import random
import subprocess

import numpy as np
import pytest

from core.masks import GRID, cover_filter, mask_raster, mask_spans

SIZES = [(1920, 1080), (1280, 720), (768, 576), (640, 360), (384, 288)]


def random_polygons(rng: random.Random) -> list[list[tuple[float, float]]]:
    return [[(rng.random(), rng.random()) for _ in range(rng.randint(3, 8))] for _ in range(rng.randint(1, 3))]


def painted_by_ffmpeg(polygons: list[list[tuple[float, float]]], width: int, height: int, *, frames: int = 1,
                      start_s: float = 0.0) -> np.ndarray:
    """The pixels ffmpeg paints dark on `frames` white frames that reach the cover with timestamps from `start_s`."""
    graph = cover_filter(polygons) + ",format=gray"
    if start_s:
        # The command line drops frames stamped before 0 on output: shift them only around the cover.
        graph = (f"[in]setpts=PTS+{start_s}/TB[shifted];" + graph.replace("[in]", "[shifted]")
                 + f",setpts=PTS-{start_s}/TB")
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"color=white:s={width}x{height}:r=25:d={frames / 25}",
         "-vf", graph, "-frames:v", str(frames), "-f", "rawvideo", "-"],
        capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, height, width) < 128


def inside(polygon: list[tuple[float, float]], x: float, y: float) -> bool:
    """Even-odd rule, as a self-intersecting polygon is filled."""
    crossings = 0
    for (ax, ay), (bx, by) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (ay > y) != (by > y) and x < ax + (bx - ax) * (y - ay) / (by - ay):
            crossings += 1
    return crossings % 2 == 1


@pytest.mark.parametrize("seed", range(6))
def test_the_cover_contains_each_polygon_on_the_macroblock_grid(seed: int) -> None:
    rng = random.Random(seed)
    polygons = random_polygons(rng)
    points = [(rng.random(), rng.random()) for _ in range(4000)]
    for width, height in SIZES:
        hidden = mask_raster(polygons, width, height)
        for x, y in points:
            if any(inside(polygon, x, y) for polygon in polygons):
                assert hidden[int(y * height), int(x * width)], (width, height, x, y)
        # Whole 16x16 blocks only (but at the frame's edge): no block holds both the fill and the scene.
        rows, columns = height // GRID, width // GRID
        blocks = hidden[:rows * GRID, :columns * GRID].reshape(rows, GRID, columns, GRID)
        assert (blocks.all(axis=(1, 3)) | ~blocks.any(axis=(1, 3))).all()


@pytest.mark.parametrize("seed", range(4))
def test_ffmpeg_paints_exactly_the_cover(seed: int) -> None:
    polygons = random_polygons(random.Random(100 + seed))
    for width, height in SIZES:
        assert (painted_by_ffmpeg(polygons, width, height) == mask_raster(polygons, width, height)).all()


@pytest.mark.parametrize("start_s", [0.0, -5.0, 86_400.0])
def test_every_frame_is_covered_whatever_its_timestamp(start_s: float) -> None:
    # The cover is one picture repeated: a frame earlier than it, or the frames after the first, would go uncovered
    # if its timestamp or its repetition were wrong.
    polygons = random_polygons(random.Random(7))
    painted = painted_by_ffmpeg(polygons, 640, 360, frames=8, start_s=start_s)
    assert painted.shape[0] == 8
    assert (painted == mask_raster(polygons, 640, 360)).all()


def test_a_rectangle_is_one_box_and_degenerate_masks_none() -> None:
    assert len(mask_spans([[(0.1, 0.2), (0.5, 0.2), (0.5, 0.6), (0.1, 0.6)]])) == 1
    assert mask_spans([[(0.1, 0.2), (0.5, 0.2)], [(0.3, 0.3), (0.3, 0.3), (0.3, 0.3)]]) == ()
    assert cover_filter([]) == ""
    assert not mask_raster([], 64, 48).any()
