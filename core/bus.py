"""NATS JetStream bus: stream declaration, deduplicated publish, and a consumer with ack, backoff and dead-letter."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from prometheus_client import Counter

from core.errors import Unavailable
from core.events import Event, EventCodec, EventDecodeError
from core.logging import get_logger

log = get_logger(__name__)

DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_PREFIX = "deadletter"

DEAD_LETTERED = Counter(
    "vigie_bus_dead_lettered_total", "Messages moved to the dead-letter stream", ["stream", "consumer", "reason"]
)
HANDLED = Counter("vigie_bus_handled_total", "Messages handled", ["stream", "consumer", "outcome"])


class Retry(Exception):
    """Raised by a handler for a transient failure: the message is redelivered after a backoff."""


class Reject(Exception):
    """Raised by a handler for a message that can never succeed: it goes to the dead-letter stream."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryAfter(Exception):
    """Raised by a handler whose message is not actionable yet (not a failure): it is redelivered after `delay_s`.

    The nak's delay is held by the server, so the wait survives a restart of the consumer. Such deliveries draw on
    the consumer's `max_waits` budget; past it the message is dead-lettered rather than kept forever.
    """

    def __init__(self, delay_s: float, reason: str) -> None:
        super().__init__(reason)
        self.delay_s = delay_s
        self.reason = reason


