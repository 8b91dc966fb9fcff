"""The GPU bench's numpy parts agree with the portable backend: letterbox, colour conversion, SSD decode, NMS."""

from __future__ import annotations

import time
from fractions import Fraction
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import av
import numpy as np
import pytest

from bench.gpu.frame_pool import SharedNewestFrames, nv12
from bench.gpu.pipeline_parts import (
    NUMPY,
    content_size,
    decode_boxes,
    detect,
    masked_encode_command,
    nvenc_entry,
    pipeline_entry,
    yuv_to_rgb,
)
from inference.ssd import BOX_SCALES, INPUT_SIZE, letterbox_size, postprocess, ssd_anchors


@pytest.mark.parametrize("max_stretch", [1.0, 1.25, 1.5, 2.0, 10.0])
def test_content_size_is_the_portable_letterbox(max_stretch: float) -> None:
    sizes = [(1920, 1080), (384, 288), (640, 272), (1080, 1920), (300, 300), (704, 576), (1, 1000), (1000, 1)]
    rng = np.random.default_rng(3)
    sizes += [(int(w), int(h)) for w, h in rng.integers(16, 4000, size=(200, 2))]
    for width, height in sizes:
        assert content_size(width, height, max_stretch, INPUT_SIZE) == letterbox_size(
            width, height, max_stretch, INPUT_SIZE), (width, height)


def test_1080p_content_at_the_default_stretch() -> None:
    assert content_size(1920, 1080, 1.5, 300) == (300, 253)


