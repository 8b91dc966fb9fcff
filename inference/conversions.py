"""Frame → numpy conversions through swscale contexts kept per thread and per geometry, not made anew per frame."""

# PyAV gives every VideoFrame its own reformatter, so `frame.to_ndarray(width=..., format=...)` on a freshly decoded
# frame builds a swscale context (filter coefficients, buffers) for that one conversion: on a 384x288 sub stream
# scaled to the detector's 300x300, building it cost about twice the conversion (bench.detector). Contexts are
# not thread-safe, hence one set per thread; each geometry keeps its own, so cameras of different sizes do not make
# a shared context rebuild itself at every switch.

from __future__ import annotations

import threading
from collections import OrderedDict

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

# Geometries a thread keeps contexts for: a node's distinct stream sizes times the few output sizes, with room.
MAX_CONTEXTS_PER_THREAD = 32

_Geometry = tuple[int, int, str, int, int, str]
_local = threading.local()


def _reformatter(geometry: _Geometry) -> VideoReformatter:
    cache: OrderedDict[_Geometry, VideoReformatter] | None = getattr(_local, "reformatters", None)
    if cache is None:
        cache = _local.reformatters = OrderedDict()
    found = cache.get(geometry)
    if found is None:
        found = cache[geometry] = VideoReformatter()
        if len(cache) > MAX_CONTEXTS_PER_THREAD:
            cache.popitem(last=False)
    else:
        cache.move_to_end(geometry)
    return found


def frame_to_array(frame: av.VideoFrame, width: int | None = None, height: int | None = None,
                   format: str = "rgb24") -> npt.NDArray[np.uint8]:
    """The frame as an array in `format`, scaled (bilinear) to width x height when given: the same pixels as
    `frame.to_ndarray(width=, height=, format=)`."""
    width = width or frame.width
    height = height or frame.height
    geometry = (frame.width, frame.height, frame.format.name, width, height, format)
    # One swscale thread: the conversion runs in a camera reader or the detector's batch, beside others.
    converted = _reformatter(geometry).reformat(frame, width=width, height=height, format=format, threads=1)
    return np.asarray(converted.to_ndarray(), dtype=np.uint8)


def array_to_array(rgb: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """An RGB array scaled (bilinear) to width x height."""
    return frame_to_array(av.VideoFrame.from_ndarray(rgb, format="rgb24"), width, height)