@dataclass(frozen=True)
class StreamSpec:
    """A stream the process needs; declared idempotently at start."""

    name: str
    subjects: list[str]
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    max_age_s: float = 7 * 86400
    duplicate_window_s: float = 120.0
    replicas: int = 1


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer and its redelivery policy."""

    stream: str
    durable: str
    filter_subject: str
    backoff_s: Sequence[float] = (0.5, 2.0, 5.0, 15.0)
    max_attempts: int = 5
    # Deliveries a handler may defer with RetryAfter, on top of max_attempts.
    max_waits: int = 0
    ack_wait_s: float = 30.0
    batch: int = 64
    max_ack_pending: int = 1000
    extra: dict[str, object] = field(default_factory=dict)


Handler = Callable[[Event, Msg], Awaitable[None]]


class Bus:
    """One NATS connection and its JetStream context."""

    def __init__(self, nc: NatsClient, *, replicas: int = 1) -> None:
        self._nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self._replicas = replicas

    @classmethod
    async def connect(cls, url: str, *, name: str, replicas: int = 1, connect_timeout_s: float = 5.0) -> Bus:
        async def on_error(exc: Exception) -> None:
            log.warning("nats.error", error=str(exc))

        try:
            # Once connected, reconnect forever; but a server absent at start must not hang the caller.
            nc = await asyncio.wait_for(
                nats.connect(
                    # A cluster is given as comma-separated URLs.
                    [u.strip() for u in url.split(",") if u.strip()],
                    name=name,
                    connect_timeout=connect_timeout_s,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=on_error,
                    allow_reconnect=True,
                ),
                timeout=connect_timeout_s * 2,
            )
        except (TimeoutError, NoServersError, OSError, NatsTimeoutError) as exc:
            raise Unavailable(f"NATS unreachable at {url}: {exc}") from exc
        return cls(nc, replicas=replicas)

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    async def close(self) -> None:
        await self._nc.close()

    async def ensure_stream(self, spec: StreamSpec) -> None:
        config = StreamConfig(
            name=spec.name,
            subjects=spec.subjects,
            retention=spec.retention,
            storage=StorageType.FILE,
            max_age=spec.max_age_s,
            duplicate_window=spec.duplicate_window_s,
            num_replicas=max(spec.replicas, self._replicas),
        )
        try:
            await self.js.stream_info(spec.name)
        except NotFoundError:
            await self.js.add_stream(config)
        else:
            await self.js.update_stream(config)

    async def ensure_dead_letter_stream(self) -> None:
        await self.ensure_stream(StreamSpec(DEAD_LETTER_STREAM, [f"{DEAD_LETTER_PREFIX}.>"], max_age_s=30 * 86400))

    async def publish(self, subject: str, event: Event, *, timeout_s: float = 5.0) -> int:
        """Publish one event; returns the stream sequence. A duplicate event_id returns the first sequence."""
        try:
            ack = await self.js.publish(
                subject,
                EventCodec.encode(event),
                timeout=timeout_s,
                headers={"Nats-Msg-Id": str(event.event_id)},
            )
        except (NatsTimeoutError, NoServersError, ConnectionError) as exc:
            raise Unavailable(f"publish to {subject} failed: {exc}") from exc
        return int(ack.seq)

    async def publish_many(self, items: Sequence[tuple[str, Event]], *, timeout_s: float = 10.0) -> list[int]:
        """Pipelined publish: all requests in flight together, then every ack awaited."""
        return list(await asyncio.gather(*(self.publish(s, e, timeout_s=timeout_s) for s, e in items)))

    async def dead_letter(self, msg: Msg, spec: ConsumerSpec, reason: str) -> None:
        """Copy a message to the dead-letter stream with the reason, then terminate it."""
        seq = msg.metadata.sequence.stream
        headers = {
            "Nats-Msg-Id": f"dlq-{spec.stream}-{seq}",
            "Vigie-Reason": reason[:1000],
            "Vigie-Original-Subject": msg.subject,
            "Vigie-Consumer": spec.durable,
        }
        await self.js.publish(f"{DEAD_LETTER_PREFIX}.{spec.stream}.{spec.durable}", msg.data, headers=headers)
        DEAD_LETTERED.labels(spec.stream, spec.durable, reason.split(":", 1)[0][:60]).inc()
        log.warning("bus.dead_lettered", stream=spec.stream, consumer=spec.durable, seq=seq, reason=reason)
        await msg.term()

    async def consume(
        self,
        spec: ConsumerSpec,
        codec: EventCodec,
        handler: Handler,
        *,
        stop: asyncio.Event,
    ) -> None:
        """Run a durable pull consumer until `stop` is set."""
        config = ConsumerConfig(
            durable_name=spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=spec.filter_subject,
            # One more delivery than we use ourselves: the last attempt is dead-lettered by us, not dropped.
            max_deliver=spec.max_attempts + spec.max_waits + 1,
            ack_wait=spec.ack_wait_s,
            max_ack_pending=spec.max_ack_pending,
        )
        sub = await self.js.pull_subscribe(spec.filter_subject, durable=spec.durable, stream=spec.stream, config=config)
        try:
            while not stop.is_set():
                try:
                    messages = await sub.fetch(spec.batch, timeout=1.0)
                except (NatsTimeoutError, TimeoutError):
                    # nats-py raises either, depending on the batch size, when nothing arrived in time.
                    continue
                except (ConnectionError, NoServersError) as exc:
                    log.warning("bus.fetch_failed", error=str(exc))
                    await asyncio.sleep(0.5)
                    continue
                await asyncio.gather(*(self._handle(m, spec, codec, handler) for m in messages))
        finally:
            await sub.unsubscribe()

    async def _handle(self, msg: Msg, spec: ConsumerSpec, codec: EventCodec, handler: Handler) -> None:
        attempt = msg.metadata.num_delivered
        try:
            event = codec.decode(msg.data)
        except EventDecodeError as exc:
            HANDLED.labels(spec.stream, spec.durable, "rejected").inc()
            await self.dead_letter(msg, spec, f"undecodable: {exc}")
            return
        try:
            await handler(event, msg)
        except Reject as exc:
            HANDLED.labels(spec.stream, spec.durable, "rejected").inc()
            await self.dead_letter(msg, spec, f"rejected: {exc.reason}")
        except RetryAfter as exc:
            if attempt >= spec.max_attempts + spec.max_waits:
                HANDLED.labels(spec.stream, spec.durable, "exhausted").inc()
                await self.dead_letter(msg, spec, f"still not ready after {attempt} deliveries: {exc.reason}")
                return
            HANDLED.labels(spec.stream, spec.durable, "deferred").inc()
            log.info("bus.deferred", stream=spec.stream, consumer=spec.durable, attempt=attempt,
                     delay_s=exc.delay_s, reason=exc.reason, event_id=str(event.event_id))
            await msg.nak(delay=exc.delay_s)
        except Exception as exc:
            # Deliveries do not say which earlier ones were waits, so a failure may use the whole budget.
            if attempt >= spec.max_attempts + spec.max_waits:
                HANDLED.labels(spec.stream, spec.durable, "exhausted").inc()
                await self.dead_letter(msg, spec, f"exhausted after {attempt} attempts: {exc!r}")
                return
            delay = spec.backoff_s[min(attempt - 1, len(spec.backoff_s) - 1)]
            HANDLED.labels(spec.stream, spec.durable, "retried").inc()
            log.info(
                "bus.retry",
                stream=spec.stream,
                consumer=spec.durable,
                attempt=attempt,
                delay_s=delay,
                error=repr(exc),
                event_id=str(event.event_id),
            )
            await msg.nak(delay=delay)
        else:
            HANDLED.labels(spec.stream, spec.durable, "acked").inc()
            await msg.ack()


def tenant_subject(prefix: str, tenant_id: uuid.UUID, *parts: str) -> str:
    """Subjects carry the tenant right after the prefix, so permissions and filters can scope by tenant."""
    return ".".join([prefix, str(tenant_id), *parts])
