"""The detection worker end to end: simulated RTSP cameras → real model → rules from Postgres → events on NATS.

Real components throughout: the GStreamer camera simulator, onnxruntime with the MediaPipe SSD, Postgres with
row-level security, nats-server with JetStream, and the filesystem object store.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import nats
import pytest
from prometheus_client import REGISTRY

from camsim.simulator import CameraSimulator, CameraSpec
from core.bus import Bus
from core.crypto import SecretBox
from core.db import Database
from core.events import Event, EventCodec
from core.objectstore import FilesystemObjectStore
from core.ports import free_port
from core.settings import Settings
from inference import service
from inference.events import DETECTION_EVENTS, CameraRestored, CameraWentOffline, ObjectDetected, RuleTriggered
from inference.mediapipe import DetectorModelFiles
from inference.model import CameraConfig, RuleInput, ZoneInput
from inference.onnx_detector import OnnxDetector
from inference.portable import HealthSink, PortableBackend
from inference.publisher import DetectionPublisher
from inference.settings import InferenceSettings
from inference.worker import serve
from tests.inference.conftest import World, add_camera, authorise

pytestmark = pytest.mark.integration

WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]


class EventLog:
    """Every detection event seen on NATS, with a way to wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Event]] = []
        self._codec = EventCodec(*DETECTION_EVENTS)
        self._changed = asyncio.Event()

    async def on_message(self, msg: nats.aio.msg.Msg) -> None:
        self.events.append((msg.subject, self._codec.decode(msg.data)))
        self._changed.set()

    def matching(self, predicate: Callable[[Event], bool]) -> list[Event]:
        return [e for _, e in self.events if predicate(e)]

    async def wait_for(self, predicate: Callable[[Event], bool], timeout_s: float, what: str) -> Event:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = self.matching(predicate)
            if found:
                return found[0]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = sorted({type(e).__name__ for _, e in self.events})
                raise AssertionError(f"no {what} within {timeout_s} s (seen: {seen})")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)


class OnlyTheseTenants:
    """Other tests leave cameras in the shared database; the worker under test serves only this test's tenants."""

    def __init__(self, backend: PortableBackend, tenants: Sequence[uuid.UUID]) -> None:
        self._backend = backend
        self._tenants = set(tenants)
        self.meter = backend.meter

    def apply(self, configs: Sequence[CameraConfig]) -> None:
        self._backend.apply([c for c in configs if c.tenant_id in self._tenants])

    async def run(self, stop: asyncio.Event) -> None:
        await self._backend.run(stop)


@pytest.fixture
async def event_log(settings: Settings) -> AsyncIterator[EventLog]:
    log = EventLog()
    nc = await nats.connect(settings.nats.url)
    await nc.subscribe("detections.>", cb=log.on_message)
    yield log
    await nc.close()


