"""The DeepStream backend (GPU nodes): the only module that touches pyds, imported lazily when the backend starts.

Pipeline: nvmultiurisrcbin (cameras added and removed at run time through its REST API, smart record on) →
nvstreammux (inside the bin) → nvvideoconvert → RGBA in CPU-mappable memory → [probe: privacy masks painted black,
picture health sampled] → nvinfer (generated config, raw SSD tensors) → [probe: SSD decode → object meta] →
nvtracker → nvdsanalytics (generated config) → fakesink, with a probe on nvdsanalytics' src pad that turns NvDs
metadata into the same TrackedObject / FrameAnalysis structs the portable backend builds, and hands them to the
asyncio loop with call_soon_threadsafe (the GLib streaming thread never waits on the network).
The rules, events and publisher above it are the portable backend's, unchanged. DeepStream cannot run on the
development and CI machines (no NVIDIA GPU, no SDK from the registries): the converters below are unit-tested
with plain objects shaped like pyds metadata, and the pipeline code is type-checked against pyds-stubs.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import json
import platform
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from core.logging import get_logger
from inference.analytics import CameraRules
from inference.deepstream_config import (
    BOX_LAYER,
    CLASS_LAYER,
    nvdcf_config,
    nvdsanalytics_config,
    nvinfer_config,
    nvinfer_options,
    pipeline_geometry,
    tracker_config,
)
from inference.deepstream_pixels import RgbaImage, SurfacePictureHealth, paint_masks, rgba_luma
from inference.errors import BackendUnavailable
from inference.events import RuleTriggered
from inference.lying_people import Look, LyingPeople, Place, PoseScorer, confirm_with_pose, look_inputs, read_looks
from inference.metrics import DETECTED_FRAMES
from inference.model import LEGAL_EVENT_TYPE, CameraConfig, FrameAnalysis, StaticRegion, TrackedObject
from inference.portable import (
    Detector,
    HealthSink,
    lying_people,
    picture_monitor,
    report_picture_health,
    static_model,
)
from inference.publisher import EventSink
from inference.scheduler import UsageMeter
from inference.settings import InferenceSettings
from inference.ssd import (
    INPUT_SIZE,
    NUM_ANCHORS,
    RawDetection,
    passes_class_threshold,
    postprocess,
    ssd_anchors,
    unletterbox,
)
from inference.static_objects import StaticObjectModel
from inference.tracker import DisplacementConfirmation

if TYPE_CHECKING:
    import pyds

log = get_logger(__name__)

UNTRACKED_OBJECT_ID = 0xFFFFFFFFFFFFFFFF
ANALYTICS_OBJ_META = "NVIDIA.DSANALYTICSOBJ.USER_META"
REST_PORT = 9010
# The frames the mask probe maps: RGBA in NVMM memory (get_nvds_buf_surface maps RGBA only).
MASK_CAPS = "video/x-raw(memory:NVMM), format=RGBA"
# On a discrete GPU, Python can map a surface only in CUDA unified memory (NvBufSurfaceMemType
# NVBUF_MEM_CUDA_UNIFIED); on Jetson the default surface array is mapped, and must be unmapped after.
CUDA_UNIFIED_MEMORY = 3
ON_JETSON = platform.machine() == "aarch64"


# Metadata → structs (pure; pyds objects satisfy these protocols) ------------------------------------------

class RectLike(Protocol):
    left: float
    top: float
    width: float
    height: float


class ObjectMetaLike(Protocol):
    object_id: int
    class_id: int
    confidence: float
    obj_label: str

    @property
    def rect_params(self) -> RectLike: ...


class AnalyticsObjLike(Protocol):
    roiStatus: list[str]
    lcStatus: list[str]
    dirStatus: str


@dataclass(frozen=True)
class AnalyticsStatus:
    """What nvdsanalytics computed for one object (kept for cross-checks; decisions come from CameraRules)."""

    track_id: int
    zones: tuple[str, ...]
    lines_crossed: tuple[str, ...]
    direction: str


def tracked_object(meta: ObjectMetaLike, frame_width: int, frame_height: int, labels: Sequence[str],
                   ) -> TrackedObject | None:
    """One NvDsObjectMeta → TrackedObject, box normalised to the frame; None for objects the tracker did not take."""
    if meta.object_id == UNTRACKED_OBJECT_ID or frame_width <= 0 or frame_height <= 0:
        return None
    rect = meta.rect_params

    def clip(value: float) -> float:
        return min(max(value, 0.0), 1.0)

    box = (clip(rect.left / frame_width), clip(rect.top / frame_height),
           clip((rect.left + rect.width) / frame_width), clip((rect.top + rect.height) / frame_height))
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    label = meta.obj_label or (labels[meta.class_id] if 0 <= meta.class_id < len(labels) else str(meta.class_id))
    # Tracker ids are 64-bit; the rules only need them unique per camera, and JSON consumers like them small.
    return TrackedObject(track_id=int(meta.object_id) & 0x7FFFFFFF, label=label, score=round(float(meta.confidence), 4),
                         box=box)


def frame_objects(metas: Iterable[ObjectMetaLike], frame_width: int, frame_height: int, labels: Sequence[str],
                  ) -> tuple[TrackedObject, ...]:
    converted = (tracked_object(m, frame_width, frame_height, labels) for m in metas)
    return tuple(o for o in converted if o is not None)


def analytics_status(track_id: int, info: AnalyticsObjLike) -> AnalyticsStatus:
    return AnalyticsStatus(track_id=track_id, zones=tuple(info.roiStatus or ()),
                           lines_crossed=tuple(info.lcStatus or ()), direction=info.dirStatus or "")


def detections_from_tensors(boxes: npt.NDArray[np.float32], logits: npt.NDArray[np.float32],
                            anchors: npt.NDArray[np.float32], *, score_threshold: float, iou_threshold: float,
                            allowed_classes: frozenset[int] | None, labels: Sequence[str] = (),
                            class_thresholds: dict[str, float] | None = None,
                            content: tuple[int, int] = (INPUT_SIZE, INPUT_SIZE)) -> list[RawDetection]:
    """nvinfer's raw output layers of one frame → detections in fractions of the frame, with the portable
    backend's own decoder, per-label thresholds and letterbox mapping."""
    found = postprocess(boxes.reshape(NUM_ANCHORS, 4), logits.reshape(NUM_ANCHORS, -1), anchors,
                        score_threshold=score_threshold, iou_threshold=iou_threshold, allowed_classes=allowed_classes)
    thresholds = class_thresholds or {}
    return [RawDetection(d.class_id, d.score, unletterbox(d.box, content)) for d in found
            if not labels or passes_class_threshold(d.score, labels[d.class_id], thresholds)]


