"""The DeepStream backend's pixel work without DeepStream: masks painted into RGBA frames before nvinfer as the
portable reader paints them, picture health judged alike from both backends' frames, no smart record of a masked
camera. The frames are numpy arrays shaped as pyds.get_nvds_buf_surface maps them: (height, width, 4) uint8."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from structlog.testing import capture_logs

from core.masks import mask_raster
from inference.deepstream import DeepStreamBackend, frame_analysis
from inference.deepstream_pixels import SurfacePictureHealth, paint_masks, rgba_luma
from inference.model import CameraConfig, Rule, RuleParams, RuleType
from inference.motion import small_grey
from inference.portable import picture_monitor
from inference.rtsp import ReaderOptions, RtspCameraReader
from inference.settings import InferenceSettings
from inference.worker import WatchesPictures
from tests.inference.test_lying_people import (
    LYING,
    STANDING,
    FixedPose,
    UprightDarkShapes,
    backend_alerts,
    ground_rule,
    with_patch,
)

TENANT = uuid.uuid4()
POLYGONS = (((0.05, 0.10), (0.35, 0.05), (0.40, 0.55), (0.10, 0.60)), ((0.60, 0.15), (0.90, 0.20), (0.75, 0.45)))
Rgb = npt.NDArray[np.uint8]


def scene(width: int, height: int, seed: int = 3) -> Rgb:
    """A textured picture: random 8-pixel blocks, so any pixel painted or spared shows."""
    blocks = np.random.default_rng(seed).integers(0, 255, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))[:height, :width])


def rgba(rgb: Rgb) -> Rgb:
    return np.dstack([rgb, np.full(rgb.shape[:2], 255, dtype=np.uint8)])


def inside(polygon: tuple[tuple[float, float], ...], width: int, height: int) -> npt.NDArray[np.bool_]:
    """The pixels holding a point of the polygon (even-odd rule), judged on 3 x 3 points spread over each pixel."""
    offsets = (0.01, 0.5, 0.99)
    xs = ((np.arange(width)[:, None] + offsets) / width).ravel()
    ys = ((np.arange(height)[:, None] + offsets) / height).ravel()
    x, y = np.meshgrid(xs, ys)
    crossings = np.zeros(x.shape, dtype=np.int32)
    for (ax, ay), (bx, by) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if ay == by:
            continue
        straddles = (ay > y) != (by > y)
        crossings += straddles & (x < ax + (bx - ax) * (y - ay) / (by - ay))
    hit = (crossings % 2 == 1).reshape(height, 3, width, 3)
    return np.asarray(hit.any(axis=(1, 3)))


def portable_reader(masks: tuple[tuple[tuple[float, float], ...], ...] = ()) -> RtspCameraReader:
    reader = RtspCameraReader(uuid.uuid4(), "rtsp://camera/sub", ReaderOptions(detect_fps=5.0), lambda _: None)
    reader.masks = masks
    return reader


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (704, 396), (640, 360)])
def test_masks_painted_on_the_gpu_frame_are_the_portable_readers_cover(width: int, height: int) -> None:
    picture = scene(width, height)
    portable = portable_reader(POLYGONS)._masked(av.VideoFrame.from_ndarray(picture, format="rgb24"))
    masked_by_portable = portable.to_ndarray(format="rgb24")
    surface = rgba(picture)
    paint_masks(surface, POLYGONS)
    for polygon in POLYGONS:
        assert not surface[inside(polygon, width, height), :3].any()
    cover = mask_raster(POLYGONS, width, height)
    assert (surface[~cover, :3] == picture[~cover]).all()  # outside the cover: untouched
    assert (surface[..., :3] == masked_by_portable).all()  # the same pixels as the portable backend's frame
    assert (surface[..., 3] == 255).all()  # alpha left alone (nvinfer reads RGB)


def test_a_frame_without_masks_is_left_alone_and_a_new_mask_is_painted_at_once() -> None:
    picture = scene(640, 360)
    surface = rgba(picture)
    paint_masks(surface, ())
    assert (surface[..., :3] == picture).all()
    paint_masks(surface, POLYGONS[:1])
    paint_masks(surface, POLYGONS[1:])
    assert (surface[..., :3] == np.where(mask_raster(POLYGONS, 640, 360)[..., None], 0, picture)).all()


def yuv_frame(picture: Rgb) -> av.VideoFrame:
    """What the portable reader decodes from an H.264 camera: yuv420p."""
    return av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")


def test_the_luma_taken_from_rgba_is_the_luma_plane_the_portable_reader_reads() -> None:
    picture = scene(1280, 720)
    from_plane = small_grey(yuv_frame(picture)).astype(int)
    from_rgba = rgba_luma(rgba(picture)).astype(int)
    assert from_rgba.shape == from_plane.shape == (72, 128)
    assert np.abs(from_rgba - from_plane).max() <= 2  # rounding of the two conversions only
    assert rgba_luma(rgba(np.zeros((360, 640, 3), dtype=np.uint8))).max() == 16  # studio-range black


def camera(**changes: Any) -> CameraConfig:
    values: dict[str, Any] = {"camera_id": uuid.uuid4(), "tenant_id": TENANT, "name": "porche",
                              "stream_url": "rtsp://camera/sub"}
    values.update(changes)
    return CameraConfig(**values)


def frames(seconds: float, make: Any, fps: float = 5.0) -> list[Rgb]:
    return [make(n) for n in range(int(seconds * fps))]


def test_picture_health_verdicts_are_the_same_fed_by_either_backend() -> None:
    settings = InferenceSettings(picture_hold_s=2.0, picture_frozen_hold_s=3.0)
    base = scene(640, 360).astype(np.int16)
    noise = np.random.default_rng(5)

    def living(n: int) -> Rgb:
        # Sensor noise and someone walking across: a live camera.
        picture = base + noise.integers(-4, 5, size=base.shape, dtype=np.int16)
        x = 40 + 12 * (n % 40)
        picture[150:260, x:x + 40] = 90
        clipped: Rgb = np.clip(picture, 0, 255).astype(np.uint8)
        return clipped

    still = living(0)
    black = np.zeros_like(still)
    sequence = (frames(4, living) + frames(6, lambda _: still) + frames(4, living) + frames(5, lambda _: black)
                + frames(4, living))

    portable, reader = picture_monitor(settings, camera()), portable_reader()
    deepstream = SurfacePictureHealth(picture_monitor(settings, camera()), detect_fps=5.0)
    from_portable, from_deepstream = [], []
    for n, picture in enumerate(sequence):
        t = 100.0 + n / 5.0
        reader._prepare(yuv_frame(picture), t)
        decoded = reader.slot.take()
        assert decoded is not None
        from_portable.append(portable.on_frame(t, decoded.stats, n + 1))
        assert deepstream.frame_arrived(t)
        from_deepstream.append(deepstream.sample(t, rgba_luma(rgba(picture))))

    assert from_deepstream == from_portable
    states = [change[0] for change in from_portable if change is not None]
    assert states == ["online", "frozen", "online", "tampered", "online"]
    tampered = [change for change in from_portable if change is not None and change[0] == "tampered"]
    assert "blackout" in (tampered[0][1] or "")


def test_picture_health_samples_at_the_detection_rate_and_counts_every_frame() -> None:
    health = SurfacePictureHealth(picture_monitor(InferenceSettings(), camera()), detect_fps=5.0)
    due = [health.frame_arrived(n / 25.0) for n in range(50)]  # 2 s of a 25 fps camera
    assert sum(due) == 10
    assert health.decoded == 50


class FakeBin:
    def __init__(self) -> None:
        self.emitted: list[tuple[Any, ...]] = []

    def emit(self, *args: Any) -> None:
        self.emitted.append(args)


class FakeSources:
    def __init__(self) -> None:
        self.bins: dict[str, FakeBin] = {}

    def get_by_name(self, name: str) -> FakeBin:
        return self.bins.setdefault(name, FakeBin())


class FakePipeline:
    def __init__(self) -> None:
        self.sources = FakeSources()

    def get_by_name(self, name: str) -> FakeSources:
        assert name == "sources"
        return self.sources


def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[DeepStreamBackend, list[tuple[str, Any]]]:
    ds = DeepStreamBackend(settings=InferenceSettings(picture_hold_s=2.0), sink=None,  # type: ignore[arg-type]
                           labels=["???", "Person"], work_dir=tmp_path)
    rest: list[tuple[str, Any]] = []
    monkeypatch.setattr(ds, "_rest", lambda change, source: rest.append((change, source.config.camera_id)))
    return ds, rest


def test_a_masked_camera_is_never_smart_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds, _ = backend(tmp_path, monkeypatch)
    masked, plain = camera(privacy_masks=POLYGONS), camera()
    ds.apply([masked, plain])
    pipeline = FakePipeline()
    ds._pipeline = pipeline
    with capture_logs() as logs:
        ds.start_recording(ds.sources[masked.camera_id], before_s=10, duration_s=20)
        ds.start_recording(ds.sources[plain.camera_id], before_s=10, duration_s=20)
    masked_bin = pipeline.sources.get_by_name(f"dsnvurisrcbin{ds.sources[masked.camera_id].stream}")
    plain_bin = pipeline.sources.get_by_name(f"dsnvurisrcbin{ds.sources[plain.camera_id].stream}")
    assert masked_bin.emitted == []
    assert [call[0] for call in plain_bin.emitted] == ["start-sr"]
    skipped = [e for e in logs if e["event"] == "inference.smart_record_skipped"]
    assert [e["camera_id"] for e in skipped] == [str(masked.camera_id)]


def test_each_frame_is_masked_and_judged_and_changes_are_reported_like_the_portable_backends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds, rest = backend(tmp_path, monkeypatch)
    assert isinstance(ds, WatchesPictures)  # the worker hands it its PictureHealthReports
    reported: list[tuple[uuid.UUID, uuid.UUID, str, str | None]] = []
    ds.health = lambda tenant, camera_id, state, detail: reported.append((tenant, camera_id, state, detail))
    masked, plain = camera(privacy_masks=POLYGONS[:1]), camera()
    ds.apply([masked, plain])
    picture = scene(1280, 720)

    surface = rgba(picture)
    assert ds.prepare_frame(ds.sources[masked.camera_id], 0.0, lambda: surface)
    assert (surface[..., :3] == np.where(mask_raster(POLYGONS[:1], 1280, 720)[..., None], 0, picture)).all()
    assert reported == [(TENANT, masked.camera_id, "online", None)]

    def not_mapped() -> Rgb:
        raise AssertionError("an unmasked frame not due for a sample must not be mapped")

    plain_source = ds.sources[plain.camera_id]
    assert ds.prepare_frame(plain_source, 0.0, lambda: rgba(picture))
    assert not ds.prepare_frame(plain_source, 0.04, not_mapped)  # the next frame of a 25 fps camera
    # A masked camera's every frame is painted, sampled for health or not.
    surface = rgba(picture)
    assert ds.prepare_frame(ds.sources[masked.camera_id], 0.04, lambda: surface)
    assert not surface[mask_raster(POLYGONS[:1], 1280, 720), :3].any()

    # New masks reach the running stream at the next frame, without removing and adding it again.
    stream = ds.sources[masked.camera_id].stream
    ds.apply([camera(camera_id=masked.camera_id, privacy_masks=POLYGONS, expected_fps=12.5), plain])
    assert [change for change, _ in rest] == ["camera_add", "camera_add"]
    assert ds.sources[masked.camera_id].stream == stream
    assert ds.sources[masked.camera_id].picture.monitor.expected_fps == 12.5
    surface = rgba(picture)
    ds.prepare_frame(ds.sources[masked.camera_id], 0.08, lambda: surface)
    assert not surface[mask_raster(POLYGONS, 1280, 720), :3].any()


class Alerts:
    def __init__(self) -> None:
        self.rule_types: list[str] = []

    def submit(self, event: Any, camera_id: uuid.UUID, picture: object = None) -> None:
        self.rule_types.append(event.rule_type)


def test_a_left_object_is_found_in_the_gpu_frames_as_in_the_portable_backend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds, _ = backend(tmp_path, monkeypatch)
    alerts = Alerts()
    ds.sink = alerts
    watched_id = uuid.uuid4()
    rule = Rule(id=uuid.uuid4(), tenant_id=TENANT, camera_id=watched_id, rule_type=RuleType.ABANDONED_OBJECT,
                params=RuleParams(stationary_s=20.0, classes=("Box",)))
    watched, plain = camera(camera_id=watched_id, rules=(rule,)), camera()
    ds.apply([watched, plain])
    source = ds.sources[watched_id]
    assert source.static is not None
    assert ds.sources[plain.camera_id].static is None
    rng = np.random.default_rng(11)
    for n in range(45 * 5):
        t = n / 5.0
        grey = np.clip(120 + rng.normal(0.0, 3.0, (288, 384)), 0, 255)
        if t >= 8.0:
            grey[144:168, 180:210] -= 80  # a dark bag, about 0.65 % of the picture, left at 8 s
        picture = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
        assert ds.prepare_frame(source, t, functools.partial(rgba, picture))
        ds._evaluate(source, frame_analysis(source, t, ()), (384, 288))
    assert alerts.rule_types == ["abandoned_object"]
    # Without the rule the model goes, with what it found.
    ds.apply([camera(camera_id=watched_id), plain])
    unwatched = ds.sources[watched_id]
    assert unwatched.static is None
    assert unwatched.static_regions == ()


class InThisThread(Executor):
    """Runs each submitted call at once: the crop detector's looks, deterministically."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def ds_ground_alerts(frames: list[tuple[float, npt.NDArray[np.uint8]]], tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch, pose: FixedPose | None = None
                     ) -> tuple[list[float], DeepStreamBackend, uuid.UUID]:
    ds, _ = backend(tmp_path, monkeypatch)
    alerts = Alerts()
    ds.sink = alerts
    ds.crop_detector = UprightDarkShapes()
    ds.pose = pose
    ds.crop_executor = InThisThread()
    watched = camera(rules=(ground_rule(),))
    ds.apply([watched])
    source = ds.sources[watched.camera_id]
    times = []
    for t, image in frames:
        picture = np.repeat(np.repeat(image, 3, axis=0), 3, axis=1)  # the portable harness's 384x288 picture
        surface = rgba(np.repeat(picture[..., None], 3, axis=2))
        assert ds.prepare_frame(source, t, functools.partial(np.asarray, surface))
        count = len(alerts.rule_types)
        ds._evaluate(source, frame_analysis(source, t, ()), (384, 288))
        times += [t] * (len(alerts.rule_types) - count)
    return times, ds, watched.camera_id