async def test_worker_detects_applies_new_rules_live_and_reports_outages(
    world: World, settings: Settings, department_pool: asyncpg.Pool, database: Database,
    camera_simulator: CameraSimulator, detector_model: DetectorModelFiles, event_log: EventLog, tmp_path: Path,
) -> None:
    alpha, beta = world.tenants
    secrets = SecretBox(settings.data_key.get_secret_value())
    flaky = camera_simulator.add_camera(CameraSpec(f"flaky-{uuid.uuid4().hex[:6]}", "bikes"))
    async with department_pool.acquire() as conn:
        walkway = await add_camera(conn, world, alpha, "walkway", camera_simulator.camera("vtest").sub_url)
        guarded = camera_simulator.camera("vtest-auth")
        locked = await add_camera(conn, world, beta, "locked", guarded.sub_url, secrets=secrets,
                                  username=guarded.spec.username, password=guarded.spec.password)
        street = await add_camera(conn, world, beta, "street", flaky.sub_url)
        dead = await add_camera(conn, world, beta, "dead", f"rtsp://127.0.0.1:{free_port()}/sub")
        await authorise(conn, world, walkway, "forbidden_zone", date.today() - timedelta(days=1),
                        date.today() + timedelta(days=30))

    options = InferenceSettings(offline_after_s=1.5, read_timeout_s=2.0, open_timeout_s=3.0, reconnect_base_s=0.2,
                                reconnect_cap_s=1.0, config_refresh_s=0.5)
    detector = OnnxDetector(detector_model.onnx, detector_model.labels, score_threshold=options.score_threshold,
                            iou_threshold=options.nms_iou_threshold, tracked_labels=options.tracked_labels)
    bus = await Bus.connect(settings.nats.url, name="inference-test")
    store = FilesystemObjectStore(tmp_path / "objects")
    publisher = DetectionPublisher(bus, store)
    await publisher.prepare()
    backend = PortableBackend(detector, publisher, options)
    detected_before = REGISTRY.get_sample_value("vigie_inference_frames_total", {"outcome": "detected"}) or 0.0
    batches_before = REGISTRY.get_sample_value("vigie_inference_batch_seconds_count") or 0.0
    stop = asyncio.Event()
    # What `python -m inference` runs, on this test's database, bus and store.
    worker = asyncio.create_task(serve(database, OnlyTheseTenants(backend, world.tenants), publisher,
                                       secrets=secrets, settings=options, stop=stop))
    try:
        # Pedestrians on the walkway are detected and tracked; each new track is announced with a snapshot.
        person = await event_log.wait_for(
            lambda e: isinstance(e, ObjectDetected) and e.camera_id == walkway and e.label == "Person", 30,
            "person on the walkway")
        assert isinstance(person, ObjectDetected)
        assert person.tenant_id == alpha
        assert person.snapshot_key is not None
        # What the detector dashboard plots: frames through the detector and the time of each batch.
        detected = REGISTRY.get_sample_value("vigie_inference_frames_total", {"outcome": "detected"})
        assert (detected or 0) > detected_before
        assert (REGISTRY.get_sample_value("vigie_inference_batch_seconds_count") or 0) > batches_before
        snapshot = await store.get(alpha, person.snapshot_key)
        assert snapshot[:2] == b"\xff\xd8"  # a JPEG
        # The camera that needs credentials is read with the sealed ones from the database.
        await event_log.wait_for(lambda e: isinstance(e, ObjectDetected) and e.camera_id == locked, 30,
                                 "detection on the camera with credentials")
        # An unreachable camera is reported offline, with the reason, while the others keep being served.
        offline = await event_log.wait_for(lambda e: isinstance(e, CameraWentOffline) and e.camera_id == dead, 20,
                                           "the dead camera going offline")
        assert isinstance(offline, CameraWentOffline)
        assert "refused" in offline.reason
        assert not event_log.matching(lambda e: isinstance(e, RuleTriggered))

        # A rule created through the service reaches the running worker without a restart.
        async with database.for_tenants([alpha]) as conn:
            zone = await service.create_zone(conn, walkway, ZoneInput(name="cordon", points=WHOLE_FRAME))
            rule = await service.create_rule(conn, walkway, RuleInput(rule_type="intrusion", zone_id=zone.id),
                                             today=date.today(), model_labels=frozenset(detector.labels))
        hit = await event_log.wait_for(lambda e: isinstance(e, RuleTriggered) and e.rule_id == rule.id, 30,
                                       "the intrusion rule firing")
        assert isinstance(hit, RuleTriggered)
        assert hit.legal_event_type == "forbidden_zone"
        assert hit.labels
        assert set(hit.labels) == {"Person"}
        assert hit.snapshot_key is not None
        subjects = {s for s, e in event_log.events if e.event_id == hit.event_id}
        assert subjects == {f"detections.{alpha}.{walkway}"}

        # A camera that loses power goes offline, and comes back when it restarts.
        await event_log.wait_for(lambda e: isinstance(e, ObjectDetected) and e.camera_id == street, 30,
                                 "traffic on the street camera")
        flaky.kill()
        await event_log.wait_for(lambda e: isinstance(e, CameraWentOffline) and e.camera_id == street, 15,
                                 "the killed camera going offline")
        before_restart = len(event_log.matching(lambda e: isinstance(e, ObjectDetected) and e.camera_id == walkway))
        flaky.restart()
        restored = await event_log.wait_for(lambda e: isinstance(e, CameraRestored) and e.camera_id == street, 20,
                                            "the restarted camera coming back")
        assert isinstance(restored, CameraRestored)
        assert restored.offline_for_s > 1.0
        # The walkway was served throughout the outage.
        assert len(event_log.matching(lambda e: isinstance(e, ObjectDetected) and e.camera_id == walkway)) \
            >= before_restart > 0
        stats = backend.stats()
        assert stats[str(walkway)]["detected"] > 0  # type: ignore[index]
        assert backend.meter.totals[alpha].detector_seconds > 0
        assert backend.meter.totals[beta].frames > 0
    finally:
        stop.set()
        await worker
        await bus.close()
        camera_simulator.remove_camera(flaky.name)
    # Stopping flushed the metering: the tenant's detector time is in the database for its invoice.
    async with database.for_tenants([alpha]) as conn:
        usage = await service.detector_usage(conn, alpha, date.today() - timedelta(days=1),
                                             date.today() + timedelta(days=1))
    assert sum(day.frames for day in usage) > 0