def test_yuv_to_rgb_matches_swscale() -> None:
    rng = np.random.default_rng(5)
    height, width = 32, 48
    # One chroma value per frame, so the way swscale upsamples chroma cannot matter; luma varies per pixel.
    for u, v in rng.integers(16, 241, size=(12, 2)):
        luma = rng.integers(16, 236, size=(height, width), dtype=np.uint8)
        chroma = np.empty((height // 2, width), dtype=np.uint8)
        chroma[:, 0::2], chroma[:, 1::2] = u, v
        expected = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="nv12").to_ndarray(format="rgb24")
        plane = np.full((1, height, width), 0.0, dtype=np.float32)
        rgb = yuv_to_rgb(luma[None].astype(np.float32), plane + u, plane + v, NUMPY)
        assert rgb.shape == (1, 3, height, width)
        assert np.abs(rgb[0].transpose(1, 2, 0) - expected).max() <= 3, (u, v)  # swscale works in fixed point


def test_decode_boxes_matches_inference_ssd() -> None:
    from inference.ssd import decode_boxes as portable_decode

    rng = np.random.default_rng(7)
    anchors = ssd_anchors()
    encodings = rng.normal(0, 3, size=(anchors.shape[0], 4)).astype(np.float32)
    ours = decode_boxes(encodings, anchors, BOX_SCALES, NUMPY)
    np.testing.assert_allclose(ours, portable_decode(encodings, anchors), atol=1e-6)


def detections_as_sets(encodings: np.ndarray, logits: np.ndarray, candidates: int
                       ) -> list[set[tuple[int, float, tuple[float, ...]]]]:
    found = detect(encodings, logits, ssd_anchors(), NUMPY, box_scales=BOX_SCALES, score_threshold=0.4,
                   iou_threshold=0.45, candidates=candidates)
    images = []
    for image in range(encodings.shape[0]):
        kept = np.nonzero(found.kept[image])[0]
        images.append({(int(found.class_ids[image, i]), round(float(found.scores[image, i]), 5),
                        tuple(round(float(v), 5) for v in found.boxes[image, i])) for i in kept})
    return images


def random_outputs(seed: int, images: int, classes: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    anchors = ssd_anchors().shape[0]
    # Mostly background, a few hundred anchors per image above the threshold, clustered so NMS has work to do.
    logits = rng.normal(-4, 1.5, size=(images, anchors, classes)).astype(np.float32)
    encodings = rng.normal(0, 1, size=(images, anchors, 4)).astype(np.float32)
    return encodings, logits


def test_batched_detect_matches_postprocess_per_image() -> None:
    encodings, logits = random_outputs(11, images=4)
    batched = detections_as_sets(encodings, logits, candidates=encodings.shape[1])
    for image in range(encodings.shape[0]):
        portable = postprocess(encodings[image], logits[image], ssd_anchors(), score_threshold=0.4,
                               iou_threshold=0.45, max_detections=10_000)
        expected = {(d.class_id, round(d.score, 5), tuple(round(v, 5) for v in d.box)) for d in portable}
        assert expected, "the random outputs should give detections"
        assert batched[image] == expected


def test_candidates_keep_the_best_detections() -> None:
    encodings, logits = random_outputs(13, images=2)
    everything = detections_as_sets(encodings, logits, candidates=encodings.shape[1])
    best = detections_as_sets(encodings, logits, candidates=100)
    for image in range(2):
        assert best[image] <= everything[image]
        weakest_kept = min(score for _, score, _ in best[image])
        assert {d for d in everything[image] if d[1] > weakest_kept} <= best[image]


def test_masked_encode_command() -> None:
    command = masked_encode_command("ffmpeg", Path("/b/vtest-1080p25.h264"), "COVER", ["-c:v", "h264_nvenc"], 750,
                                    cuda_decode=True)
    assert command[command.index("-hwaccel") + 1] == "cuda"
    assert command.index("-hwaccel") < command.index("-i")
    assert command[command.index("-vf") + 1] == "COVER"
    assert command[command.index("-frames:v") + 1] == "750"
    assert command[-4:] == ["-an", "-f", "null", "-"]
    assert "-hwaccel" not in masked_encode_command("ffmpeg", Path("x"), "C", [], 1, cuda_decode=False)


def test_result_names() -> None:
    entry = pipeline_entry(32, processed=1000, batches=40, elapsed_s=10.0, decoded=3000,
                           stage_s={"decode_wait": 1.0, "inference": 4.0})
    assert entry["processed_fps"] == 100.0
    assert entry["streams_at_5fps"] == 20
    assert entry["streams_at_25fps"] == 4
    assert entry["mean_batch"] == 25.0
    assert entry["inference_ms_per_batch"] == 100.0
    assert entry["inference_ms_per_frame"] == 4.0
    masked = nvenc_entry(2, frames=750, walls_s=[10.0, 15.0], cpu_s=[3.0, 3.0])
    assert masked["per_process_fps_min"] == 50.0
    assert masked["realtime_share_min"] == 2.0
    assert masked["cpu_s_per_camera_s"] == 0.1
    assert masked["aggregate_fps"] == 125.0
    assert masked["masked_cameras_sustained"] == 5


def small_stream(path: Path, frames: int = 20, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """An H.264 file whose frame i is uniformly grey at level 20 + 8 i; its frames as NV12 arrays."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.framerate, codec.time_base = Fraction(25), Fraction(1, 25)
    codec.options = {"preset": "ultrafast", "x264-params": "keyint=5:bframes=0"}
    with path.open("wb") as out:
        for index in range(frames):
            rgb = np.full((height, width, 3), 20 + 8 * index, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            for packet in codec.encode(frame):
                out.write(bytes(packet))
        for packet in codec.encode(None):
            out.write(bytes(packet))
    with av.open(str(path), format="h264") as container:
        return [nv12(frame) for frame in container.decode(video=0)]


def test_shared_newest_frames_hand_over_whole_decoded_frames(tmp_path: Path) -> None:
    expected = small_stream(tmp_path / "grey.h264")
    pool = SharedNewestFrames(tmp_path / "grey.h264", streams=5, processes=2, width=64, height=48, hardware=False)
    pool.start()
    try:
        assert pool.wait_for_frames(60), pool.errors()
        copies: dict[int, list[np.ndarray]] = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (len(copies) < 5 or min(len(c) for c in copies.values()) < 3):
            pool.take_new(lambda slot, frame: copies.setdefault(slot, []).append(frame.copy()))
            time.sleep(0.001)
        decoded = pool.decoded()
    finally:
        errors = pool.finish()
    assert errors == []
    assert sorted(copies) == [0, 1, 2, 3, 4]
    assert decoded >= sum(len(c) for c in copies.values())
    for slot, frames in copies.items():
        assert len(frames) >= 3, slot
        for frame in frames:
            # Whole frames only: each copy is one of the file's frames, never a mix of two.
            assert any(np.array_equal(frame, whole) for whole in expected), slot


def test_shared_newest_frames_report_a_stream_that_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "broken.h264").write_bytes(b"not a video" * 100)
    pool = SharedNewestFrames(tmp_path / "broken.h264", streams=2, processes=2, width=64, height=48, hardware=False)
    pool.start()
    assert not pool.wait_for_frames(30)
    errors = pool.finish()
    assert len(errors) == 2
    assert all(errors)


def test_shared_newest_frames_free_their_block_even_unstarted(tmp_path: Path) -> None:
    pool = SharedNewestFrames(tmp_path / "none.h264", streams=2, processes=1, width=64, height=48, hardware=False)
    name = pool.block_name
    assert pool.finish() == []
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=name)
