"""The JetStream bus on the project's own nats-server: dedupe, ack, backoff, dead-letter with a reason."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import Counter
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from core.bus import DEAD_LETTER_STREAM, Bus, ConsumerSpec, Reject, RetryAfter, StreamNotProvisioned, StreamSpec
from core.embedded import NatsServerProcess
from core.errors import Unavailable
from core.events import Event, EventCodec

pytestmark = pytest.mark.integration


class ThingObserved(Event, frozen=True, kw_only=True):
    label: str


async def _bus(nats_server: NatsServerProcess) -> Bus:
    bus = await Bus.connect(nats_server.url, name="test")
    await bus.provision_dead_letter_stream()
    return bus


async def test_publish_is_deduplicated_by_event_id(nats_server: NatsServerProcess) -> None:
    bus = await _bus(nats_server)
    stream = f"T{uuid.uuid4().hex[:8]}"
    await bus.provision_stream(StreamSpec(stream, [f"{stream.lower()}.>"]))
    event = ThingObserved(tenant_id=uuid.uuid4(), label="x")
    first = await bus.publish(f"{stream.lower()}.a", event)
    again = await bus.publish(f"{stream.lower()}.a", event)
    assert first == again
    info = await bus.js.stream_info(stream)
    assert info.state.messages == 1
    await bus.close()


async def test_consumer_acks_retries_and_dead_letters(nats_server: NatsServerProcess) -> None:
    bus = await _bus(nats_server)
    stream = f"T{uuid.uuid4().hex[:8]}"
    subject = stream.lower()
    await bus.provision_stream(StreamSpec(stream, [f"{subject}.>"]))
    tenant = uuid.uuid4()
    events = {label: ThingObserved(tenant_id=tenant, label=label) for label in ("ok", "flaky", "poison", "broken")}
    await bus.publish_many([(f"{subject}.{label}", e) for label, e in events.items()])
    await bus.js.publish(f"{subject}.garbage", b"{not json", headers={"Nats-Msg-Id": "garbage-1"})
    attempts: Counter[str] = Counter()
    done = asyncio.Event()
    handled: set[str] = set()

    async def handler(event: Event, msg: Msg) -> None:
        assert isinstance(event, ThingObserved)
        attempts[event.label] += 1
        if event.label == "flaky" and attempts["flaky"] < 3:
            raise ConnectionError("database restarting")
        if event.label == "poison":
            raise Reject("camera unknown")
        if event.label == "broken":
            raise RuntimeError("always fails")
        handled.add(event.label)
        if {"ok", "flaky"} <= handled:
            done.set()

    stop = asyncio.Event()
    spec = ConsumerSpec(
        stream=stream,
        durable="test-consumer",
        filter_subject=f"{subject}.>",
        backoff_s=(0.1, 0.2),
        max_attempts=3,
        ack_wait_s=5,
    )
    task = asyncio.create_task(bus.consume(spec, EventCodec(ThingObserved), handler, stop=stop))
    await asyncio.wait_for(done.wait(), 20)
    dead = await _dead_letters(bus, stream, expected=3)
    stop.set()
    await task
    assert dict(attempts) == {"ok": 1, "flaky": 3, "poison": 1, "broken": 3}
    reasons = {d[0]: d[1] for d in dead}
    assert reasons[f"{subject}.poison"].startswith("rejected: camera unknown")
    assert reasons[f"{subject}.broken"].startswith("exhausted after 3 attempts")
    assert reasons[f"{subject}.garbage"].startswith("undecodable: malformed payload")
    await bus.close()


async def _dead_letters(bus: Bus, stream: str, expected: int) -> list[tuple[str, str]]:
    sub = await bus.js.pull_subscribe(f"deadletter.{stream}.>", stream=DEAD_LETTER_STREAM)
    found: list[tuple[str, str]] = []
    for _ in range(40):
        try:
            for msg in await sub.fetch(10, timeout=0.5):
                headers = msg.headers or {}
                found.append((headers["Vigie-Original-Subject"], headers["Vigie-Reason"]))
                await msg.ack()
        except TimeoutError:
            pass
        if len(found) >= expected:
            break
    await sub.unsubscribe()
    return found


async def test_consumer_outlives_idle_periods(nats_server: NatsServerProcess) -> None:
    """An empty stream makes every fetch time out; the consumer keeps waiting and handles what comes later."""
    bus = await _bus(nats_server)
    stream = f"T{uuid.uuid4().hex[:8]}"
    await bus.provision_stream(StreamSpec(stream, [f"{stream.lower()}.>"]))
    seen = asyncio.Event()

    async def handler(event: Event, msg: Msg) -> None:
        seen.set()

    stop = asyncio.Event()
    spec = ConsumerSpec(stream=stream, durable="idle", filter_subject=f"{stream.lower()}.>", batch=16)
    task = asyncio.create_task(bus.consume(spec, EventCodec(ThingObserved), handler, stop=stop))
    await asyncio.sleep(3.5)  # several empty fetches
    assert not task.done(), task
    await bus.publish(f"{stream.lower()}.late", ThingObserved(tenant_id=uuid.uuid4(), label="late"))
    await asyncio.wait_for(seen.wait(), 10)
    stop.set()
    await task
    await bus.close()


async def test_retry_after_waits_on_its_own_budget_then_dead_letters(nats_server: NatsServerProcess) -> None:
    """A handler that is not ready yet is redelivered after the delay it asks for, beyond the failure budget; a
    message still not ready when the wait budget is spent is dead-lettered with the reason."""
    bus = await _bus(nats_server)
    stream = f"T{uuid.uuid4().hex[:8]}"
    subject = stream.lower()
    await bus.provision_stream(StreamSpec(stream, [f"{subject}.>"]))
    tenant = uuid.uuid4()
    await bus.publish_many([(f"{subject}.{label}", ThingObserved(tenant_id=tenant, label=label))
                            for label in ("soon", "never")])
    deliveries: dict[str, list[float]] = {"soon": [], "never": []}
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def handler(event: Event, msg: Msg) -> None:
        assert isinstance(event, ThingObserved)
        deliveries[event.label].append(loop.time())
        if event.label == "never" or len(deliveries["soon"]) < 3:
            raise RetryAfter(0.4, "post-event buffer not recorded yet")
        ready.set()

    stop = asyncio.Event()
    # One failure allowed, but the two waits of "soon" must not count as failures.
    spec = ConsumerSpec(stream=stream, durable="waits", filter_subject=f"{subject}.>", max_attempts=1, max_waits=2)
    task = asyncio.create_task(bus.consume(spec, EventCodec(ThingObserved), handler, stop=stop))
    await asyncio.wait_for(ready.wait(), 20)
    dead = await _dead_letters(bus, stream, expected=1)
    stop.set()
    await task
    soon = deliveries["soon"]
    assert len(soon) == 3
    assert all(later - earlier >= 0.35 for earlier, later in itertools.pairwise(soon))
    assert len(deliveries["never"]) == 3
    assert dead == [(f"{subject}.never", "still not ready after 3 deliveries: post-event buffer not recorded yet")]
    await bus.close()


async def test_batch_consumer_settles_each_event_by_its_own_outcome(nats_server: NatsServerProcess) -> None:
    bus = await _bus(nats_server)
    stream = f"T{uuid.uuid4().hex[:8]}"
    subject = stream.lower()
    await bus.provision_stream(StreamSpec(stream, [f"{subject}.>"]))
    tenant = uuid.uuid4()
    labels = [f"ok-{i}" for i in range(20)] + ["flaky", "poison", "broken"]
    await bus.publish_many([(f"{subject}.{label}", ThingObserved(tenant_id=tenant, label=label)) for label in labels])
    await bus.js.publish(f"{subject}.garbage", b"{not json", headers={"Nats-Msg-Id": "garbage-batch"})
    attempts: Counter[str] = Counter()
    sizes: list[int] = []
    handled: set[str] = set()
    done = asyncio.Event()

    async def handler(events: list[Event]) -> list[BaseException | None]:
        sizes.append(len(events))
        outcomes: list[BaseException | None] = []
        for event in events:
            assert isinstance(event, ThingObserved)
            attempts[event.label] += 1
            if event.label == "flaky" and attempts["flaky"] < 2:
                outcomes.append(ConnectionError("database restarting"))
            elif event.label == "poison":
                outcomes.append(Reject("camera unknown"))
            elif event.label == "broken":
                outcomes.append(RuntimeError("always fails"))
            else:
                outcomes.append(None)
                handled.add(event.label)
        if handled >= {*labels[:20], "flaky"}:
            done.set()
        return outcomes

    stop = asyncio.Event()
    spec = ConsumerSpec(stream=stream, durable="test-batches", filter_subject=f"{subject}.>", backoff_s=(0.1,),
                        max_attempts=2, ack_wait_s=5, batch=50, inflight_batches=2)
    task = asyncio.create_task(bus.consume_batches(spec, EventCodec(ThingObserved), handler, stop=stop))
    await asyncio.wait_for(done.wait(), 20)
    dead = await _dead_letters(bus, stream, expected=3)
    stop.set()
    await task
    assert max(sizes) > 1  # events of one fetch reach the handler together
    assert all(attempts[label] == 1 for label in labels[:20])  # acked once, never redelivered
    assert (attempts["flaky"], attempts["poison"], attempts["broken"]) == (2, 1, 2)
    reasons = {d[0]: d[1] for d in dead}
    assert reasons[f"{subject}.poison"].startswith("rejected: camera unknown")
    assert reasons[f"{subject}.broken"].startswith("exhausted after 2 attempts")
    assert reasons[f"{subject}.garbage"].startswith("undecodable: malformed payload")
    await bus.close()


async def test_batch_consumer_retries_every_event_when_the_handler_fails(nats_server: NatsServerProcess) -> None:
    bus = await _bus(nats_server)
    stream = f"T{uuid.uuid4().hex[:8]}"
    subject = stream.lower()
    await bus.provision_stream(StreamSpec(stream, [f"{subject}.>"]))
    tenant = uuid.uuid4()
    await bus.publish_many([(f"{subject}.{i}", ThingObserved(tenant_id=tenant, label=str(i))) for i in range(5)])
    attempts: Counter[str] = Counter()
    failed: list[str] = []
    acked: set[str] = set()
    done = asyncio.Event()

    async def handler(events: list[Event]) -> list[BaseException | None]:
        labels = [e.label for e in events if isinstance(e, ThingObserved)]
        attempts.update(labels)
        if not failed:
            failed.extend(labels)
            raise ConnectionError("database down")  # the whole fetch comes back
        acked.update(labels)
        if len(acked) == 5:
            done.set()
        return [None] * len(events)

    stop = asyncio.Event()
    spec = ConsumerSpec(stream=stream, durable="test-batch-fail", filter_subject=f"{subject}.>", backoff_s=(0.1,),
                        max_attempts=3, ack_wait_s=5, batch=10)
    task = asyncio.create_task(bus.consume_batches(spec, EventCodec(ThingObserved), handler, stop=stop))
    await asyncio.wait_for(done.wait(), 20)
    stop.set()
    await task
    assert failed
    assert dict(attempts) == {str(i): 2 if str(i) in failed else 1 for i in range(5)}
    await bus.close()


async def test_provisioning_never_lowers_replicas_and_a_process_only_checks(nats_server: NatsServerProcess) -> None:
    """A stream declared with limits keeps them; a process configured with more replicas than the stream has refuses
    to start with the reason, instead of rewriting the stream; a missing stream is named."""
    bus = await _bus(nats_server)
    stream = f"T{uuid.uuid4().hex[:8]}"
    spec = StreamSpec(stream, [f"{stream.lower()}.>"], max_age_s=3600, duplicate_window_s=60)
    with pytest.raises(StreamNotProvisioned, match=f"stream {stream} is missing"):
        await bus.require_stream(spec)
    assert "created with 1 replica" in await bus.provision_stream(spec)
    await bus.require_stream(spec)
    info = await bus.js.stream_info(stream)
    assert (info.config.num_replicas, info.config.max_age, info.config.duplicate_window) == (1, 3600, 60)
    # What a process configured for a 3-node cluster sees on this one-node server.
    wants_three = await Bus.connect(nats_server.url, name="test", replicas=3)
    with pytest.raises(StreamNotProvisioned, match=f"stream {stream} has 1 replica\\(s\\), 3 configured"):
        await wants_three.require_stream(spec)
    await wants_three.close()
    await bus.close()


async def test_a_publish_waits_through_an_outage_and_is_stored_once(tmp_path: Path) -> None:
    """The server is killed (-9) while an event is being published and comes back 2 s later: the publish, sent
    again under the same Nats-Msg-Id, is acknowledged once the stream answers, and the stream holds it once.
    A publish with no server for longer than the budget fails with Unavailable."""
    server = NatsServerProcess(store_dir=tmp_path / "nats")
    server.start()
    bus = await Bus.connect(server.url, name="test", publish_retry_s=15.0)
    try:
        spec = StreamSpec("OUTAGE", ["outage.>"])
        await bus.provision_stream(spec)
        before = ThingObserved(tenant_id=uuid.uuid4(), label="before")
        await bus.publish("outage.a", before)
        server.kill()
        during = ThingObserved(tenant_id=uuid.uuid4(), label="during")
        publishing = asyncio.create_task(bus.publish("outage.a", during, timeout_s=1.0))
        await asyncio.sleep(2.0)
        assert not publishing.done()
        server.start()
        assert await asyncio.wait_for(publishing, 20) == 2
        assert await bus.publish("outage.a", during) == 2  # the same event again: deduplicated
        assert (await bus.js.stream_info("OUTAGE")).state.messages == 2
        short = await Bus.connect(server.url, name="short", publish_retry_s=1.0)
        server.kill()
        with pytest.raises(Unavailable, match=r"publish to outage\.a failed"):
            await short.publish("outage.a", ThingObserved(tenant_id=uuid.uuid4(), label="lost"), timeout_s=0.5)
        with contextlib.suppress(ConnectionError):  # closing flushes to a server that is gone
            await short.close()
    finally:
        await bus.close()
        server.stop()