class NoObjects:
    """A detector that sees nothing: this test is about the picture, not what is in it."""

    labels = ["Person"]

    def detect(self, frames: list[object]) -> list[list[object]]:
        return [[] for _ in frames]


class OnlyTheseTenantsWatched(OnlyTheseTenants):
    """The same filter, passing the worker's picture-health reports through to the backend."""

    @property
    def health(self) -> HealthSink | None:
        return self._backend.health

    @health.setter
    def health(self, sink: HealthSink | None) -> None:
        self._backend.health = sink


async def test_the_worker_reports_picture_health_and_the_cameras_status_follows(
    world: World, settings: Settings, department_pool: asyncpg.Pool, database: Database,
    camera_simulator: CameraSimulator, tmp_path: Path,
) -> None:
    """`python -m inference` judges each camera's sub stream and writes its health: the simulator's blackout is a
    tampered camera, a killed one offline; the camera's status follows, and the transitions are stored."""
    alpha, _ = world.tenants
    cam = camera_simulator.add_camera(CameraSpec(f"picture-{uuid.uuid4().hex[:6]}", "vtest"))
    async with department_pool.acquire() as conn:
        camera = await add_camera(conn, world, alpha, "parvis", cam.sub_url)
    options = InferenceSettings(offline_after_s=1.5, read_timeout_s=2.0, open_timeout_s=3.0, reconnect_base_s=0.2,
                                reconnect_cap_s=1.0, config_refresh_s=0.5, picture_hold_s=2.0)
    bus = await Bus.connect(settings.nats.url, name="inference-health-test")
    publisher = DetectionPublisher(bus, FilesystemObjectStore(tmp_path / "objects"))
    await publisher.prepare()
    backend = PortableBackend(NoObjects(), publisher, options)  # type: ignore[arg-type]
    stop = asyncio.Event()
    worker = asyncio.create_task(serve(database, OnlyTheseTenantsWatched(backend, world.tenants), publisher,
                                       secrets=SecretBox(settings.data_key.get_secret_value()), settings=options,
                                       stop=stop))

    async def health() -> tuple[str | None, str]:
        async with department_pool.acquire() as conn:
            row = await conn.fetchrow("SELECT h.state, c.status FROM cameras c LEFT JOIN camera_health h "
                                      "ON h.camera_id = c.id WHERE c.id = $1", camera)
        assert row is not None
        return row["state"], row["status"]

    async def until(state: str, timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while (await health())[0] != state:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"camera health {await health()} after {timeout_s} s, not {state}")
            await asyncio.sleep(0.2)

    try:
        await until("online", 30)
        cam.toggle_blackout()
        await until("tampered", 30)
        assert await health() == ("tampered", "tampered")
        cam.toggle_blackout()
        await until("online", 30)
        cam.kill()
        await until("offline", 30)
        assert await health() == ("offline", "offline")
    finally:
        stop.set()
        await worker
        await bus.close()
        camera_simulator.remove_camera(cam.name)
    async with department_pool.acquire() as conn:
        transitions = [r["to_state"] for r in await conn.fetch(
            "SELECT to_state FROM camera_health_transitions WHERE camera_id = $1 ORDER BY at, id", camera)]
        signal = await conn.fetchval("SELECT source FROM camera_health_signals WHERE camera_id = $1", camera)
    assert transitions == ["online", "tampered", "online", "offline"]
    assert signal == "detector"
