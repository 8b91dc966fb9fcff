"""Least privilege on the bus: each process connects to NATS as its own user and the server refuses what that user
may not do (core.nats_auth), while every process can still do its whole job; TLS is available; the deployment
ships the same permission table."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.events import ALERT_EVENTS, ALERTS_STREAM, AlertRaised, DispatchOrdered
from alerts.events import subject_for as alert_subject
from cli.bus import cmd_bus_provision, provision_url
from core.bus import REFUSED, Bus, ConsumerSpec, Reject, StreamNotProvisioned, stream_sequence
from core.embedded import NatsServerProcess
from core.errors import Unavailable
from core.events import Event, EventCodec
from core.nats_auth import ALERTS, DEADLETTER, DETECTIONS, DVR, PROCESS_USERS, PUSH, permission_table
from core.settings import NatsSettings, Settings
from dvr.events import DVR_EVENTS, DVR_STREAM, ClipUnavailable
from dvr.events import subject_for as dvr_subject
from inference.events import DETECTION_EVENTS, DETECTIONS_STREAM, CameraWentOffline
from inference.events import subject_for as detection_subject
from mobile_push.events import PUSH_EVENTS, PUSH_STREAM, PushAccepted
from mobile_push.events import subject_for as push_subject

pytestmark = pytest.mark.integration

TERRAFORM = Path(__file__).resolve().parents[2] / "infra" / "terraform"
TENANT, CAMERA = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServerProcess]:
    """A server of this test only: fresh streams, no durable consumer of another suite."""
    server = NatsServerProcess(store_dir=tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def _settings(url: str, **nats: object) -> Settings:
    # A refused publish gets no ack: retried as through a leader change, it fails after the short budget set here.
    nats.setdefault("publish_retry_s", 1.0)
    return Settings(environment="test", nats=NatsSettings(url=url, embedded=False, **nats))


def _order() -> DispatchOrdered:
    return DispatchOrdered(tenant_id=TENANT, dispatch_id=uuid.uuid4(), alert_id=uuid.uuid4(), camera_id=CAMERA,
                           force_id=uuid.uuid4(), force_kind="police_nationale")


def _raised() -> AlertRaised:
    return AlertRaised(tenant_id=TENANT, alert_id=uuid.uuid4(), camera_id=CAMERA, rule_type="intrusion",
                       legal_event_type="forbidden_zone", severity=3, priority=30, source_event_id=uuid.uuid4())


async def _stream_event_ids(admin: Bus, stream: str, subject: str) -> list[str]:
    """event_id of every message of a stream (from the first), read by the harness's admin connection."""
    seen: list[str] = []
    codec = EventCodec(*ALERT_EVENTS, *DETECTION_EVENTS)

    async def on_message(msg: object) -> None:
        seen.append(str(codec.decode(msg.data).event_id))  # type: ignore[attr-defined]

    following = await admin.follow(subject, stream, on_message, after_sequence=0)
    await asyncio.sleep(0.5)
    await following.stop()
    return seen


async def test_the_detector_cannot_publish_a_dispatch_order_while_the_alert_engine_can(
    own_nats: NatsServerProcess,
) -> None:
    settings = _settings(own_nats.url)
    admin = await Bus.connect(own_nats.url, name="harness")
    detector = await Bus.connect_as(settings, "inference")
    push = await Bus.connect_as(settings, "mobile_push")
    engine = await Bus.connect_as(settings, "alerts")
    try:
        await admin.provision_stream(ALERTS_STREAM)
        await admin.provision_stream(DETECTIONS_STREAM)
        forged, refused_before = _order(), REFUSED._value.get()
        with pytest.raises(Unavailable):
            await detector.publish(alert_subject(forged), forged, timeout_s=1.0)
        # The push dispatcher may publish neither dispatch orders nor detections.
        with pytest.raises(Unavailable):
            await push.publish(alert_subject(forged), forged, timeout_s=1.0)
        offline = CameraWentOffline(tenant_id=TENANT, camera_id=CAMERA, reason="forged")
        with pytest.raises(Unavailable):
            await push.publish(detection_subject(offline), offline, timeout_s=1.0)
        assert REFUSED._value.get() >= refused_before + 3  # the server said so, not a slow server
        genuine = _order()
        assert await engine.publish(alert_subject(genuine), genuine) >= 1
        assert await _stream_event_ids(admin, ALERTS_STREAM.name, "alerts.>") == [str(genuine.event_id)]
        assert await _stream_event_ids(admin, DETECTIONS_STREAM.name, "detections.>") == []
    finally:
        for bus in (admin, detector, push, engine):
            await bus.close()