def test_someone_lying_is_found_in_the_gpu_frames_as_in_the_portable_backend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = with_patch(LYING, appears=2.0)
    portable_times, _, _ = backend_alerts(frames)
    times, ds, camera_id = ds_ground_alerts(frames, tmp_path, monkeypatch)
    assert len(portable_times) == 1
    assert len(times) == 1
    # The GPU path reads a look at the next sample (its looks run beside the streaming thread): one sample later.
    assert portable_times[0] <= times[0] <= portable_times[0] + 0.2 + 1e-9
    source = ds.sources[camera_id]
    assert source.static is not None
    assert source.lying is not None
    # Someone standing still is not looked at; without the rule nothing is watched.
    standing, _, _ = ds_ground_alerts(with_patch(STANDING, appears=2.0), tmp_path, monkeypatch)
    assert standing == []
    ds.apply([camera(camera_id=camera_id)])
    assert ds.sources[camera_id].lying is None
    assert ds.sources[camera_id].lying_people == ()


def test_the_pose_model_vetoes_a_lying_person_on_the_gpu_frames_as_in_the_portable_backend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = with_patch(LYING, appears=2.0)
    agrees, disagrees = FixedPose(0.9), FixedPose(0.1)
    times, _, _ = ds_ground_alerts(frames, tmp_path, monkeypatch, pose=agrees)
    assert len(times) == 1
    assert agrees.crops
    times, _, _ = ds_ground_alerts(frames, tmp_path, monkeypatch, pose=disagrees)
    assert times == []
    assert disagrees.crops
    portable_times, _, _ = backend_alerts(frames, pose=FixedPose(0.1))
    assert portable_times == []
