"""NATS JetStream bus: stream declaration, deduplicated publish, and a consumer with ack, backoff and dead-letter."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, ConnectionReconnectingError, NoServersError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, PubAck, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError, ServiceUnavailableError
from prometheus_client import Counter

from core.errors import Unavailable, VigieError
from core.events import Event, EventCodec, EventDecodeError
from core.logging import get_logger
from core.nats_auth import inbox_prefix, tls_context
from core.settings import Settings

log = get_logger(__name__)

DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_PREFIX = "deadletter"

DEAD_LETTERED = Counter(
    "vigie_bus_dead_lettered_total", "Messages moved to the dead-letter stream", ["stream", "consumer", "reason"]
)
HANDLED = Counter("vigie_bus_handled_total", "Messages handled", ["stream", "consumer", "outcome"])
# The server refused a publish or a subscription of this process: its NATS permissions and its code disagree.
REFUSED = Counter("vigie_bus_permission_violations_total", "Publishes or subscriptions the NATS server refused")
PUBLISH_RETRIES = Counter("vigie_bus_publish_retries_total", "Publishes retried (no stream leader, no ack in time)")

# What a publish meets while a stream elects a new leader or the client reconnects to another node: after a leader's
# kill -9 the first ack came 5-7 s later on a 3-node cluster. The same Nats-Msg-Id is sent again, so a publish the
# old leader had stored is answered as a duplicate, never stored twice.
_TRANSIENT = (NatsTimeoutError, TimeoutError, NoServersError, ConnectionError, ConnectionReconnectingError,
              NoStreamResponseError, ServiceUnavailableError)
# JetStream's answer to a publish whose Nats-Msg-Id an earlier attempt is still storing (a retry that overtook it
# through a leader change, seen in the cluster test): sent again a little later, it is acknowledged as a duplicate.
DUPLICATE_IN_PROCESS = 10158


def _publish_transient(exc: Exception) -> bool:
    return isinstance(exc, _TRANSIENT) or (isinstance(exc, APIError) and exc.err_code == DUPLICATE_IN_PROCESS)


class StreamNotProvisioned(VigieError):
    """A stream this process needs is missing or has fewer replicas than configured: `vigie bus provision` declares
    them; a process never creates or rewrites a stream itself."""


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


DEAD_LETTER_SPEC = StreamSpec(DEAD_LETTER_STREAM, [f"{DEAD_LETTER_PREFIX}.>"], max_age_s=30 * 86400)


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
    # consume_batches: fetches handled at once (their database and network waits overlap).
    inflight_batches: int = 1
    extra: dict[str, object] = field(default_factory=dict)


Handler = Callable[[Event, Msg], Awaitable[None]]
# Takes the events of one fetch; returns, per event and in order, None (ack) or what that event raised.
BatchHandler = Callable[[Sequence[Event]], Awaitable[Sequence[BaseException | None]]]


class Bus:
    """One NATS connection and its JetStream context."""

    def __init__(self, nc: NatsClient, *, replicas: int = 1, publish_retry_s: float = 20.0) -> None:
        self._nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self._replicas = replicas
        # How long a publish keeps retrying through a leader change before it gives up (Unavailable).
        self._publish_retry_s = publish_retry_s

    @classmethod
    async def connect_as(cls, settings: Settings, process: str, *, name: str | None = None,
                         connect_timeout_s: float = 5.0) -> Bus:
        """Connect as one of the platform's processes: its own NATS user (core.nats_auth), password and TLS."""
        user, password = settings.nats_credentials(process)
        # The permissions are the process's (whatever its user is called): so is its reply inbox.
        return await cls.connect(settings.nats.url, name=name or process, replicas=settings.nats.stream_replicas,
                                 publish_retry_s=settings.nats.publish_retry_s,
                                 connect_timeout_s=connect_timeout_s, user=user, password=password,
                                 tls=tls_context(settings.nats.tls_ca_file, settings.nats.tls_cert_file,
                                                 settings.nats.tls_key_file), inbox=inbox_prefix(process))

    @classmethod
    async def connect(cls, url: str, *, name: str, replicas: int = 1, publish_retry_s: float = 20.0,
                      connect_timeout_s: float = 5.0,
                      user: str | None = None, password: str | None = None, tls: ssl.SSLContext | None = None,
                      inbox: str | None = None) -> Bus:
        """Connect with a user and password, or with none (a server's anonymous user: the test harness and the
        benchmarks on the embedded server)."""
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))
            if "permissions violation" in str(exc).lower():
                REFUSED.inc()
            log.warning("nats.error", error=str(exc))

        credentials: dict[str, object] = {}
        if user:
            # Replies come to the user's own inbox prefix, the only subjects its permissions let it subscribe to.
            credentials = {"user": user, "password": password or "", "inbox_prefix": inbox or inbox_prefix(user)}
        if tls is not None:
            credentials["tls"] = tls
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
                    **credentials,
                ),
                timeout=connect_timeout_s * 2,
            )
        except (TimeoutError, NoServersError, OSError, NatsTimeoutError) as exc:
            # A refused password is retried like an absent server: the errors the server gave say which.
            refused = [e for e in errors if "authorization" in e.lower()]
            raise Unavailable(f"NATS unreachable at {url}: {(refused or errors or [str(exc)])[-1]}") from exc
        return cls(nc, replicas=replicas, publish_retry_s=publish_retry_s)

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    async def close(self) -> None:
        await self._nc.close()

    def _stream_config(self, spec: StreamSpec, replicas: int) -> StreamConfig:
        return StreamConfig(
            name=spec.name,
            subjects=spec.subjects,
            retention=spec.retention,
            storage=StorageType.FILE,
            max_age=spec.max_age_s,
            duplicate_window=spec.duplicate_window_s,
            num_replicas=replicas,
        )

    def wanted_replicas(self, spec: StreamSpec) -> int:
        return max(spec.replicas, self._replicas)

    async def provision_stream(self, spec: StreamSpec) -> str:
        """Declare a stream with the configured replicas and limits (`vigie bus provision`, and the embedded, demo
        and test platforms once at start). Never lowers the replicas a stream already has. Returns what was done."""
        wanted = self.wanted_replicas(spec)
        try:
            info = await self.js.stream_info(spec.name)
        except NotFoundError:
            await self.js.add_stream(self._stream_config(spec, wanted))
            return f"{spec.name}: created with {wanted} replica(s)"
        existing = int(info.config.num_replicas or 1)
        replicas = max(existing, wanted)
        await self.js.update_stream(self._stream_config(spec, replicas))
        kept = f" (kept {existing}, more than the {wanted} configured)" if existing > wanted else ""
        return f"{spec.name}: {replicas} replica(s){kept}, limits updated"

    async def provision_dead_letter_stream(self) -> str:
        return await self.provision_stream(DEAD_LETTER_SPEC)

    async def provision_consumer(self, spec: ConsumerSpec) -> str:
        """Declare a durable consumer with its redelivery policy (it has as many replicas as its stream)."""
        await self.js.add_consumer(spec.stream, config=self._consumer_config(spec))
        return f"{spec.stream}/{spec.durable}: declared"

    async def require_stream(self, spec: StreamSpec) -> None:
        """What a process does at start: check that the stream exists with at least the configured replicas.
        It never creates or rewrites one, so a process started with a smaller replica count cannot downgrade it."""
        wanted = self.wanted_replicas(spec)
        try:
            info = await self.js.stream_info(spec.name)
        except NotFoundError as exc:
            raise StreamNotProvisioned(f"stream {spec.name} is missing: run `vigie bus provision` first") from exc
        except (NatsTimeoutError, NoServersError, ConnectionError) as exc:
            raise Unavailable(f"the event bus does not answer: {exc}") from exc
        existing = int(info.config.num_replicas or 1)
        if existing < wanted:
            raise StreamNotProvisioned(f"stream {spec.name} has {existing} replica(s), {wanted} configured: run "
                                       "`vigie bus provision`")
        missing = set(spec.subjects) - set(info.config.subjects or [])
        if missing:
            raise StreamNotProvisioned(f"stream {spec.name} does not take {sorted(missing)}: run "
                                       "`vigie bus provision`")

    async def require_streams(self, specs: Sequence[StreamSpec]) -> None:
        """require_stream for each, and the dead-letter stream every consumer and publisher may need."""
        for spec in (*specs, DEAD_LETTER_SPEC):
            await self.require_stream(spec)

    async def _publish_retrying(self, subject: str, payload: bytes, headers: dict[str, str],
                                timeout_s: float) -> PubAck:
        """One publish, sent again under the same Nats-Msg-Id through a leader change or a reconnection, with a
        growing pause, for at most the bus's publish_retry_s; then Unavailable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_retry_s
        pause = 0.1
        while True:
            try:
                return await self.js.publish(subject, payload, timeout=timeout_s, headers=headers)
            except (*_TRANSIENT, APIError) as exc:
                if not _publish_transient(exc):
                    raise
                left = deadline - loop.time()
                if left <= 0:
                    raise Unavailable(f"publish to {subject} failed: {exc!r}") from exc
                PUBLISH_RETRIES.inc()
                log.info("bus.publish_retry", subject=subject, msg_id=headers.get("Nats-Msg-Id"), error=repr(exc))
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, 2.0)

    async def publish(self, subject: str, event: Event, *, timeout_s: float = 5.0) -> int:
        """Publish one event; returns the stream sequence. A duplicate event_id returns the first sequence."""
        ack = await self._publish_retrying(subject, EventCodec.encode(event), {"Nats-Msg-Id": str(event.event_id)},
                                           timeout_s)
        return int(ack.seq)

    async def publish_encoded(self, subject: str, payload: bytes, *, msg_id: str, timeout_s: float = 5.0,
                              reason: str | None = None) -> PubAck:
        """Publish an already encoded event (an outbox row, a queued detection) under its own Nats-Msg-Id;
        `reason` travels in Vigie-Reason, as on every dead letter (a producer's unencodable event)."""
        headers = {"Nats-Msg-Id": msg_id} if reason is None else {"Nats-Msg-Id": msg_id, "Vigie-Reason": reason[:1000]}
        return await self._publish_retrying(subject, payload, headers, timeout_s)

    async def last_sequence(self, stream: str) -> int | None:
        """The sequence of the stream's last message (0 while it has none), None when there is no such stream."""
        try:
            info = await self.js.stream_info(stream)
        except NotFoundError:
            return None
        except (NatsTimeoutError, NoServersError, ConnectionError) as exc:
            raise Unavailable(f"the event bus does not answer: {exc}") from exc
        return int(info.state.last_seq)

    async def follow(
        self,
        subject: str,
        stream: str,
        on_message: Callable[[Msg], Awaitable[None]],
        *,
        after_sequence: int | None = None,
    ) -> Following:
        """An ordered, ephemeral view of a stream: new messages only, or those after `after_sequence` (a reader
        resuming where it stopped). Nothing is acknowledged and nothing is kept on the server once stopped."""
        resume = after_sequence is not None
        try:
            sub = await self.js.subscribe(
                subject,
                stream=stream,
                cb=on_message,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE if resume else DeliverPolicy.NEW,
                config=ConsumerConfig(opt_start_seq=after_sequence + 1) if after_sequence is not None else None,
            )
        except (NatsTimeoutError, NoServersError, ConnectionError) as exc:
            raise Unavailable(f"cannot follow {stream}: {exc}") from exc
        return Following(sub)

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
        await self._publish_retrying(f"{DEAD_LETTER_PREFIX}.{spec.stream}.{spec.durable}", msg.data, headers, 5.0)
        DEAD_LETTERED.labels(spec.stream, spec.durable, reason.split(":", 1)[0][:60]).inc()
        log.warning("bus.dead_lettered", stream=spec.stream, consumer=spec.durable, seq=seq, reason=reason)
        await msg.term()

    def _consumer_config(self, spec: ConsumerSpec) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=spec.filter_subject,
            # One more delivery than we use ourselves: the last attempt is dead-lettered by us, not dropped.
            max_deliver=spec.max_attempts + spec.max_waits + 1,
            ack_wait=spec.ack_wait_s,
            max_ack_pending=spec.max_ack_pending,
        )

    async def _subscribe(self, spec: ConsumerSpec) -> JetStreamContext.PullSubscription:
        # A durable `vigie bus provision` declared is used as it is; one it did not know (a test's) is created.
        return await self.js.pull_subscribe(spec.filter_subject, durable=spec.durable, stream=spec.stream,
                                            config=self._consumer_config(spec))

    async def _fetch(self, sub: JetStreamContext.PullSubscription, spec: ConsumerSpec) -> list[Msg]:
        """What is already there (up to a batch), else the first message to arrive. Never a wait for a batch to fill:
        nats-py holds the messages of a pull request until `batch` of them came or its timeout passed, so a lone
        message would wait up to that timeout."""
        try:
            try:
                return await sub.fetch(spec.batch, timeout=0.002)
            except (NatsTimeoutError, TimeoutError):
                # nats-py raises either, depending on the batch size, when nothing arrived in time.
                pass
            try:
                return await sub.fetch(1, timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                return []
        except (ConnectionError, NatsError) as exc:
            # A reconnection, or the stream or consumer electing a new leader (no responders, 503): pull again.
            log.warning("bus.fetch_failed", stream=spec.stream, consumer=spec.durable, error=repr(exc))
            await asyncio.sleep(0.5)
            return []

    async def consume(
        self,
        spec: ConsumerSpec,
        codec: EventCodec,
        handler: Handler,
        *,
        stop: asyncio.Event,
    ) -> None:
        """Run a durable pull consumer until `stop` is set; the messages of a fetch are handled concurrently."""
        sub = await self._subscribe(spec)
        try:
            while not stop.is_set():
                messages = await self._fetch(sub, spec)
                await asyncio.gather(*(self._handle(m, spec, codec, handler) for m in messages))
        finally:
            await sub.unsubscribe()

    async def consume_batches(
        self,
        spec: ConsumerSpec,
        codec: EventCodec,
        handler: BatchHandler,
        *,
        stop: asyncio.Event,
    ) -> None:
        """Run a durable pull consumer whose handler takes each fetch whole (one transaction for many events).

        The handler returns one outcome per event, in order: None to ack, or the exception that event would have
        raised alone (Reject, RetryAfter, Retry...), settled exactly as `consume` settles it. An exception escaping
        the handler applies to every event of the fetch.
        """
        sub = await self._subscribe(spec)
        inflight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                if len(inflight) >= max(1, spec.inflight_batches):
                    await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                messages = await self._fetch(sub, spec)
                if messages:
                    task = asyncio.create_task(self._handle_batch(messages, spec, codec, handler))
                    inflight.add(task)
                    task.add_done_callback(lambda t: _batch_finished(t, inflight, spec))
        finally:
            if inflight:
                await asyncio.gather(*inflight, return_exceptions=True)
            await sub.unsubscribe()

    async def _handle_batch(self, messages: list[Msg], spec: ConsumerSpec, codec: EventCodec,
                            handler: BatchHandler) -> None:
        decoded = [(m, e) for m in messages if (e := await self._decode(m, spec, codec)) is not None]
        if not decoded:
            return
        outcomes: Sequence[BaseException | None]
        try:
            outcomes = await handler([e for _, e in decoded])
        except Exception as exc:  # settled per message, like a single handler's failure
            outcomes = [exc] * len(decoded)
        if len(outcomes) != len(decoded):
            outcomes = [RuntimeError(f"batch handler gave {len(outcomes)} outcomes for {len(decoded)} events")] \
                * len(decoded)
        await asyncio.gather(*(self._settle_safely(m, spec, e, o)
                               for (m, e), o in zip(decoded, outcomes, strict=True)))

    async def _decode(self, msg: Msg, spec: ConsumerSpec, codec: EventCodec) -> Event | None:
        try:
            return codec.decode(msg.data)
        except EventDecodeError as exc:
            HANDLED.labels(spec.stream, spec.durable, "rejected").inc()
            await self.dead_letter(msg, spec, f"undecodable: {exc}")
            return None

    async def _handle(self, msg: Msg, spec: ConsumerSpec, codec: EventCodec, handler: Handler) -> None:
        event = await self._decode(msg, spec, codec)
        if event is None:
            return
        try:
            await handler(event, msg)
        except Exception as exc:  # every failure is settled: nak with backoff or dead-letter
            await self._settle_safely(msg, spec, event, exc)
        else:
            await self._settle_safely(msg, spec, event, None)

    async def _settle_safely(self, msg: Msg, spec: ConsumerSpec, event: Event, error: BaseException | None) -> None:
        """`_settle`, where a lost connection or a leader change leaves the message unsettled: the server delivers
        it again after ack_wait (consumers are idempotent), and the consumer keeps running."""
        try:
            await self._settle(msg, spec, event, error)
        except (ConnectionError, NatsError, Unavailable) as exc:
            log.warning("bus.settle_failed", stream=spec.stream, consumer=spec.durable, error=repr(exc),
                        event_id=str(event.event_id))

    async def _settle(self, msg: Msg, spec: ConsumerSpec, event: Event, error: BaseException | None) -> None:
        """Ack, defer, retry with backoff or dead-letter one message, given what handling its event raised."""
        attempt = msg.metadata.num_delivered
        if error is None:
            HANDLED.labels(spec.stream, spec.durable, "acked").inc()
            await msg.ack()
        elif isinstance(error, Reject):
            HANDLED.labels(spec.stream, spec.durable, "rejected").inc()
            await self.dead_letter(msg, spec, f"rejected: {error.reason}")
        elif isinstance(error, RetryAfter):
            if attempt >= spec.max_attempts + spec.max_waits:
                HANDLED.labels(spec.stream, spec.durable, "exhausted").inc()
                await self.dead_letter(msg, spec, f"still not ready after {attempt} deliveries: {error.reason}")
                return
            HANDLED.labels(spec.stream, spec.durable, "deferred").inc()
            log.info("bus.deferred", stream=spec.stream, consumer=spec.durable, attempt=attempt,
                     delay_s=error.delay_s, reason=error.reason, event_id=str(event.event_id))
            await msg.nak(delay=error.delay_s)
        else:
            # Deliveries do not say which earlier ones were waits, so a failure may use the whole budget.
            if attempt >= spec.max_attempts + spec.max_waits:
                HANDLED.labels(spec.stream, spec.durable, "exhausted").inc()
                await self.dead_letter(msg, spec, f"exhausted after {attempt} attempts: {error!r}")
                return
            delay = spec.backoff_s[min(attempt - 1, len(spec.backoff_s) - 1)]
            HANDLED.labels(spec.stream, spec.durable, "retried").inc()
            log.info(
                "bus.retry",
                stream=spec.stream,
                consumer=spec.durable,
                attempt=attempt,
                delay_s=delay,
                error=repr(error),
                event_id=str(event.event_id),
            )
            await msg.nak(delay=delay)


class Following:
    """A running `Bus.follow`; `stop` ends it (safe after the connection closed)."""

    def __init__(self, subscription: JetStreamContext.PushSubscription) -> None:
        self._subscription = subscription

    async def stop(self) -> None:
        # When the process stops, the connection may close before a follower does: its subscription went with it.
        with contextlib.suppress(ConnectionClosedError, NoServersError, ConnectionError):
            await self._subscription.unsubscribe()


def stream_sequence(msg: Msg) -> int:
    """The message's sequence in its stream (a reader's resume point)."""
    return int(msg.metadata.sequence.stream)


def _batch_finished(task: asyncio.Task[None], inflight: set[asyncio.Task[None]], spec: ConsumerSpec) -> None:
    inflight.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        # Settling failed (the connection dropped): unacknowledged messages come back after ack_wait.
        log.warning("bus.batch_failed", stream=spec.stream, consumer=spec.durable, error=repr(error))


def tenant_subject(prefix: str, tenant_id: uuid.UUID, *parts: str) -> str:
    """Subjects carry the tenant right after the prefix, so permissions and filters can scope by tenant."""
    return ".".join([prefix, str(tenant_id), *parts])
