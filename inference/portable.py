"""The portable backend: RTSP readers → motion gate → fair, batched onnxruntime inference → tracker → rules → events.

It runs on CPU here and on CUDA where onnxruntime-gpu finds a GPU. The DeepStream backend replaces readers,
detector and tracker with a GStreamer pipeline but feeds the same CameraRules with the same structs and emits the
same events, so everything above detection is exercised by this backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from core.logging import get_logger
from inference.analytics import CameraRules
from inference.conversions import frame_to_array
from inference.events import CameraRestored, CameraWentOffline, ObjectDetected, RuleTriggered
from inference.lying_people import (
    LOOK_TURNS,
    Look,
    LyingOptions,
    LyingPeople,
    Place,
    PoseScorer,
    confirm_with_pose,
    look_inputs,
    read_looks,
)
from inference.metrics import BATCH_SECONDS, DETECTED_FRAMES, DROPPED_FRAMES, GATED_OUT_FRAMES
from inference.model import LEGAL_EVENT_TYPE, CameraConfig, FrameAnalysis, RuleType, StaticRegion, TrackedObject
from inference.motion import small_grey
from inference.picture_health import PictureHealthMonitor
from inference.publisher import EventSink
from inference.rtsp import DecodedFrame, ReaderOptions, RtspCameraReader, StreamChange, StreamState, with_credentials
from inference.scheduler import FairScheduler, UsageMeter
from inference.settings import InferenceSettings
from inference.ssd import RawDetection, passes_class_threshold, unletterbox
from inference.static_objects import StaticObjectModel
from inference.tracker import DetectedBox, DisplacementConfirmation, IouTracker

log = get_logger(__name__)



class Detector(Protocol):
    labels: list[str]

    def detect(self, frames: list[npt.NDArray[np.uint8]]) -> list[list[RawDetection]]: ...


@dataclass
class CameraCounters:
    frames: int = 0
    detected: int = 0
    gated_out: int = 0
    superseded: int = 0  # a newer frame replaced one waiting for a detector slot
    events: int = 0


@dataclass
class CameraRuntime:
    config: CameraConfig
    reader: RtspCameraReader
    tracker: IouTracker
    rules: CameraRules
    confirmation: DisplacementConfirmation
    last_detect_at: float = -math.inf
    last_objects: tuple[TrackedObject, ...] = ()
    announced: set[int] = field(default_factory=set)
    counters: CameraCounters = field(default_factory=CameraCounters)
    picture: PictureHealthMonitor = field(default_factory=PictureHealthMonitor)
    # Only for cameras with an enabled abandoned-object or person-on-the-ground rule: fed every frame taken, gated
    # out or not.
    static: StaticObjectModel | None = None
    static_regions: tuple[StaticRegion, ...] = ()
    # Only for cameras with an enabled person-on-the-ground rule: the static regions shaped like a lying person.
    lying: LyingPeople | None = None

    @property
    def camera_id(self) -> uuid.UUID:
        return self.config.camera_id

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.config.tenant_id

    @property
    def weight(self) -> float:
        return self.config.weight


@dataclass
class _Ready:
    frame: DecodedFrame


@dataclass
class _Looks:
    """Places of one camera to look at in the next batch, with the frame their crops are cut from."""

    frame: DecodedFrame
    places: list[Place]


def reader_options(settings: InferenceSettings) -> ReaderOptions:
    return ReaderOptions(
        detect_fps=settings.detect_fps, open_timeout_s=settings.open_timeout_s,
        read_timeout_s=settings.read_timeout_s, reconnect_base_s=settings.reconnect_base_s,
        reconnect_cap_s=settings.reconnect_cap_s, offline_after_s=settings.offline_after_s,
        motion_pixel_threshold=settings.motion_pixel_threshold, motion_min_changed=settings.motion_min_changed,
        motion_scene_change=settings.motion_scene_change, max_stretch=settings.max_stretch,
        input_size=settings.input_size,
    )


# Where the backend hands a camera's new picture health (tenant, camera, state, detail): the worker reports it.
HealthSink = Callable[[uuid.UUID, uuid.UUID, str, str | None], None]


def make_tracker(settings: InferenceSettings) -> IouTracker:
    return IouTracker(min_hits=settings.track_min_hits)


def picture_monitor(settings: InferenceSettings, config: CameraConfig) -> PictureHealthMonitor:
    """A camera's picture-health monitor, with the same holds in both backends."""
    return PictureHealthMonitor(hold_s=settings.picture_hold_s, expected_fps=config.expected_fps,
                                frozen_hold_s=settings.picture_frozen_hold_s)