# The pipeline (needs DeepStream: GPU nodes only) ----------------------------------------------------------

def require_deepstream() -> None:
    """Refuse clearly, at start, where DeepStream cannot run: its Python bindings ship with NVIDIA's SDK on GPU
    nodes only, never from a package registry."""
    try:
        import pyds  # noqa: F401 - imported for its presence only
    except ImportError as exc:
        raise BackendUnavailable(
            "VIGIE_INFERENCE_BACKEND=deepstream needs NVIDIA DeepStream and its Python bindings (pyds), which this "
            "node lacks: run it on a GPU node with the DeepStream SDK, or set VIGIE_INFERENCE_BACKEND=portable"
        ) from exc


def _gst() -> tuple[Any, Any]:
    import gi  # type: ignore[import-not-found]

    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst  # type: ignore[import-not-found]

    Gst.init(None)
    return Gst, GLib


def _layer_array(layer: pyds.NvDsInferLayerInfo, count: int) -> npt.NDArray[np.float32]:
    import pyds

    pointer = ctypes.cast(pyds.get_ptr(layer.buffer), ctypes.POINTER(ctypes.c_float))
    return np.ctypeslib.as_array(pointer, shape=(count,)).copy()


@dataclass
class _Source:
    config: CameraConfig
    stream: int
    rules: CameraRules
    confirmation: DisplacementConfirmation
    picture: SurfacePictureHealth
    # Cameras with an abandoned-object or person-on-the-ground rule: the static-object model, fed by the same
    # samples as picture health.
    static: StaticObjectModel | None = None
    static_regions: tuple[StaticRegion, ...] = ()
    # Cameras with a person-on-the-ground rule: static regions shaped like someone lying, looked at on turned crops
    # by the same model as the portable backend's (inference.lying_people), in a worker thread; its looks come back
    # through `looks_done` and are read at the next sample.
    lying: LyingPeople | None = None
    lying_people: tuple[TrackedObject, ...] = ()
    last_objects: tuple[TrackedObject, ...] = ()  # tracked in the last frame: someone standing is not looked at
    looks_done: deque[tuple[Place, Look, tuple[int, int]]] = field(default_factory=deque)
    looking: bool = False