async def test_a_process_cannot_listen_to_what_it_does_not_consume(own_nats: NatsServerProcess) -> None:
    settings = _settings(own_nats.url)
    admin = await Bus.connect(own_nats.url, name="harness")
    detector = await Bus.connect_as(settings, "inference")
    try:
        await admin.provision_stream(ALERTS_STREAM)
        received: list[object] = []

        async def on_message(msg: object) -> None:
            received.append(msg)

        # The detector has no right on the ALERTS stream's consumer API: the follow gets no answer.
        with pytest.raises(Unavailable):
            await asyncio.wait_for(detector.follow("alerts.>", ALERTS_STREAM.name, on_message), 10)
        order = _order()
        await admin.publish(alert_subject(order), order)
        await asyncio.sleep(0.3)
        assert received == []
    finally:
        await admin.close()
        await detector.close()


async def _consume_one(bus: Bus, spec: ConsumerSpec, codec: EventCodec, *, reject: bool = False) -> Event:
    """Run the process's kind of durable consumer until it handled one message (acked, or dead-lettered)."""
    got: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def handler(event: Event, _msg: object) -> None:
        if not got.done():
            got.set_result(event)
        if reject:
            raise Reject("refused by the test")

    task = asyncio.create_task(bus.consume(spec, codec, handler, stop=stop))
    try:
        return await asyncio.wait_for(got, 15)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_every_process_does_its_whole_job_under_its_own_permissions(own_nats: NatsServerProcess) -> None:
    settings = _settings(own_nats.url)
    buses = {user: await Bus.connect_as(settings, user) for user in PROCESS_USERS}
    refused_before = REFUSED._value.get()
    try:
        # `vigie bus provision` declares the streams as the admin; each process checks those it needs at start.
        await provision_url(own_nats.url)
        await buses["alerts"].require_streams((DETECTIONS_STREAM, ALERTS_STREAM, PUSH_STREAM, DVR_STREAM))
        for user, streams in (("inference", [DETECTIONS_STREAM]), ("dvr", [DVR_STREAM, ALERTS_STREAM]),
                              ("mobile_push", [ALERTS_STREAM, PUSH_STREAM])):
            await buses[user].require_streams(streams)
        # The API reads where the live queue starts (its first `ready`).
        assert await buses["api"].last_sequence(ALERTS_STREAM.name) == 0

        # The detector publishes a detection and dead-letters what it cannot encode; the engine consumes it.
        offline = CameraWentOffline(tenant_id=TENANT, camera_id=CAMERA, reason="unplugged")
        await buses["inference"].publish_many([(detection_subject(offline), offline)])
        await buses["inference"].publish_encoded(f"deadletter.{DETECTIONS}.inference", b"{}", msg_id="dlq-test")
        engine_spec = ConsumerSpec(DETECTIONS, "alerts-engine", "detections.>")
        assert (await _consume_one(buses["alerts"], engine_spec, EventCodec(*DETECTION_EVENTS))).event_id == \
            offline.event_id

        # The API follows ALERTS live from a sequence (the live queue's reconnect) while the engine publishes.
        seen: list[int] = []

        async def on_alert(msg: object) -> None:
            seen.append(stream_sequence(msg))  # type: ignore[arg-type]

        following = await buses["api"].follow("alerts.>", ALERTS, on_alert, after_sequence=0)
        raised = _raised()
        first = await buses["alerts"].publish(alert_subject(raised), raised)
        await buses["alerts"].publish(alert_subject(_order()), _order())
        for _ in range(50):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.1)
        await following.stop()
        assert seen[:1] == [first]

        # Recorders take new alerts from their durable (here refusing one: dead letter) and publish clips' fate.
        clip_spec = ConsumerSpec(ALERTS, "dvr-alert-clips", "alerts.*.raised")
        assert (await _consume_one(buses["dvr"], clip_spec, EventCodec(*ALERT_EVENTS), reject=True)).event_id == \
            raised.event_id
        unavailable = ClipUnavailable(tenant_id=TENANT, alert_id=raised.alert_id, camera_id=CAMERA, reason="none")
        await buses["dvr"].publish(dvr_subject(unavailable), unavailable)

        # The dispatcher takes dispatch orders and reports on PUSH; the engine consumes PUSH and DVR.
        order_spec = ConsumerSpec(ALERTS, "mobile_push", "alerts.>")
        await _consume_one(buses["mobile_push"], order_spec, EventCodec(*ALERT_EVENTS), reject=True)
        accepted = PushAccepted(tenant_id=TENANT, dispatch_id=uuid.uuid4(), alert_id=raised.alert_id,
                                officer_id=uuid.uuid4(), device_id=uuid.uuid4())
        await buses["mobile_push"].publish(push_subject(accepted), accepted)
        push_spec = ConsumerSpec(PUSH, "alerts-escalation", "push.>")
        assert (await _consume_one(buses["alerts"], push_spec, EventCodec(*PUSH_EVENTS), reject=True)).event_id == \
            accepted.event_id
        clip_events = ConsumerSpec(DVR, "alerts-clips-ClipUnavailable", "dvr.*.ClipUnavailable")
        assert (await _consume_one(buses["alerts"], clip_events, EventCodec(*DVR_EVENTS), reject=True)).event_id \
            == unavailable.event_id
    finally:
        for bus in buses.values():
            await bus.close()
    assert REFUSED._value.get() == refused_before, "a process was refused something its job needs"