def report_picture_health(health: HealthSink | None, tenant_id: uuid.UUID, camera_id: uuid.UUID,
                          change: tuple[str, str | None] | None) -> None:
    """Log a camera's new picture health and hand it to the worker's reports (both backends, on the asyncio loop)."""
    if change is None:
        return
    log.info("inference.picture_health", camera_id=str(camera_id), state=change[0], detail=change[1])
    if health is not None:
        health(tenant_id, camera_id, change[0], change[1])


def static_model(config: CameraConfig, settings: InferenceSettings,
                 current: StaticObjectModel | None = None) -> StaticObjectModel | None:
    """The camera's static-object model when one of its enabled rules looks for abandoned objects or people on the
    ground (kept, with what it learnt, when it already has one), else None: other cameras do not pay for it."""
    waits = [r.params.stationary_s for r in config.rules if r.enabled and r.rule_type is RuleType.ABANDONED_OBJECT]
    if not waits and not watches_people_on_ground(config):
        return None
    model = current or StaticObjectModel(pixel_threshold=settings.static_pixel_threshold,
                                         min_area=settings.static_min_area, max_area=settings.static_max_area)
    # Taken into the background only well after the longest wait, so it is reported first.
    model.forget_s = max(settings.static_forget_s, 2 * max(waits, default=0.0))
    return model


def watches_people_on_ground(config: CameraConfig) -> bool:
    return any(r.enabled and r.rule_type is RuleType.PERSON_ON_GROUND for r in config.rules)


def lying_people(config: CameraConfig, settings: InferenceSettings,
                 current: LyingPeople | None = None) -> LyingPeople | None:
    """The camera's watch for people lying on the ground when one of its enabled rules looks for them (kept, with
    its places, when it already has one), else None."""
    if not watches_people_on_ground(config):
        return None
    options = LyingOptions(score_threshold=settings.lying_threshold, upright_score_threshold=settings.lying_threshold,
                           crop_scale=settings.lying_crop_scale, recheck_s=settings.lying_recheck_s,
                           pose_threshold=settings.lying_pose_threshold)
    if current is not None:
        current.options = options
        return current
    return LyingPeople(options)


