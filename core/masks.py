"""Privacy masks (CSI L251-3) as pixels: the one geometry the recorder, the live gateway and the detector burn in.

A mask is a polygon in normalised frame coordinates. It is hidden by a conservative cover of horizontal bands: each
band (1/BANDS of the frame's height) is filled over the polygon's whole horizontal extent within it, and every edge is
rounded outwards to the 16-pixel macroblock grid, so the cover always contains the polygon, and a block the encoder
codes inside it holds nothing but the fill colour (no detail of the scene can bleed in through a shared block).
The same rounding is written twice, once as ffmpeg expressions (the frame size is known only to ffmpeg) and
once in pixels for a frame at hand (`mask_raster`); the tests hold one to the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

BANDS = 32
GRID = 16
_PRECISION = 1_000_000
# Normalised spans: (x0, y0, x1, y1), each edge to be rounded outwards to the grid at the frame's size.
Span = tuple[float, float, float, float]
Polygon = Sequence[Sequence[float]]


def _clamp(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


def _x_extent_in_band(points: list[tuple[float, float]], y0: float, y1: float) -> tuple[float, float] | None:
    """The smallest and largest x of the polygon's outline (its area included) between heights y0 and y1."""
    xs: list[float] = [x for x, y in points if y0 <= y <= y1]
    for (ax, ay), (bx, by) in zip(points, points[1:] + points[:1], strict=True):
        for yb in (y0, y1):
            if min(ay, by) <= yb <= max(ay, by) and ay != by:
                xs.append(ax + (bx - ax) * (yb - ay) / (by - ay))
    return (min(xs), max(xs)) if xs else None


def _outwards(span: Span) -> Span:
    """The span widened to whole millionths, the precision the filter is written with: ffmpeg then reads exactly the
    numbers `mask_raster` uses, and the cover never shrinks in the writing."""
    x0, y0, x1, y1 = span
    return (math.floor(x0 * _PRECISION) / _PRECISION, math.floor(y0 * _PRECISION) / _PRECISION,
            math.ceil(x1 * _PRECISION) / _PRECISION, math.ceil(y1 * _PRECISION) / _PRECISION)


def mask_spans(polygons: Iterable[Polygon]) -> tuple[Span, ...]:
    """The bands covering every polygon, consecutive bands of one polygon with the same extent merged (a rectangle
    is one span)."""
    return tuple(_outwards(span) for span in _spans(polygons))


def _spans(polygons: Iterable[Polygon]) -> list[Span]:
    spans: list[Span] = []
    for polygon in polygons:
        points = [(_clamp(p[0]), _clamp(p[1])) for p in polygon]
        if len(points) < 3:
            continue
        top, bottom = min(y for _, y in points), max(y for _, y in points)
        if bottom <= top or max(x for x, _ in points) <= min(x for x, _ in points):
            continue
        first, last = math.floor(top * BANDS), min(BANDS - 1, math.ceil(bottom * BANDS) - 1)
        current: Span | None = None
        for band in range(first, last + 1):
            y0, y1 = max(top, band / BANDS), min(bottom, (band + 1) / BANDS)
            extent = _x_extent_in_band(points, y0, y1)
            if extent is None:
                continue
            if current is not None and (current[0], current[2]) == extent and current[3] == y0:
                current = (current[0], current[1], current[2], y1)
                continue
            if current is not None:
                spans.append(current)
            current = (extent[0], y0, extent[1], y1)
        if current is not None:
            spans.append(current)
    return spans


def _pixels(span: Span, width: int, height: int) -> tuple[int, int, int, int]:
    """The span in pixels (x0, y0, x1, y1, end excluded), rounded outwards to the grid, clipped to the frame."""
    x0, y0, x1, y1 = span
    return (math.floor(width * x0 / GRID) * GRID, math.floor(height * y0 / GRID) * GRID,
            min(width, math.ceil(width * x1 / GRID) * GRID), min(height, math.ceil(height * y1 / GRID) * GRID))


def mask_boxes(polygons: Iterable[Polygon], width: int, height: int) -> tuple[tuple[int, int, int, int], ...]:
    """The cover of a `width` x `height` frame as pixel boxes (x0, y0, x1, y1, end excluded), empty ones left out:
    a painter that touches only these pixels hides exactly what `mask_raster` marks."""
    boxes = (_pixels(span, width, height) for span in mask_spans(polygons))
    return tuple(box for box in boxes if box[2] > box[0] and box[3] > box[1])


def mask_raster(polygons: Iterable[Polygon], width: int, height: int) -> npt.NDArray[np.bool_]:
    """True on every pixel of a `width` x `height` frame that the masks hide."""
    hidden = np.zeros((height, width), dtype=np.bool_)
    for x0, y0, x1, y1 in mask_boxes(polygons, width, height):
        hidden[y0:y1, x0:x1] = True
    return hidden


def cover_filter(polygons: Iterable[Polygon]) -> str:
    """An ffmpeg filtergraph for `-vf` painting the masks black at whatever size the frames have; empty without
    masks. Its last filter has a free output, so a caller may append `,<filter>`.

    Each span is one opaque black picture laid over the frame (`overlay`, integer and vectorised: about ten times
    cheaper per pixel than `drawbox`, whose per-pixel blend in floating point cost as much as decoding the frame).
    The picture is a single 16x16 black frame scaled once to the span's size at the frame's size (`scale2ref`,
    re-evaluated if the stream's size changes) and repeated for every frame (`eof_action=repeat`). Its timestamp
    lies a million seconds in the past because `overlay` passes a frame through untouched while the other input has
    nothing at or before that frame's time; this way every frame, whatever its timestamp, is covered.
    Written for ffmpeg 5.1 (Debian 12, the images' base); newer releases deprecate `scale2ref` for `scale` with a
    reference input, which a move to them would take up.
    """
    spans = mask_spans(polygons)
    graph, frames = [], "in"
    for index, (x0, y0, x1, y1) in enumerate(spans):
        # In scale2ref, iw and ih name the reference (the frame); in overlay, W and H name the main input (the frame).
        left, top = f"floor(iw*{x0:.6f}/{GRID})*{GRID}", f"floor(ih*{y0:.6f}/{GRID})*{GRID}"
        right, bottom = f"ceil(iw*{x1:.6f}/{GRID})*{GRID}", f"ceil(ih*{y1:.6f}/{GRID})*{GRID}"
        graph.append(f"color=c=black:s=16x16:r=1:d=1,format=yuva420p,setpts=-1000000/TB[black{index}]")
        graph.append(f"[black{index}][{frames}]scale2ref=w='{right}-{left}':h='{bottom}-{top}':flags=neighbor"
                     f"[cover{index}][frame{index}]")
        x, y = left.replace("iw", "W"), top.replace("ih", "H")
        output = f"[covered{index}]" if index < len(spans) - 1 else ""
        graph.append(f"[frame{index}][cover{index}]overlay=x='{x}':y='{y}':format=yuv420:eof_action=repeat"
                     f":eval=init{output}")
        frames = f"covered{index}"
    return ";".join(graph)