async def test_without_the_development_harness_a_client_without_credentials_is_refused(tmp_path: Path) -> None:
    server = NatsServerProcess(store_dir=tmp_path / "nats", anonymous_admin=False)
    server.start()
    try:
        with pytest.raises(Unavailable, match="Authorization Violation"):
            await Bus.connect(server.url, name="anonymous", connect_timeout_s=1)
        with pytest.raises(Unavailable, match="Authorization Violation"):
            await Bus.connect(server.url, name="wrong", user="inference", password="guess", connect_timeout_s=1)
        bus = await Bus.connect_as(_settings(server.url), "inference")
        await bus.close()
    finally:
        server.stop()


async def test_tls_is_available(tmp_path: Path) -> None:
    server = NatsServerProcess(store_dir=tmp_path / "nats", tls=True)
    server.start()
    try:
        assert server.url.startswith("tls://")
        bus = await Bus.connect_as(_settings(server.url, tls_ca_file=server.ca_file), "api")
        assert bus.connected
        await bus.close()
        # A client that does not trust the server's CA does not connect.
        with pytest.raises(Unavailable):
            await Bus.connect_as(_settings(server.url), "api", connect_timeout_s=1)
    finally:
        server.stop()


def test_the_deployment_ships_the_same_permissions() -> None:
    shipped = json.loads((TERRAFORM / "nats-permissions.json").read_text())
    assert shipped == permission_table()


def test_the_permission_table_names_the_platforms_streams_and_subjects() -> None:
    assert (DETECTIONS_STREAM.name, ALERTS_STREAM.name, PUSH_STREAM.name,
                                              DVR_STREAM.name) == (DETECTIONS, ALERTS, PUSH, DVR)
    assert DEADLETTER == "DEADLETTER"
    table = permission_table()
    assert set(table) == {"api", "inference", "alerts", "dvr", "mobile_push"}
    assert "detections.>" in table["inference"]["publish"]["allow"]
    assert not any(s.startswith(("alerts.", "push.", "dvr.")) for s in table["inference"]["publish"]["allow"])
    assert not any(s.startswith(("alerts.", "detections.")) for s in table["mobile_push"]["publish"]["allow"])
    assert table["api"]["subscribe"]["allow"] == ["_INBOX_api.>"]


async def test_a_process_can_neither_create_nor_rewrite_a_stream(own_nats: NatsServerProcess,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Only the admin (`vigie bus provision`) declares streams: a process started with one replica configured could
    otherwise set an R3 stream back to one."""
    settings = _settings(own_nats.url)
    engine = await Bus.connect_as(settings, "alerts")
    try:
        with pytest.raises(StreamNotProvisioned, match=r"ALERTS is missing: run `vigie bus provision`"):
            await engine.require_streams((ALERTS_STREAM,))
        refused_before = REFUSED._value.get()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(engine.provision_stream(ALERTS_STREAM), 3)
        # `vigie bus provision`, as the NATS admin with its own password (no anonymous user on a deployment).
        assert await cmd_bus_provision(settings, argparse.Namespace()) == 0
        printed = capsys.readouterr().out
        assert "ALERTS: created with 1 replica(s)" in printed
        assert "DETECTIONS/alerts-engine: declared" in printed
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(engine.provision_stream(ALERTS_STREAM), 3)
        assert REFUSED._value.get() >= refused_before + 2
        await engine.require_streams((ALERTS_STREAM,))
    finally:
        await engine.close()
