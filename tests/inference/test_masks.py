"""Privacy masks before detection (CSI L251-3): the detector's frame, its input and the alert's snapshot of a masked
camera hold black inside the masks and the camera's picture outside; a mask change reaches a running reader."""

from __future__ import annotations

import io
import time
import uuid

import av
import numpy as np
import pytest
from PIL import Image

from camsim.simulator import CameraSimulator
from core.masks import mask_boxes, mask_raster
from inference.publisher import encode_jpeg
from inference.rtsp import DecodedFrame, ReaderOptions, RtspCameraReader, StreamChange, masked_copy
from inference.ssd import INPUT_SIZE
from tests.camsim_fixture import FOOTAGE_CACHE
from tests.mask_check import LEAK_TOLERANCE, MIN_PSNR_DB, CameraPicture, judge

POLYGONS = (((0.05, 0.10), (0.35, 0.05), (0.40, 0.55), (0.10, 0.60)), ((0.60, 0.15), (0.90, 0.20), (0.75, 0.45)))


def next_frame(reader: RtspCameraReader, *, within_s: float = 20.0) -> DecodedFrame:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        frame = reader.slot.take()
        if frame is not None:
            return frame
        time.sleep(0.05)
    raise AssertionError(f"no frame within {within_s} s ({reader.last_error})")


def test_the_detector_sees_and_snapshots_show_only_what_the_masks_leave(camera_simulator: CameraSimulator) -> None:
    changes: list[StreamChange] = []
    camera = camera_simulator.camera("vtest")
    reader = RtspCameraReader(uuid.uuid4(), camera.sub_url, ReaderOptions(detect_fps=5.0), changes.append)
    reader.masks = POLYGONS
    picture = CameraPicture(FOOTAGE_CACHE, "vtest", "sub")
    reader.start()
    try:
        next_frame(reader)
        frame = next_frame(reader)
        rgb = np.asarray(frame.picture.to_ndarray(format="rgb24"), dtype=np.uint8)
        verdict = judge(rgb, POLYGONS, picture)
        assert verdict.masked_pixels > 0
        assert verdict.leak_pixels == 0, verdict
        assert verdict.psnr_outside_db >= MIN_PSNR_DB, verdict

        # The detector's input (the frame stretched to the model's size): black wherever the mask covers it.
        width, height = frame.frame_size
        rows = (np.arange(INPUT_SIZE) * height) // INPUT_SIZE
        columns = (np.arange(INPUT_SIZE) * width) // INPUT_SIZE
        hidden = mask_raster(POLYGONS, width, height)[rows][:, columns]
        # Away from the cover's edges, where scaling blends a pixel with its unmasked neighbours.
        inner = hidden.copy()
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                inner &= np.roll(hidden, (dy, dx), (0, 1))
        assert inner.sum() > 1000
        assert int((frame.detector_input[inner] > LEAK_TOLERANCE).any(axis=-1).sum()) == 0

        # The alert's snapshot is encoded from the same masked frame.
        snapshot = np.asarray(Image.open(io.BytesIO(encode_jpeg(frame.picture, 80))).convert("RGB"), dtype=np.uint8)
        # A JPEG decoder interpolates the half-resolution colour across block edges: the cover's outermost pixel
        # may take a tint from its unmasked neighbour (no detail of what the mask hides).
        verdict = judge(snapshot, POLYGONS, picture, edge_px=1)
        assert verdict.leak_pixels == 0, verdict
        assert verdict.psnr_outside_db >= MIN_PSNR_DB, verdict

        # Masks removed: the frames decoded from then on are the camera's whole picture again.
        reader.masks = ()
        changed_at = time.monotonic()
        later = next_frame(reader)
        while later.timestamp <= changed_at:
            later = next_frame(reader)
        whole = np.asarray(later.picture.to_ndarray(format="rgb24"), dtype=np.uint8)
        assert judge(whole, POLYGONS, picture).leak_pixels > 0
    finally:
        reader.stop()


@pytest.mark.parametrize(("pixel_format", "luma_black"), [("yuv420p", 16), ("yuvj420p", 0)])
def test_a_masked_copy_is_black_on_the_cover_and_the_decoders_frame_untouched(pixel_format: str,
                                                                              luma_black: int) -> None:
    rng = np.random.default_rng(11)
    rgb = np.kron(rng.integers(40, 256, (18, 24, 3), dtype=np.uint8), np.ones((16, 16, 1), dtype=np.uint8))
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pixel_format)
    before = [bytes(plane) for plane in frame.planes]
    boxes = mask_boxes(POLYGONS, frame.width, frame.height)
    hidden = mask_raster(POLYGONS, frame.width, frame.height)

    masked = masked_copy(frame, boxes)
    assert [bytes(plane) for plane in frame.planes] == before  # the decoder may still refer to its frame
    assert masked.format.name == pixel_format
    assert (masked.width, masked.height) == (frame.width, frame.height)
    luma = np.frombuffer(memoryview(masked.planes[0]), dtype=np.uint8).reshape(-1, masked.planes[0].line_size)
    original = np.frombuffer(memoryview(frame.planes[0]), dtype=np.uint8).reshape(-1, frame.planes[0].line_size)
    assert (luma[:frame.height, :frame.width][hidden] == luma_black).all()
    assert np.array_equal(luma[:frame.height, :frame.width][~hidden], original[:frame.height, :frame.width][~hidden])
    # Seen in RGB, as snapshots and the detector see it: black on the cover, the picture elsewhere.
    seen = masked.to_ndarray(format="rgb24").astype(int)
    assert seen[hidden].max() <= 2
    assert np.abs(seen[~hidden] - frame.to_ndarray(format="rgb24").astype(int)[~hidden]).max() <= 2


def test_a_frame_that_is_not_yuv_420_is_masked_through_rgb() -> None:
    rgb = np.full((288, 384, 3), 200, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv444p")
    masked = masked_copy(frame, mask_boxes(POLYGONS, 384, 288))
    seen = masked.to_ndarray(format="rgb24")
    hidden = mask_raster(POLYGONS, 384, 288)
    assert (seen[hidden] == 0).all()
    assert (seen[~hidden] >= 195).all()