class PortableBackend:
    """Serves any number of cameras with one detector; cameras are added, changed or removed while it runs."""

    def __init__(self, detector: Detector, sink: EventSink, settings: InferenceSettings, *,
                 scheduler: FairScheduler | None = None, meter: UsageMeter | None = None,
                 reader_factory: Callable[..., RtspCameraReader] = RtspCameraReader,
                 pose: PoseScorer | None = None) -> None:
        self._detector = detector
        self._pose = pose  # the second stage for people on the ground (inference.pose); None: the detector alone
        self._sink = sink
        self._settings = settings
        self._tz = ZoneInfo(settings.timezone)
        self.scheduler = scheduler or FairScheduler()
        self.meter = meter or UsageMeter()
        self._reader_factory = reader_factory
        self.cameras: dict[uuid.UUID, CameraRuntime] = {}
        self.health: HealthSink | None = None
        self._ready: dict[uuid.UUID, _Ready] = {}
        self._looks: dict[uuid.UUID, _Looks] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        self.detector_seconds = 0.0
        self.crop_images = 0  # detector inputs spent on crops of places where someone may lie on the ground

    # Camera set ---------------------------------------------------------------------------------------

    def apply(self, configs: Sequence[CameraConfig]) -> None:
        """Bring the running cameras in line with `configs`: start new ones, stop removed ones, and reload
        zones and rules in place (the stream is reopened only when its URL or credentials change)."""
        wanted = {c.camera_id: c for c in configs}
        for camera_id in [c for c in self.cameras if c not in wanted]:
            self._stop_camera(camera_id)
        for camera_id, config in wanted.items():
            current = self.cameras.get(camera_id)
            if current is None:
                self._start_camera(config)
            elif (current.config.stream_url, current.config.username, current.config.password) != (
                    config.stream_url, config.username, config.password):
                self._stop_camera(camera_id)
                self._start_camera(config)
            elif current.config != config:
                current.reader.masks = config.privacy_masks
                current.picture.expected_fps = config.expected_fps
                current.config = config
                current.static = static_model(config, self._settings, current.static)
                current.lying = lying_people(config, self._settings, current.lying)
                current.rules = CameraRules(config.zones, config.rules, frame_size=current.rules.frame_size,
                                            join_fragments=self._settings.join_fragments)

    def _start_camera(self, config: CameraConfig) -> None:
        url = with_credentials(config.stream_url, config.username, config.password)
        reader = self._reader_factory(config.camera_id, url, reader_options(self._settings),
                                      self._on_stream_change_threadsafe, self._on_frame_threadsafe)
        reader.masks = config.privacy_masks
        self.cameras[config.camera_id] = CameraRuntime(
            config=config, reader=reader, tracker=make_tracker(self._settings),
            confirmation=DisplacementConfirmation(self._settings.track_min_displacement),
            rules=CameraRules(config.zones, config.rules, join_fragments=self._settings.join_fragments),
            picture=picture_monitor(self._settings, config), static=static_model(config, self._settings),
            lying=lying_people(config, self._settings))
        reader.start()
        log.info("inference.camera_started", camera_id=str(config.camera_id), tenant_id=str(config.tenant_id),
                 rules=len(config.rules))

    def _stop_camera(self, camera_id: uuid.UUID) -> None:
        runtime = self.cameras.pop(camera_id)
        self._ready.pop(camera_id, None)
        self._looks.pop(camera_id, None)
        self.scheduler.forget_camera(camera_id)
        runtime.reader.stop(timeout_s=0.1)  # the thread ends at its next read; no need to wait for it here
        log.info("inference.camera_stopped", camera_id=str(camera_id))

    def close(self) -> None:
        for camera_id in list(self.cameras):
            runtime = self.cameras.pop(camera_id)
            runtime.reader.stop()

    # Threads → loop ---------------------------------------------------------------------------------------

    def _on_frame_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _on_stream_change_threadsafe(self, change: StreamChange) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_stream_change, change)

    def _on_stream_change(self, change: StreamChange) -> None:
        runtime = self.cameras.get(change.camera_id)
        if runtime is None:
            return
        tenant = runtime.tenant_id
        if change.state is StreamState.OFFLINE:
            self._picture_changed(runtime, runtime.picture.on_stream_lost(change.reason))
            runtime.tracker.reset()
            runtime.last_objects = ()
            self._sink.submit(CameraWentOffline(tenant_id=tenant, camera_id=change.camera_id, reason=change.reason),
                              change.camera_id)
            log.warning("inference.camera_offline", camera_id=str(change.camera_id), reason=change.reason)
        else:
            self._sink.submit(CameraRestored(tenant_id=tenant, camera_id=change.camera_id,
                                             offline_for_s=change.offline_for_s), change.camera_id)
            log.info("inference.camera_restored", camera_id=str(change.camera_id), offline_for_s=change.offline_for_s)

    def _picture_changed(self, runtime: CameraRuntime, change: tuple[str, str | None] | None) -> None:
        report_picture_health(self.health, runtime.tenant_id, runtime.camera_id, change)

    # Detector loop -------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                # Cleared before collecting, so a frame arriving meanwhile still wakes the next wait.
                self._wake.clear()
                if await self.step():
                    # A batch ran on the loop without giving way: the publisher, leases and reloads go now.
                    await asyncio.sleep(0)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=0.5)
        finally:
            self.close()

    async def step(self) -> bool:
        """Take the cameras' newest frames and run one detector batch if any frame needs it; False when idle."""
        self._loop = asyncio.get_running_loop()
        self._collect()
        if not self._ready and not self._looks:
            return False
        self._detect_batch()
        return True

    def _needs_detection(self, runtime: CameraRuntime, frame: DecodedFrame) -> bool:
        return (frame.motion.has_motion or runtime.tracker.moving_tracks > 0
                or frame.timestamp - runtime.last_detect_at >= self._settings.keepalive_s)

    def _collect(self) -> None:
        """Take every camera's newest frame: gated-out frames are analysed at once (no detector), the others wait
        for a detector slot, a waiting frame being replaced by a newer one (its motion flag carried over)."""
        for camera_id, runtime in self.cameras.items():
            frame = runtime.reader.slot.take()
            if frame is None:
                continue
            runtime.counters.frames += 1
            if runtime.static is not None:
                # Before gating: a bag put down slowly may never count as motion, and the model needs every frame.
                grey = frame.grey if frame.grey is not None else small_grey(frame.picture)
                runtime.static_regions = runtime.static.observe(grey, frame.timestamp)
            else:
                runtime.static_regions = ()
            if runtime.lying is not None:
                # Looked at in the next batch, whether this frame is gated out or not: someone lying still makes
                # no motion.
                places = runtime.lying.due(runtime.static_regions, frame.frame_size, runtime.last_objects,
                                           frame.timestamp)
                if places:
                    # Places still waiting from an earlier frame (the batch was full) are cut from this newer one.
                    waiting_looks = self._looks.get(camera_id)
                    fresh = {p.track_id for p in places}
                    earlier = [p for p in waiting_looks.places if p.track_id not in fresh] if waiting_looks else []
                    self._looks[camera_id] = _Looks(frame, earlier + places)
            counters = runtime.reader.counters
            self._picture_changed(runtime, runtime.picture.on_frame(
                frame.timestamp, frame.stats, counters.decoded, counters.corrupt_frames + counters.corrupt_packets))
            waiting = self._ready.get(camera_id)
            if waiting is not None:
                runtime.counters.superseded += 1
                DROPPED_FRAMES.inc()
                self._ready[camera_id] = _Ready(frame)
                continue
            if self._needs_detection(runtime, frame):
                self._ready[camera_id] = _Ready(frame)
            else:
                runtime.counters.gated_out += 1
                GATED_OUT_FRAMES.inc()
                self._analyse(runtime, frame, runtime.last_objects)

    def _detect_batch(self) -> None:
        candidates = [self.cameras[c] for c in self._ready if c in self.cameras]
        chosen = self.scheduler.select(candidates, self._settings.max_batch)
        frames = [self._ready.pop(runtime.camera_id).frame for runtime in chosen]
        # The crops ride in the same batch as the frames: they cost extra images only where someone may lie.
        looks = self._take_looks(self._settings.max_batch - len(frames))
        size, stretch = self._settings.input_size, self._settings.max_stretch

        # On the event loop itself, resizing and the pose model's looks included: handing each batch to a worker
        # thread and back cost about 1 ms a batch on two cores (the thread woke among the camera readers to fight for
        # the GIL), 0.78 against 0.81 of the raw loop's rate in bench.detector. The loop is held for one batch
        # (max_batch frames, some 50 ms on two cores), and run() lets its other tasks through between batches.
        started = time.perf_counter()
        images = [f.detector_input for f in frames]
        pictures = []
        for _, pending in looks:
            pictures.append(frame_to_array(pending.frame.picture))
            for place in pending.places:
                images += look_inputs(pictures[-1], place.crop, size, stretch)
        found = self._detector.detect(images)
        results, seen = found[:len(frames)], self._read_looks(looks, pictures, found[len(frames):])
        elapsed = time.perf_counter() - started
        self._record_looks(looks, seen)
        self.batches += 1
        self.detector_seconds += elapsed
        # Each look at a place is charged to its camera's tenant like a frame (it is three of the batch's images).
        self.meter.record_batch([r.tenant_id for r in chosen]
                                + [runtime.tenant_id for runtime, pending in looks for _ in pending.places], elapsed)
        BATCH_SECONDS.observe(elapsed)
        DETECTED_FRAMES.inc(len(chosen))
        labels = self._detector.labels
        for runtime, frame, detections in zip(chosen, frames, results, strict=True):
            if runtime.camera_id not in self.cameras:
                continue  # removed while the batch ran
            runtime.counters.detected += 1
            runtime.last_detect_at = frame.timestamp
            content = frame.detector_content
            thresholds = self._settings.class_score_thresholds
            boxes = [DetectedBox(labels[d.class_id], d.score, unletterbox(d.box, content, frame.input_size))
                     for d in detections
                     if passes_class_threshold(d.score, labels[d.class_id], thresholds)]
            objects = tuple(runtime.confirmation.filter(runtime.tracker.update(boxes, frame.timestamp),
                                                        frame.timestamp))
            runtime.last_objects = objects
            if self._settings.publish_object_events:
                for obj in objects:
                    if obj.track_id not in runtime.announced:
                        runtime.announced.add(obj.track_id)
                        self._emit(runtime, ObjectDetected(
                            tenant_id=runtime.tenant_id, occurred_at=frame.captured_at, camera_id=runtime.camera_id,
                            track_id=obj.track_id, label=obj.label, score=round(obj.score, 3), box=obj.box,
                        ), frame)
                # Forget announcements of tracks the tracker dropped, so the set stays as small as the scene.
                runtime.announced &= runtime.tracker.track_ids
            self._analyse(runtime, frame, objects)

    def _take_looks(self, room: int) -> list[tuple[CameraRuntime, _Looks]]:
        """The cameras' waiting looks that fit in `room` images of the batch (one camera's at least, so that looks
        are never starved by a full batch); the others wait for the next batch, oldest first."""
        taken: list[tuple[CameraRuntime, _Looks]] = []
        images = 0
        for camera_id, pending in list(self._looks.items()):
            runtime = self.cameras.get(camera_id)
            if runtime is None:
                del self._looks[camera_id]
                continue
            cost = len(pending.places) * len(LOOK_TURNS)
            if taken and images + cost > room:
                break
            taken.append((runtime, self._looks.pop(camera_id)))
            images += cost
        return taken

    def _read_looks(self, looks: list[tuple[CameraRuntime, _Looks]], pictures: list[npt.NDArray[np.uint8]],
                    results: list[list[RawDetection]]) -> list[list[Look]]:
        """What the detector found in each camera's crops (Person boxes only), confirmed by the pose model where it
        found someone lying (the pose model runs in the batch too)."""
        size, stretch = self._settings.input_size, self._settings.max_stretch
        seen, at = [], 0
        for (runtime, pending), rgb in zip(looks, pictures, strict=True):
            count = len(pending.places) * len(LOOK_TURNS)
            found = read_looks(pending.places, results[at:at + count], self._detector.labels,
                               pending.frame.frame_size, size, stretch)
            at += count
            lying = runtime.lying
            seen.append(found if lying is None else
                        confirm_with_pose(found, rgb, pending.frame.frame_size, self._pose, lying.options))
        return seen

    def _record_looks(self, looks: list[tuple[CameraRuntime, _Looks]], seen: list[list[Look]]) -> None:
        """Hand each place what its look showed."""
        for (runtime, pending), found in zip(looks, seen, strict=True):
            self.crop_images += len(pending.places) * len(LOOK_TURNS)
            if runtime.lying is not None:
                for place, look in zip(pending.places, found, strict=True):
                    runtime.lying.found(place, look, pending.frame.frame_size)

    def _analyse(self, runtime: CameraRuntime, frame: DecodedFrame, objects: tuple[TrackedObject, ...]) -> None:
        runtime.rules.frame_size = frame.frame_size
        lying = runtime.lying.lying(frame.timestamp) if runtime.lying is not None else ()
        analysis = FrameAnalysis(camera_id=runtime.camera_id, tenant_id=runtime.tenant_id,
                                 timestamp=frame.timestamp, objects=objects, stats=frame.stats,
                                 static_regions=runtime.static_regions, lying_people=lying)
        local_now: datetime = frame.captured_at.astimezone(self._tz)
        for hit in runtime.rules.evaluate(analysis, local_now):
            self._emit(runtime, RuleTriggered(
                tenant_id=runtime.tenant_id, occurred_at=frame.captured_at, camera_id=runtime.camera_id,
                rule_id=hit.rule_id, rule_type=hit.rule_type.value, legal_event_type=LEGAL_EVENT_TYPE[hit.rule_type],
                zone_id=hit.zone_id, track_ids=hit.track_ids, boxes=hit.boxes, labels=hit.labels,
                scores=hit.scores, detail=hit.detail,
            ), frame)

    def _emit(self, runtime: CameraRuntime, event: ObjectDetected | RuleTriggered, frame: DecodedFrame) -> None:
        runtime.counters.events += 1
        self._sink.submit(event, runtime.camera_id, frame.picture)

    def queue_depth_by_tenant(self) -> dict[uuid.UUID, int]:
        """Frames waiting for a detector slot, per tenant (the fair scheduler's backlog)."""
        depth: dict[uuid.UUID, int] = {}
        for camera_id in list(self._ready):
            runtime = self.cameras.get(camera_id)
            if runtime is not None:
                depth[runtime.tenant_id] = depth.get(runtime.tenant_id, 0) + 1
        return depth

    def stats(self) -> dict[str, object]:
        """Counters per camera, for logs, the bench and tests."""
        return {
            str(camera_id): {
                "state": runtime.reader.state.value, "last_error": runtime.reader.last_error,
                **runtime.counters.__dict__, "reader": dict(runtime.reader.counters.__dict__),
            }
            for camera_id, runtime in self.cameras.items()
        }
