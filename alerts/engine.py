"""The alert engine: detection events become alerts, their outbox rows and (auto-dispatch rules) dispatch orders."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import Counter, Histogram

from alerts import planner
from alerts.ingest_repository import AlertIngestRepository
from alerts.model import SourceRow
from alerts.planner import Detection, Plan
from alerts.repository import ALERT_OUTBOX, AlertRepository
from core.bus import Reject, Retry
from core.db import Database
from core.errors import OutOfScope
from core.events import Event
from core.logging import get_logger
from core.outbox import Outbox, OutboxRow
from inference.events import CameraRestored, CameraWentOffline, ObjectDetected, RuleTriggered

log = get_logger(__name__)

EVENTS = Counter("vigie_alerts_events_total", "Detection events the engine settled, by outcome (handled: acked; "
                 "failed: retried or dead-lettered by the consumer)", ["outcome"])
BATCH_SECONDS = Histogram("vigie_alerts_batch_seconds", "Time the engine took to settle one fetched batch",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
_HANDLED, _FAILED = EVENTS.labels("handled"), EVENTS.labels("failed")

# Failures of the database, not of an event (connection lost, server shutting down or starting up, out of
# resources, serialization or deadlock): the whole transaction is retried later, nothing was committed.
_DATABASE_UNAVAILABLE = (asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError,
                         asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError,
                         asyncpg.exceptions.TransactionRollbackError)


class AlertEngine:
    """Consumes detection events. A fetch of rule hits is planned and written in one transaction per department (lock,
    read, write: three round trips); camera health events, and the events of a batch that failed, go one by one
    through the same planner."""

    def __init__(self, db: Database, *, outbox: Outbox = ALERT_OUTBOX, ingest: AlertIngestRepository | None = None,
                 repo: AlertRepository | None = None, on_commit: Callable[[], None] | None = None,
                 publish_committed: Callable[[Sequence[OutboxRow]], None] | None = None,
                 relay_grace_s: float = 5.0) -> None:
        self._db = db
        self._outbox = outbox
        self._ingest = ingest or AlertIngestRepository()
        self._repo = repo or AlertRepository()
        # A tenant never changes department: cached for the life of the process.
        self._departments: dict[uuid.UUID, uuid.UUID] = {}
        # After a commit with outbox rows: wake the relay, or hand the rows over to be published at once, the
        # polling relay only stepping in `relay_grace_s` later if that publish did not happen.
        self._on_commit = on_commit or (lambda: None)
        self._publish_committed = publish_committed
        self._relay_grace = timedelta(seconds=relay_grace_s)

    async def on_event(self, event: Event, _msg: object) -> None:
        """The single-event bus handler: Retry and Reject tell the consumer to nak or dead-letter."""
        await self.handle(event)

    async def on_batch(self, events: Sequence[Event]) -> list[BaseException | None]:
        """The batch bus handler: one outcome per event (None: ack; otherwise what that event raised)."""
        started = time.perf_counter()
        outcomes = await self._settle(events)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        failed = sum(1 for outcome in outcomes if outcome is not None)
        _HANDLED.inc(len(outcomes) - failed)
        _FAILED.inc(failed)
        return outcomes

    async def _settle(self, events: Sequence[Event]) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = [None] * len(events)
        hits = [(i, e) for i, e in enumerate(events) if isinstance(e, RuleTriggered)]
        if hits:
            for i, outcome in zip([i for i, _ in hits], await self._hits([e for _, e in hits]), strict=True):
                outcomes[i] = outcome
        # Camera health events keep their order (offline then restored closes the alert); they are rare.
        for i, event in enumerate(events):
            if isinstance(event, RuleTriggered):
                continue
            outcomes[i] = await self._one(event)
        return outcomes

    async def handle(self, event: Event) -> uuid.UUID | None:
        """One event in its own transaction; returns the alert it went to (None: an event that makes no alert)."""
        if isinstance(event, ObjectDetected):
            return None  # plain detections feed rules in the worker; only rule hits page a human
        if isinstance(event, RuleTriggered | CameraWentOffline):
            return await self._raise(Detection.of(event))
        if isinstance(event, CameraRestored):
            return await self._restored(event)
        raise Reject(f"unexpected event type {type(event).__name__}")

    async def _one(self, event: Event) -> BaseException | None:
        try:
            await self.handle(event)
        except Exception as exc:  # the consumer settles it for this event only (nak, retry or dead-letter)
            return exc
        return None

    async def _hits(self, events: list[RuleTriggered]) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = [None] * len(events)
        try:
            await self._learn_departments({e.tenant_id for e in events})
        except _DATABASE_UNAVAILABLE as exc:
            return [Retry(f"database: {exc}")] * len(events)
        by_department: dict[uuid.UUID, list[int]] = {}
        for i, event in enumerate(events):
            department_id = self._departments.get(event.tenant_id)
            if department_id is None:
                outcomes[i] = Reject(f"unknown tenant {event.tenant_id}")
            else:
                by_department.setdefault(department_id, []).append(i)
        for department_id, indexes in by_department.items():
            group = [events[i] for i in indexes]
            results: list[BaseException | None]
            try:
                # Cameras are checked against the events' tenants by the plan, from the read: no round trip each.
                plan = await self._decide(department_id, [Detection.of(e) for e in group])
                results = [Reject(plan.rejected[j]) if j in plan.rejected else None for j in range(len(group))]
            except _DATABASE_UNAVAILABLE as exc:
                results = [Retry(f"database: {exc}")] * len(group)
            except asyncpg.PostgresError as exc:
                # One bad event fails the whole transaction: handle them one by one to isolate it.
                log.warning("alerts.batch_fallback", events=len(group), error=repr(exc))
                results = [await self._one(e) for e in group]
            for i, outcome in zip(indexes, results, strict=True):
                outcomes[i] = outcome
        return outcomes

    async def _learn_departments(self, tenant_ids: set[uuid.UUID]) -> None:
        unknown = [t for t in tenant_ids if t not in self._departments]
        if unknown:
            async with self._db.for_tenants(unknown, readonly=True) as conn:
                self._departments.update(await self._ingest.departments(conn, unknown))

    async def _raise(self, detection: Detection) -> uuid.UUID | None:
        unknown = Reject(f"unknown camera {detection.camera_id} for tenant {detection.tenant_id}")
        try:
            await self._learn_departments({detection.tenant_id})
            department_id = self._departments.get(detection.tenant_id)
            if department_id is None:
                raise unknown
            plan = await self._decide(department_id, [detection], camera_id=detection.camera_id)
        except OutOfScope as exc:
            raise unknown from exc
        except _DATABASE_UNAVAILABLE as exc:
            raise Retry(f"database: {exc}") from exc
        if plan.rejected:
            raise Reject(plan.rejected[0])
        return plan.alert_ids[0]

    async def _decide(self, department_id: uuid.UUID, detections: list[Detection], *,
                      camera_id: uuid.UUID | None = None) -> Plan:
        """Lock, read, plan and write in one transaction over the detections' tenants and their department."""
        relay_after = self._relay_after()
        tenants = {d.tenant_id for d in detections}
        async with self._db.for_tenants(tenants, department_id=department_id, camera_id=camera_id) as conn:
            # The same lock as every other writer of these cameras' alerts (camera restored included).
            await self._ingest.lock(conn, {(d.camera_id, d.rule_type) for d in detections})
            known = await self._ingest.read(conn, department_id, detections)
            plan = planner.plan(detections, known, now=datetime.now(UTC))
            rows = [self._outbox.row(event) for event in plan.events]
            await self._ingest.write(conn, plan, rows, relay_after)
        self._committed(rows)
        return plan

    async def _restored(self, event: CameraRestored) -> uuid.UUID | None:
        relay_after = self._relay_after()
        try:
            async with self._db.for_tenants([event.tenant_id], camera_id=event.camera_id) as conn:
                await self._ingest.lock(conn, [(event.camera_id, "camera_offline")])
                if not await self._ingest.insert_source(conn, SourceRow(
                        event.tenant_id, event.event_id, type(event).__name__, event.occurred_at, None)):
                    return None
                now = datetime.now(UTC)
                # Nobody needs to act on an outage that ended before anyone picked it up.
                closings = [planner.close_restored(alert, event.offline_for_s, now)
                            for alert in await self._repo.open_offline_alerts(conn, event.camera_id)]
                for closing in closings:
                    await self._repo.update(conn, closing.alert.id, closing.changes)
                    await self._repo.log(conn, tenant_id=closing.alert.tenant_id, alert_id=closing.alert.id,
                                         author_id=None, kind="auto", action="alert.closed", text=closing.text)
                rows = await self._outbox.add(conn, [c.event for c in closings], relay_after=relay_after)
        except OutOfScope as exc:
            raise Reject(f"unknown camera {event.camera_id} for tenant {event.tenant_id}") from exc
        except _DATABASE_UNAVAILABLE as exc:
            raise Retry(f"database: {exc}") from exc
        self._committed(rows)
        return closings[-1].alert.id if closings else None

    def _relay_after(self) -> datetime:
        """When the polling relay may take this transaction's outbox rows: now, unless this process publishes them
        itself right after the commit."""
        now = datetime.now(UTC)
        return now if self._publish_committed is None else now + self._relay_grace

    def _committed(self, rows: Sequence[OutboxRow]) -> None:
        if not rows:
            return
        if self._publish_committed is None:
            self._on_commit()
        else:
            self._publish_committed(rows)