def frame_analysis(source: _Source, timestamp: float, objects: tuple[TrackedObject, ...]) -> FrameAnalysis:
    """What the rules judge of one frame: its tracked objects, and the static objects the pixel probe found in it."""
    return FrameAnalysis(camera_id=source.config.camera_id, tenant_id=source.config.tenant_id, timestamp=timestamp,
                         objects=objects, static_regions=source.static_regions, lying_people=source.lying_people)


@dataclass
class DeepStreamBackend:
    """Same contract as PortableBackend: `apply(configs)` and `run(stop)`, events into the same EventSink."""

    settings: InferenceSettings
    sink: EventSink
    labels: list[str]
    # Same contract as the portable backend's; the pipeline does not split nvinfer's time per tenant yet, so it
    # stays empty and `flush_usage` writes nothing for this backend.
    meter: UsageMeter = field(default_factory=UsageMeter)
    # Where picture-health changes go (the worker's PictureHealthReports), as with the portable backend.
    health: HealthSink | None = None
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vigie-deepstream-")))
    sources: dict[uuid.UUID, _Source] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _pipeline: Any = None
    _anchors: npt.NDArray[np.float32] = field(default_factory=ssd_anchors)
    _next_stream: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # nvinfer takes whole frames only: the crops of places where someone may lie go through the same ONNX model in
    # onnxruntime (CUDA when onnxruntime-gpu sees the GPU), loaded on first use, one look at a time off the streaming
    # thread.
    crop_detector: Detector | None = None
    pose: PoseScorer | None = None  # the second stage on what the crops found lying (inference.pose), same thread
    crop_executor: Executor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigie-lying-crops"))

    def apply(self, configs: Sequence[CameraConfig]) -> None:
        wanted = {c.camera_id: c for c in configs}
        with self._lock:
            for camera_id in [c for c in self.sources if c not in wanted]:
                self._rest("camera_remove", self.sources.pop(camera_id))
            for camera_id, config in wanted.items():
                current = self.sources.get(camera_id)
                if current is None:
                    source = _Source(config, self._next_stream,
                                     CameraRules(config.zones, config.rules,
                                                 join_fragments=self.settings.join_fragments),
                                     DisplacementConfirmation(self.settings.track_min_displacement),
                                     SurfacePictureHealth(picture_monitor(self.settings, config),
                                                          self.settings.detect_fps),
                                     static_model(config, self.settings), lying=lying_people(config, self.settings))
                    self._next_stream += 1
                    self.sources[camera_id] = source
                    self._rest("camera_add", source)
                elif current.config != config:
                    # The mask probe reads the masks from the config at each frame: a change needs no reopening.
                    current.config = config
                    current.picture.monitor.expected_fps = config.expected_fps
                    current.static = static_model(config, self.settings, current.static)
                    if current.static is None:
                        current.static_regions = ()
                    current.lying = lying_people(config, self.settings, current.lying)
                    if current.lying is None:
                        current.lying_people = ()
                    current.rules = CameraRules(config.zones, config.rules, frame_size=current.rules.frame_size,
                                                join_fragments=self.settings.join_fragments)
            (self.work_dir / "analytics.txt").write_text(
                nvdsanalytics_config([(s.stream, s.config) for s in self.sources.values()]))

    def _rest(self, change: str, source: _Source) -> None:
        """nvmultiurisrcbin's REST API adds and removes streams while the pipeline runs."""
        import httpx2

        from inference.rtsp import with_credentials

        url = with_credentials(source.config.stream_url, source.config.username, source.config.password)
        body = {"key": "sensor", "value": {"camera_id": str(source.config.camera_id), "camera_name":
                                           source.config.name, "camera_url": url, "change": change}}
        path = "add" if change == "camera_add" else "remove"
        try:
            httpx2.post(f"http://127.0.0.1:{REST_PORT}/api/v1/stream/{path}", content=json.dumps(body), timeout=5)
        except httpx2.HTTPError as exc:
            log.error("inference.deepstream_rest_failed", change=change, camera_id=str(source.config.camera_id),
                      error=str(exc))

    def build(self) -> Any:
        gst, _ = _gst()
        infer_path = self.work_dir / "nvinfer.txt"
        infer_path.write_text(nvinfer_config(nvinfer_options(self.settings, len(self.labels))))
        tracker_path = self.work_dir / "nvdcf.yml"
        tracker_path.write_text(nvdcf_config(self.settings))
        geometry = pipeline_geometry(self.settings)
        (self.work_dir / "analytics.txt").write_text(nvdsanalytics_config([]))
        pipeline = gst.Pipeline()
        sources = gst.ElementFactory.make("nvmultiurisrcbin", "sources")
        for key, value in {"port": REST_PORT, "max-batch-size": self.settings.max_batch, "live-source": 1,
                           "batched-push-timeout": 40000, "width": geometry.muxer_width,
                           "height": geometry.muxer_height, "drop-pipeline-eos": 1,
                           "smart-record": 2, "smart-rec-cache": 20, "smart-rec-container": 0,
                           "smart-rec-dir-path": str(self.work_dir)}.items():
            sources.set_property(key, value)
        # Masks go on before anything looks at the pixels: the probe on the caps filter's src pad paints them.
        convert = gst.ElementFactory.make("nvvideoconvert", "mask-convert")
        if not ON_JETSON:
            convert.set_property("nvbuf-memory-type", CUDA_UNIFIED_MEMORY)
        rgba = gst.ElementFactory.make("capsfilter", "mask-caps")
        rgba.set_property("caps", gst.Caps.from_string(MASK_CAPS))
        infer = gst.ElementFactory.make("nvinfer", "detector")
        infer.set_property("config-file-path", str(infer_path))
        tracker = gst.ElementFactory.make("nvtracker", "tracker")
        for key, value in tracker_config(tracker_path).items():
            tracker.set_property(key, int(value) if value.isdigit() else value)
        analytics = gst.ElementFactory.make("nvdsanalytics", "analytics")
        analytics.set_property("config-file", str(self.work_dir / "analytics.txt"))
        sink = gst.ElementFactory.make("fakesink", "sink")
        sink.set_property("sync", 0)
        for element in (sources, convert, rgba, infer, tracker, analytics, sink):
            pipeline.add(element)
        sources.link(convert)
        convert.link(rgba)
        rgba.link(infer)
        infer.link(tracker)
        tracker.link(analytics)
        analytics.link(sink)
        rgba.get_static_pad("src").add_probe(gst.PadProbeType.BUFFER, self._on_pixels, 0)
        infer.get_static_pad("src").add_probe(gst.PadProbeType.BUFFER, self._on_inference, 0)
        analytics.get_static_pad("src").add_probe(gst.PadProbeType.BUFFER, self._on_analytics, 0)
        self._pipeline = pipeline
        return pipeline

    def _frames(self, buffer: Any) -> Iterable[pyds.NvDsFrameMeta]:
        import pyds

        batch = pyds.gst_buffer_get_nvds_batch_meta(hash(buffer))
        item = batch.frame_meta_list
        while item is not None:
            yield pyds.NvDsFrameMeta.cast(item.data)
            item = item.next

    def _by_stream(self) -> dict[int, _Source]:
        # list() copies the values in one step: apply() may add or remove a camera meanwhile on the asyncio loop.
        return {s.stream: s for s in list(self.sources.values())}

    def _on_pixels(self, _pad: Any, info: Any, _data: Any) -> Any:
        """Paint each masked camera's cover black in its RGBA frame before nvinfer, and sample picture health."""
        import pyds

        gst, _ = _gst()
        buffer = info.get_buffer()
        by_stream = self._by_stream()
        now = time.monotonic()
        for frame in self._frames(buffer):
            source = by_stream.get(frame.pad_index)
            if source is None:
                continue
            batch_id = frame.batch_id
            try:
                mapped = self.prepare_frame(source, now,
                                            functools.partial(pyds.get_nvds_buf_surface, hash(buffer), batch_id))
            except Exception:  # a frame that could not be masked must not reach nvinfer: fail closed
                log.exception("inference.mask_probe_failed", camera_id=str(source.config.camera_id))
                if source.config.privacy_masks:
                    return gst.PadProbeReturn.DROP
                continue
            if mapped and ON_JETSON:
                pyds.unmap_nvds_buf_surface(hash(buffer), batch_id)
        return gst.PadProbeReturn.OK

    def prepare_frame(self, source: _Source, t: float, surface: Callable[[], RgbaImage]) -> bool:
        """One frame of `source` at monotonic `t`: its masks painted into the pixels `surface()` maps, then its
        picture health and, for a camera with an abandoned-object or person-on-the-ground rule, its static objects
        judged on the masked picture at `detect_fps` (as the portable backend does), and the places where someone
        may lie looked at; True when it was mapped (a frame of an unmasked camera that is not due for a sample is
        left unmapped)."""
        masks = source.config.privacy_masks
        due = source.picture.frame_arrived(t)
        if not masks and not due:
            return False
        pixels = surface()
        paint_masks(pixels, masks)
        if due:
            grey = rgba_luma(pixels)
            if source.static is not None:
                # Read by the analytics probe of the same frame, downstream in this streaming thread.
                source.static_regions = source.static.observe(grey, t)
            if source.lying is not None:
                self._look_for_lying_people(source, source.lying, pixels, t)
            change = source.picture.sample(t, grey)
            if change is not None:
                self._picture_changed_threadsafe(source, change)
        return True

    def _look_for_lying_people(self, source: _Source, lying: LyingPeople, pixels: RgbaImage, t: float) -> None:
        """The portable backend's watch for people on the ground, on a sample of the masked RGBA frame: the looks
        finished since the last sample are read, the places due now are cropped from a copy of the frame (the
        surface is reused once the probe returns) and handed to the crop detector's thread unless a look is still
        running there (they are looked at one recheck later)."""
        while source.looks_done:
            place, look, size = source.looks_done.popleft()
            lying.found(place, look, size)
        size = (pixels.shape[1], pixels.shape[0])
        places = lying.due(source.static_regions, size, source.last_objects, t)
        if places and not source.looking:
            source.looking = True
            self.crop_executor.submit(self._run_looks, source, np.ascontiguousarray(pixels[..., :3]), places, size)
        source.lying_people = lying.lying(t)

    def _run_looks(self, source: _Source, rgb: npt.NDArray[np.uint8], places: list[Place],
                   size: tuple[int, int]) -> None:
        try:
            if self.crop_detector is None:
                from inference.onnx_detector import OnnxDetector

                self.crop_detector = OnnxDetector.from_settings(self.settings)
            stretch, input_size = self.settings.max_stretch, self.settings.input_size
            inputs = [image for place in places for image in look_inputs(rgb, place.crop, input_size, stretch)]
            found = read_looks(places, self.crop_detector.detect(inputs), self.crop_detector.labels, size,
                               input_size, stretch)
            if source.lying is not None:
                found = confirm_with_pose(found, rgb, size, self.pose, source.lying.options)
            source.looks_done.extend((place, look, size) for place, look in zip(places, found, strict=True))
        except Exception:  # a failed look must not stop later ones; the place is looked at again at its recheck
            log.exception("inference.lying_look_failed", camera_id=str(source.config.camera_id))
        finally:
            source.looking = False

    def _picture_changed_threadsafe(self, source: _Source, change: tuple[str, str | None]) -> None:
        tenant_id, camera_id = source.config.tenant_id, source.config.camera_id
        if self._loop is None:
            report_picture_health(self.health, tenant_id, camera_id, change)
            return
        # The reports' queue belongs to the asyncio loop; the GLib streaming thread only schedules the report.
        self._loop.call_soon_threadsafe(lambda: report_picture_health(self.health, tenant_id, camera_id, change))

    def _on_inference(self, _pad: Any, info: Any, _data: Any) -> Any:
        """Decode the raw SSD tensors of each frame and attach them as object meta for nvtracker."""
        import pyds

        gst, _ = _gst()
        allowed = frozenset(i for i, label in enumerate(self.labels) if label in self.settings.tracked_labels)
        for frame in self._frames(info.get_buffer()):
            DETECTED_FRAMES.inc()
            item = frame.frame_user_meta_list
            while item is not None:
                user = pyds.NvDsUserMeta.cast(item.data)
                if user.base_meta.meta_type == pyds.NvDsMetaType.NVDSINFER_TENSOR_OUTPUT_META:
                    tensor = pyds.NvDsInferTensorMeta.cast(user.user_meta_data)
                    layers = {pyds.get_nvds_LayerInfo(tensor, i).layerName:
                              pyds.get_nvds_LayerInfo(tensor, i) for i in range(tensor.num_output_layers)}
                    boxes = _layer_array(layers[BOX_LAYER], NUM_ANCHORS * 4)
                    logits = _layer_array(layers[CLASS_LAYER], NUM_ANCHORS * len(self.labels))
                    detections = detections_from_tensors(
                        boxes, logits, self._anchors, score_threshold=self.settings.score_threshold,
                        iou_threshold=self.settings.nms_iou_threshold, allowed_classes=allowed,
                        labels=self.labels, class_thresholds=self.settings.class_score_thresholds,
                        content=pipeline_geometry(self.settings).content)
                    self._attach(frame, detections)
                item = item.next
        return gst.PadProbeReturn.OK

    def _attach(self, frame: pyds.NvDsFrameMeta, detections: list[RawDetection]) -> None:
        import pyds

        batch = frame.base_meta.batch_meta
        width, height = frame.source_frame_width, frame.source_frame_height
        for det in detections:
            meta = pyds.nvds_acquire_obj_meta_from_pool(batch)
            x1, y1, x2, y2 = det.box
            meta.rect_params.left, meta.rect_params.top = x1 * width, y1 * height
            meta.rect_params.width, meta.rect_params.height = (x2 - x1) * width, (y2 - y1) * height
            meta.confidence = det.score
            meta.class_id = det.class_id
            meta.obj_label = self.labels[det.class_id]
            meta.object_id = UNTRACKED_OBJECT_ID
            # No parent object: the stubs say NvDsObjectMeta, the C API (and NVIDIA's SSD sample) take NULL.
            pyds.nvds_add_obj_meta_to_frame(frame, meta, None)  # type: ignore[arg-type]

    def _on_analytics(self, _pad: Any, info: Any, _data: Any) -> Any:
        """Tracked objects of each frame → FrameAnalysis, handed to the asyncio loop (no waiting here)."""
        import pyds

        gst, _ = _gst()
        by_stream = self._by_stream()
        for frame in self._frames(info.get_buffer()):
            source = by_stream.get(frame.pad_index)
            if source is None:
                continue
            metas = []
            item = frame.obj_meta_list
            while item is not None:
                metas.append(pyds.NvDsObjectMeta.cast(item.data))
                item = item.next
            objects = frame_objects(metas, frame.source_frame_width, frame.source_frame_height, self.labels)
            source.last_objects = objects
            analysis = frame_analysis(source, frame.buf_pts / 1e9, objects)
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._evaluate, source, analysis,
                                                (frame.source_frame_width, frame.source_frame_height))
        return gst.PadProbeReturn.OK

    def _evaluate(self, source: _Source, analysis: FrameAnalysis, frame_size: tuple[int, int]) -> None:
        source.rules.frame_size = frame_size
        confirmed = tuple(source.confirmation.filter(analysis.objects, analysis.timestamp))
        analysis = FrameAnalysis(camera_id=analysis.camera_id, tenant_id=analysis.tenant_id,
                                 timestamp=analysis.timestamp, objects=confirmed, stats=analysis.stats,
                                 static_regions=analysis.static_regions, lying_people=analysis.lying_people)
        now = datetime.now(UTC)
        for hit in source.rules.evaluate(analysis, now.astimezone(ZoneInfo(self.settings.timezone))):
            self.sink.submit(RuleTriggered(
                tenant_id=source.config.tenant_id, occurred_at=now, camera_id=source.config.camera_id,
                rule_id=hit.rule_id, rule_type=hit.rule_type.value, legal_event_type=LEGAL_EVENT_TYPE[hit.rule_type],
                zone_id=hit.zone_id, track_ids=hit.track_ids, boxes=hit.boxes, labels=hit.labels,
                scores=hit.scores, detail=hit.detail), source.config.camera_id)
            self.start_recording(source, before_s=10, duration_s=20)

    def start_recording(self, source: _Source, *, before_s: int, duration_s: int) -> None:
        """Smart record: a pre-event clip from the source bin's encoded-frame cache (nvurisrcbin `start-sr`).

        Never for a masked camera: smart record copies the camera's encoded stream, from before any mask is painted
        (CSI L251-3). Its alerts' clips are cut from the recorder's masked segments, as every camera's are
        (dvr/alert_clips.py)."""
        if source.config.privacy_masks:
            log.info("inference.smart_record_skipped", camera_id=str(source.config.camera_id),
                     reason="privacy masks: the encoded stream is unmasked")
            return
        if self._pipeline is None:
            return
        bin_ = self._pipeline.get_by_name("sources").get_by_name(f"dsnvurisrcbin{source.stream}")
        if bin_ is not None:
            session = ctypes.c_uint32(0)
            bin_.emit("start-sr", ctypes.addressof(session), before_s, duration_s, None)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        gst, glib = _gst()
        pipeline = self.build()
        main_loop = glib.MainLoop()
        thread = threading.Thread(target=main_loop.run, name="deepstream-glib", daemon=True)
        pipeline.set_state(gst.State.PLAYING)
        thread.start()
        try:
            await stop.wait()
        finally:
            pipeline.set_state(gst.State.NULL)
            main_loop.quit()
            thread.join(5)
            self.crop_executor.shutdown(wait=False, cancel_futures=True)
