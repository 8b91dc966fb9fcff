"""The alert engine: detection events become alerts, their outbox rows and (auto-dispatch rules) dispatch orders."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from alerts import rules
from alerts.events import AlertRaised, AlertState, AlertStateChanged, DispatchOrdered, Urgency, subject_for
from alerts.outbox import OutboxRow
from alerts.repository import AlertRepository
from alerts.service import TIMEZONE, create_dispatch
from core.bus import Reject, Retry
from core.db import tenant_transaction
from core.events import Event, EventCodec
from core.ids import new_id
from core.logging import get_logger
from inference.events import CameraRestored, CameraWentOffline, ObjectDetected, RuleTriggered

log = get_logger(__name__)

# Failures of the database, not of an event (connection lost, server shutting down or starting up, out of
# resources, serialization or deadlock): the whole transaction is retried later, nothing was committed.
_DATABASE_UNAVAILABLE = (asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError,
                      asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError,
                      asyncpg.exceptions.TransactionRollbackError)

# (column, type) of every table a batch writes; each table's rows go in one INSERT ... SELECT FROM unnest(...).
_ALERT_COLUMNS = (
    ("id", "uuid"), ("tenant_id", "uuid"), ("camera_id", "uuid"), ("site_id", "uuid"), ("insee_code", "text"),
    ("rule_id", "uuid"), ("rule_type", "text"), ("legal_event_type", "text"), ("track_ids", "integer[]"),
    ("severity", "integer"), ("priority", "integer"), ("state", "text"), ("auto_dispatched", "boolean"),
    ("detail", "text"), ("snapshot_key", "text"), ("source_event_id", "uuid"), ("occurrences", "integer"),
    ("first_seen_at", "timestamptz"), ("last_seen_at", "timestamptz"), ("sla_claim_due_at", "timestamptz"),
    ("clip_status", "text"),
)
_SOURCE_COLUMNS = (("tenant_id", "uuid"), ("event_id", "uuid"), ("event_type", "text"), ("occurred_at", "timestamptz"),
                   ("alert_id", "uuid"))
_DISPATCH_COLUMNS = (("id", "uuid"), ("tenant_id", "uuid"), ("alert_id", "uuid"), ("force_id", "uuid"),
                     ("force_kind", "text"), ("officer_ids", "uuid[]"), ("urgency", "text"), ("ttl_s", "integer"),
                     ("auto", "boolean"), ("ordered_by", "uuid"))
_TIMER_COLUMNS = (("id", "uuid"), ("tenant_id", "uuid"), ("dispatch_id", "uuid"), ("alert_id", "uuid"),
                  ("kind", "text"), ("level", "integer"), ("due_at", "timestamptz"))
_OUTBOX_COLUMNS = (("id", "uuid"), ("tenant_id", "uuid"), ("subject", "text"), ("payload", "bytea"),
                   ("relay_after", "timestamptz"))
_LOGBOOK_COLUMNS = (("id", "uuid"), ("tenant_id", "uuid"), ("alert_id", "uuid"), ("author_id", "uuid"),
                    ("kind", "text"), ("action", "text"), ("text", "text"))


_HEAD_COLUMNS = (("tenant_id", "uuid"), ("camera_id", "uuid"), ("rule_type", "text"), ("alert_id", "uuid"))
_FOLD_COLUMNS = (("id", "uuid"), ("added", "integer"), ("last_seen", "timestamptz"), ("tracks", "integer[]"))


def _unnest(columns: tuple[tuple[str, str], ...], first: int) -> tuple[str, str]:
    """`SELECT <values> FROM unnest(<params>) AS rows(<names>)` with parameters numbered from `first`; array-valued
    columns travel as their text form (unnest would flatten an array of arrays)."""
    params = ", ".join(f"${i}::text[]" if t.endswith("[]") else f"${i}::{t}[]"
                       for i, (_, t) in enumerate(columns, start=first))
    values = ", ".join(f"{c}::{t}" if t.endswith("[]") else c for c, t in columns)
    names = ", ".join(c for c, _ in columns)
    return f"SELECT {values} FROM unnest({params}) AS rows ({names})", names  # noqa: S608 - constant names


def _write_statement() -> str:
    """Every row of a batch in one statement (one round trip): data-modifying CTEs, foreign keys checked at its end."""
    parts: list[str] = []
    first = 1
    for name, table, columns, suffix in _WRITE_TABLES:
        select, names = _unnest(columns, first)
        first += len(columns)
        parts.append(f"{name} AS (INSERT INTO {table} ({names}) {select}{suffix})")
    fold_select, _ = _unnest(_FOLD_COLUMNS, first)
    parts.append(
        "folded AS (UPDATE alerts SET occurrences = alerts.occurrences + f.added, "  # noqa: S608 - constants
        "last_seen_at = greatest(alerts.last_seen_at, f.last_seen), "
        "track_ids = ARRAY(SELECT DISTINCT unnest(alerts.track_ids || f.tracks) ORDER BY 1), updated_at = now() "
        f"FROM ({fold_select}) AS f WHERE alerts.id = f.id)")
    return "WITH " + ",\n".join(parts) + "\nSELECT 1"


_WRITE_TABLES = (
    ("new_alerts", "alerts", _ALERT_COLUMNS, ""),
    ("new_heads", "alert_heads", _HEAD_COLUMNS,
     " ON CONFLICT (tenant_id, camera_id, rule_type) DO UPDATE SET alert_id = excluded.alert_id"),
    ("new_sources", "alert_sources", _SOURCE_COLUMNS, " ON CONFLICT DO NOTHING"),
    ("new_dispatches", "dispatches", _DISPATCH_COLUMNS, ""),
    ("new_timers", "escalation_timers", _TIMER_COLUMNS, " ON CONFLICT (dispatch_id, kind, level) DO NOTHING"),
    ("new_outbox", "alert_outbox", _OUTBOX_COLUMNS, ""),
    ("new_logbook", "logbook_entries", _LOGBOOK_COLUMNS, ""),
)
_WRITE = _write_statement()


def _split(text: str | None) -> list[str]:
    return text.split(",") if text else []


def _array_text(values: list[Any]) -> str:
    return "{" + ",".join(str(v) for v in values) + "}"


def _columns(columns: tuple[tuple[str, str], ...], rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows turned into one list per column, array-valued columns in their text form."""
    if not rows:
        return [[] for _ in columns]
    arrays: list[list[Any]] = [list(column) for column in zip(*rows, strict=True)]
    for i, (_, kind) in enumerate(columns):
        if kind.endswith("[]"):
            arrays[i] = [None if v is None else _array_text(v) for v in arrays[i]]
    return arrays


class _Camera(NamedTuple):
    id: uuid.UUID
    tenant_id: uuid.UUID
    site_id: uuid.UUID
    insee_code: str
    site_kind: str | None
    municipal_police_opt_in: bool


# Everything a batch decides on, read in one round trip (after the locks): cameras, events already handled,
# policies, the newest alert of each camera and rule, and the forces and routing rules when a rule auto-dispatches.
# Lookups go through LATERAL ... LIMIT 1 (never flattened into a join), one index probe per key: a join may let the
# row-level security predicate (tenant_id = ANY(scope)) drive a scan of every row of the tenants in scope.
# Arrays inside these records travel as comma-separated text: asyncpg decodes an array nested in an anonymous
# record only once that array type was loaded on the connection by some other statement.
_BATCH_STATE = """
SELECT
  (SELECT array_agg((c.id, c.tenant_id, c.site_id, c.insee_code, s.kind, t.municipal_police_opt_in))
     FROM cameras c JOIN sites s ON s.id = c.site_id JOIN tenants t ON t.id = c.tenant_id
    WHERE c.id = ANY($1::uuid[])) AS cameras,
  (SELECT array_agg(s.event_id) FROM unnest($2::uuid[], $3::uuid[]) AS e(tenant_id, event_id)
     CROSS JOIN LATERAL (SELECT event_id FROM alert_sources
                          WHERE tenant_id = e.tenant_id AND event_id = e.event_id LIMIT 1) AS s) AS seen,
  (SELECT array_agg((rule_type, severity, dedupe_window_s, cooldown_s, sla_claim_s, auto_dispatch))
     FROM alert_policies WHERE department_id = $4 AND rule_type = ANY($5::text[])) AS policies,
  (SELECT array_agg((k.camera_id, k.rule_type, a.id, a.state, array_to_string(a.track_ids, ','),
                     a.first_seen_at, a.last_seen_at))
     FROM unnest($6::uuid[], $7::uuid[], $8::text[]) AS k(tenant_id, camera_id, rule_type)
     CROSS JOIN LATERAL (SELECT alert_id FROM alert_heads
                          WHERE tenant_id = k.tenant_id AND camera_id = k.camera_id AND rule_type = k.rule_type
                          LIMIT 1) AS h
     CROSS JOIN LATERAL (SELECT id, state, track_ids, first_seen_at, last_seen_at FROM alerts
                          WHERE id = h.alert_id LIMIT 1) AS a) AS recent,
  (SELECT array_agg((f.id, f.kind, f.name, f.tenant_id, f.phone,
                     (SELECT string_agg(fc.insee_code, ',') FROM force_communes fc WHERE fc.force_id = f.id))
                    ORDER BY f.name)
     FROM forces f WHERE EXISTS (SELECT 1 FROM alert_policies WHERE department_id = $4
                                  AND rule_type = ANY($5::text[]) AND auto_dispatch)) AS forces,
  (SELECT array_agg((r.insee_code, r.event_type, r.start_minute, r.end_minute, r.force_id, r.effect)
                    ORDER BY r.created_at, r.id)
     FROM routing_rules r WHERE EXISTS (SELECT 1 FROM alert_policies WHERE department_id = $4
                                         AND rule_type = ANY($5::text[]) AND auto_dispatch)) AS routing
"""


@dataclass
class _Writes:
    """Rows one batch transaction writes, each table in one pipelined statement."""

    sources: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    folds: dict[uuid.UUID, tuple[int, datetime, set[int]]] = field(default_factory=dict)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    logbook: list[tuple[Any, ...]] = field(default_factory=list)
    dispatches: list[tuple[Any, ...]] = field(default_factory=list)
    timers: list[tuple[Any, ...]] = field(default_factory=list)

    # When the relay may take these rows (now, unless this process publishes them itself right after the commit).
    relay_after: datetime = field(default_factory=lambda: datetime.now(UTC))

    def enqueue(self, event: Event) -> None:
        self.outbox.append((event.event_id, event.tenant_id, subject_for(event), EventCodec.encode(event),
                            self.relay_after))

    def committed(self) -> list[OutboxRow]:
        return [(row_id, subject, payload) for row_id, _, subject, payload, _ in self.outbox]

    def log(self, tenant_id: uuid.UUID, alert_id: uuid.UUID, action: str, text: str) -> None:
        self.logbook.append((new_id(), tenant_id, alert_id, None, "auto", action, text[:4000]))


class AlertEngine:
    """Consumes detection events. A fetch of rule hits is handled in one transaction per department (the rows of
    each table in one pipelined statement); camera health events and anything a batch cannot take go one by one."""

    def __init__(self, pool: asyncpg.Pool, *, repo: AlertRepository | None = None,
                 on_commit: Callable[[], None] | None = None,
                 publish_committed: Callable[[list[OutboxRow]], None] | None = None,
                 relay_grace_s: float = 5.0) -> None:
        self._pool = pool
        self._repo = repo or AlertRepository()
        # A tenant never changes department: cached for the life of the process.
        self._departments: dict[uuid.UUID, uuid.UUID] = {}
        # After a commit with outbox rows: wake the relay, or (batches) hand the rows over to be published at once,
        # the polling relay only stepping in `relay_grace_s` later if that publish did not happen.
        self._on_commit = on_commit or (lambda: None)
        self._publish_committed = publish_committed
        self._relay_grace = timedelta(seconds=relay_grace_s)

    async def on_event(self, event: Event, _msg: object) -> None:
        """The single-event bus handler: Retry and Reject tell the consumer to nak or dead-letter."""
        await self.handle(event)

    async def on_batch(self, events: Sequence[Event]) -> list[BaseException | None]:
        """The batch bus handler: one outcome per event (None: ack; otherwise what that event raised)."""
        outcomes: list[BaseException | None] = [None] * len(events)
        hits = [(i, e) for i, e in enumerate(events) if isinstance(e, RuleTriggered)]
        if hits:
            for i, outcome in zip([i for i, _ in hits], await self._hits([e for _, e in hits]), strict=True):
                outcomes[i] = outcome
        # Camera health events keep their order (offline then restored closes the alert); they are rare.
        for i, event in enumerate(events):
            if isinstance(event, RuleTriggered):
                continue
            try:
                await self.handle(event)
            except Exception as exc:  # the consumer settles it (nak, retry or dead-letter)
                outcomes[i] = exc
        return outcomes

    async def handle(self, event: Event) -> uuid.UUID | None:
        """One event in its own transaction; returns the alert it went to (None: an event that makes no alert)."""
        if isinstance(event, ObjectDetected):
            return None  # plain detections feed rules in the worker; only rule hits page a human
        if isinstance(event, RuleTriggered):
            return await self._raise(event, event.camera_id, event.rule_type, event.legal_event_type,
                                     list(event.track_ids), event.rule_id, event.detail, event.snapshot_key)
        if isinstance(event, CameraWentOffline):
            return await self._raise(event, event.camera_id, "camera_offline", None, [], None,
                                     f"camera offline: {event.reason}", None)
        if isinstance(event, CameraRestored):
            return await self._restored(event)
        raise Reject(f"unexpected event type {type(event).__name__}")

    # --- batches ---------------------------------------------------------------------------------------------

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
            try:
                results = await self._batch(department_id, group)
            except _DATABASE_UNAVAILABLE as exc:
                results = [Retry(f"database: {exc}")] * len(group)
            except asyncpg.PostgresError as exc:
                # One bad event fails the whole transaction: handle them one by one to isolate it.
                log.warning("alerts.batch_fallback", events=len(group), error=repr(exc))
                results = [await self._one(e) for e in group]
            for i, outcome in zip(indexes, results, strict=True):
                outcomes[i] = outcome
        return outcomes

    async def _one(self, event: RuleTriggered) -> BaseException | None:
        try:
            await self.handle(event)
        except Exception as exc:  # reported to the consumer for this event only
            return exc
        return None

    async def _learn_departments(self, tenant_ids: set[uuid.UUID]) -> None:
        unknown = [t for t in tenant_ids if t not in self._departments]
        if not unknown:
            return
        async with tenant_transaction(self._pool, unknown, readonly=True) as conn:
            rows = await conn.fetch("SELECT id, department_id FROM tenants WHERE id = ANY($1::uuid[])", unknown)
        self._departments.update({r["id"]: r["department_id"] for r in rows})

    async def _batch(self, department_id: uuid.UUID, events: list[RuleTriggered]) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = [None] * len(events)
        writes = _Writes()
        if self._publish_committed is not None:
            writes.relay_after = datetime.now(UTC) + self._relay_grace
        tenants = list({e.tenant_id for e in events})
        keys = sorted({(e.tenant_id, e.camera_id, e.rule_type) for e in events})
        async with tenant_transaction(self._pool, tenants, department_id=department_id) as conn:
            # The same lock as one-by-one handling, taken in one order by every process: no deadlock. Its own
            # statement: what follows must read what a transaction that held the lock before us committed.
            await conn.execute(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
                "FROM (SELECT DISTINCT unnest($1::text[]) AS k ORDER BY 1) AS keys",
                [f"{camera_id}:{rule_type}" for _, camera_id, rule_type in keys])
            found = await conn.fetchrow(
                _BATCH_STATE, list({e.camera_id for e in events}), [e.tenant_id for e in events],
                [e.event_id for e in events],
                department_id, list({k[2] for k in keys}), [k[0] for k in keys], [k[1] for k in keys],
                [k[2] for k in keys])
            assert found is not None
            cameras = {r[0]: _Camera(*r) for r in found["cameras"] or ()}
            seen = set(found["seen"] or ())
            stored = {r[0]: rules.Policy(*r) for r in found["policies"] or ()}
            recent = {(r[0], r[1]): rules.Recent(r[2], r[3], frozenset(int(t) for t in _split(r[4])), r[5], r[6])
                      for r in found["recent"] or ()}
            forces = [rules.ForceRef(r[0], r[1], r[2], r[3], frozenset(_split(r[5])), r[4])
                      for r in found["forces"] or ()]
            routing = [rules.RoutingRule(*r) for r in found["routing"] or ()]
            live: list[int] = []
            for i, event in enumerate(events):
                camera = cameras.get(event.camera_id)
                if camera is None or camera.tenant_id != event.tenant_id:
                    # RLS scoped to the events' tenants: an unknown camera and another tenant's look the same.
                    outcomes[i] = Reject(f"unknown camera {event.camera_id} for tenant {event.tenant_id}")
                else:
                    live.append(i)
            local = datetime.now(TIMEZONE)
            now = datetime.now(UTC)
            for i in live:
                event = events[i]
                if event.event_id in seen:
                    continue  # redelivery of an event already turned into (or folded into) an alert
                seen.add(event.event_id)
                policy = stored.get(event.rule_type) or rules.default_policy(event.rule_type)
                key = (event.camera_id, event.rule_type)
                tracks = frozenset(event.track_ids)
                target = rules.fold_into(recent.get(key), tracks, event.occurred_at, policy)
                alert_id = target or new_id()
                writes.sources.append((event.tenant_id, event.event_id, type(event).__name__, event.occurred_at,
                                       alert_id))
                if target is not None:
                    self._fold(writes, recent, key, target, tracks, event.occurred_at)
                    continue
                camera = cameras[event.camera_id]
                auto = policy.auto_dispatch and event.rule_type not in rules.NON_DISPATCHABLE
                state = AlertState.DISPATCHED if auto else AlertState.NEW
                priority = rules.priority_for(policy.severity, camera.site_kind)
                writes.alerts[alert_id] = {
                    "id": alert_id, "tenant_id": event.tenant_id, "camera_id": event.camera_id,
                    "site_id": camera.site_id, "insee_code": camera.insee_code, "rule_id": event.rule_id,
                    "rule_type": event.rule_type, "legal_event_type": event.legal_event_type,
                    "track_ids": sorted(tracks), "severity": policy.severity, "priority": priority,
                    "state": state.value, "auto_dispatched": auto, "detail": event.detail[:2000],
                    "snapshot_key": event.snapshot_key, "source_event_id": event.event_id, "occurrences": 1,
                    "first_seen_at": event.occurred_at, "last_seen_at": event.occurred_at,
                    "sla_claim_due_at": now + timedelta(seconds=policy.sla_claim_s), "clip_status": "pending",
                }
                recent[key] = rules.Recent(alert_id, state.value, tracks, event.occurred_at, event.occurred_at)
                writes.enqueue(AlertRaised(
                    event_id=new_id(), tenant_id=event.tenant_id, alert_id=alert_id, camera_id=event.camera_id,
                    site_id=camera.site_id, insee_code=camera.insee_code, rule_id=event.rule_id,
                    rule_type=event.rule_type, legal_event_type=event.legal_event_type, severity=policy.severity,
                    priority=priority, source_event_id=event.event_id, snapshot_key=event.snapshot_key,
                    first_seen_at=event.occurred_at))
                writes.log(event.tenant_id, alert_id, "alert.raised", f"Signalement d'attention {event.rule_type} "
                           f"(gravité {policy.severity}) caméra {event.camera_id}")
                if auto:
                    # Written right after its AlertRaised: the outbox keeps each alert's events in order.
                    self._dispatch_in_batch(writes, camera, alert_id, event, policy.severity, forces, routing,
                                            local)
            await self._write(conn, writes)
        if self._publish_committed is None:
            self._on_commit()
        else:
            self._publish_committed(writes.committed())
        return outcomes

    @staticmethod
    def _fold(writes: _Writes, recent: dict[tuple[uuid.UUID, str], rules.Recent], key: tuple[uuid.UUID, str],
              target: uuid.UUID, tracks: frozenset[int], at: datetime) -> None:
        """Adds an occurrence to an alert: in its insert row when this batch raised it, else as an update."""
        before = recent[key]
        recent[key] = rules.Recent(target, before.state, before.track_ids | tracks, before.raised_at,
                                   max(before.last_seen_at, at))
        fresh = writes.alerts.get(target)
        if fresh is not None:
            fresh["occurrences"] += 1
            fresh["last_seen_at"] = max(fresh["last_seen_at"], at)
            fresh["track_ids"] = sorted(set(fresh["track_ids"]) | tracks)
            return
        count, last, merged = writes.folds.get(target, (0, at, set()))
        writes.folds[target] = (count + 1, max(last, at), merged | tracks)

    @staticmethod
    def _dispatch_in_batch(writes: _Writes, camera: _Camera, alert_id: uuid.UUID, event: RuleTriggered, severity: int,
                           forces: list[rules.ForceRef], routing: list[rules.RoutingRule], local: datetime) -> None:
        """A rule a department admin marked auto-dispatch: sent without human verification, recorded as such."""
        now = datetime.now(UTC)
        chosen = rules.route(insee_code=camera.insee_code, event_type=event.legal_event_type or event.rule_type,
                             tenant_id=event.tenant_id, municipal_police_opt_in=camera.municipal_police_opt_in,
                             local_minute=local.hour * 60 + local.minute, forces=forces, rules=routing)
        writes.enqueue(AlertStateChanged(
            event_id=new_id(), tenant_id=event.tenant_id, alert_id=alert_id, camera_id=event.camera_id,
            from_state=AlertState.NEW, to_state=AlertState.DISPATCHED, reason="auto_dispatch"))
        urgency = rules.urgency_for(severity)
        for force in chosen:
            dispatch_id = new_id()
            writes.dispatches.append((dispatch_id, event.tenant_id, alert_id, force.id, force.kind, [], urgency,
                                      300, True, None))
            writes.enqueue(DispatchOrdered(
                event_id=new_id(), tenant_id=event.tenant_id, dispatch_id=dispatch_id, alert_id=alert_id,
                camera_id=event.camera_id, force_id=force.id, force_kind=force.kind,  # type: ignore[arg-type]
                officer_ids=(), urgency=Urgency(urgency), ttl_s=300, escalation_level=0, auto=True))
            writes.timers.append((new_id(), event.tenant_id, dispatch_id, alert_id, "receipt", 0,
                                  now + timedelta(seconds=rules.RECEIPT_TIMEOUT_S)))
            writes.timers.append((new_id(), event.tenant_id, dispatch_id, alert_id, "acknowledgement", 0,
                                  now + timedelta(seconds=rules.ACK_TIMEOUT_S)))
        writes.log(event.tenant_id, alert_id, "alert.auto_dispatched",
                   f"Envoi automatique (règle {event.rule_type} marquée auto-dispatch) à "
                   f"{', '.join(f.name for f in chosen) or 'aucune force'}")

    @staticmethod
    async def _write(conn: asyncpg.Connection, writes: _Writes) -> None:
        rows = {
            "alerts": [tuple(row[c] for c, _ in _ALERT_COLUMNS) for row in writes.alerts.values()],
            # The last alert raised per camera and rule (one row each: an upsert may not touch a row twice).
            "alert_heads": list({(r["tenant_id"], r["camera_id"], r["rule_type"]): (r["tenant_id"], r["camera_id"],
                                                                                 r["rule_type"], r["id"])
                                 for r in writes.alerts.values()}.values()),
            "alert_sources": writes.sources, "dispatches": writes.dispatches, "escalation_timers": writes.timers,
            "alert_outbox": writes.outbox, "logbook_entries": writes.logbook,
        }
        arguments: list[list[Any]] = []
        for _, table, columns, _ in _WRITE_TABLES:
            arguments.extend(_columns(columns, rows[table]))
        arguments.extend(_columns(_FOLD_COLUMNS, [(alert_id, count, last, sorted(tracks))
                                                  for alert_id, (count, last, tracks) in writes.folds.items()]))
        await conn.execute(_WRITE, *arguments)

    # --- one event at a time (camera health, and the fallback of a failed batch) ------------------------------

    async def _context(self, conn: asyncpg.Connection, event: Event, camera_id: uuid.UUID) -> asyncpg.Record:
        camera = await self._repo.camera_context(conn, camera_id)
        if camera is None or camera["tenant_id"] != event.tenant_id:
            # RLS scoped to the event's tenant: an unknown camera and a camera of another tenant look the same.
            raise Reject(f"unknown camera {camera_id} for tenant {event.tenant_id}")
        return camera

    async def _raise(self, event: Event, camera_id: uuid.UUID, rule_type: str, legal_event_type: str | None,
                     track_ids: list[int], rule_id: uuid.UUID | None, detail: str,
                     snapshot_key: str | None) -> uuid.UUID | None:
        # What this transaction is opened with: events handled concurrently share the cache, and one of them filling
        # it must not make another skip setting the scope its own transaction lacks (policies would be unseen).
        scoped = self._departments.get(event.tenant_id)
        try:
            async with tenant_transaction(self._pool, [event.tenant_id], department_id=scoped) as conn:
                camera = await self._context(conn, event, camera_id)
                department_id = camera["department_id"]
                if scoped != department_id:
                    # First event of this tenant: the department directory (policies) needs its scope set.
                    self._departments[event.tenant_id] = department_id
                    await conn.execute("SELECT set_config('app.department_id', $1, true)", str(department_id))
                await self._repo.lock_camera_rule(conn, camera_id, rule_type)
                if await self._repo.source_seen(conn, event.tenant_id, event.event_id):
                    return None  # redelivery of an event already turned into (or folded into) an alert
                stored = await self._repo.policy(conn, department_id, rule_type)
                policy = rules.default_policy(rule_type) if stored is None else rules.Policy(
                    rule_type, stored.severity, stored.dedupe_window_s, stored.cooldown_s, stored.sla_claim_s,
                    stored.auto_dispatch)
                recent = await self._repo.recent(conn, event.tenant_id, camera_id, rule_type)
                target = rules.fold_into(recent, frozenset(track_ids), event.occurred_at, policy)
                alert_id = target or new_id()
                await self._repo.insert_source_linked(conn, event.tenant_id, event.event_id, type(event).__name__,
                                                      event.occurred_at, alert_id)
                if target is not None:
                    await self._repo.fold(conn, target, track_ids, event.occurred_at)
                    return target
                now = datetime.now(UTC)
                severity = policy.severity
                priority = rules.priority_for(severity, camera["site_kind"])
                await self._repo.insert_alert(conn, {
                    "id": alert_id, "tenant_id": event.tenant_id, "camera_id": camera_id, "site_id": camera["site_id"],
                    "insee_code": camera["insee_code"], "rule_id": rule_id, "rule_type": rule_type,
                    "legal_event_type": legal_event_type, "track_ids": sorted(set(track_ids)), "severity": severity,
                    "priority": priority, "detail": detail[:2000], "snapshot_key": snapshot_key,
                    "source_event_id": event.event_id, "first_seen_at": event.occurred_at,
                    "last_seen_at": event.occurred_at, "sla_claim_due_at": now + timedelta(seconds=policy.sla_claim_s),
                    "clip_status": "unavailable" if rule_type == "camera_offline" else "pending",
                })
                raised = AlertRaised(
                    event_id=new_id(), tenant_id=event.tenant_id, alert_id=alert_id, camera_id=camera_id,
                    site_id=camera["site_id"], insee_code=camera["insee_code"], rule_id=rule_id, rule_type=rule_type,
                    legal_event_type=legal_event_type, severity=severity, priority=priority,
                    source_event_id=event.event_id, snapshot_key=snapshot_key, first_seen_at=event.occurred_at)
                await self._repo.enqueue(conn, raised)
                await self._repo.log(conn, tenant_id=event.tenant_id, alert_id=alert_id, author_id=None, kind="auto",
                                     action="alert.raised", text=f"Signalement d'attention {rule_type} "
                                     f"(gravité {severity}) caméra {camera_id}")
                if policy.auto_dispatch and rule_type not in rules.NON_DISPATCHABLE:
                    await self._auto_dispatch(conn, alert_id, camera, rule_type, legal_event_type, severity)
        except _DATABASE_UNAVAILABLE as exc:
            raise Retry(f"database: {exc}") from exc
        self._on_commit()
        return alert_id

    async def _auto_dispatch(self, conn: asyncpg.Connection, alert_id: uuid.UUID, camera: asyncpg.Record,
                             rule_type: str, legal_event_type: str | None, severity: int) -> None:
        """A rule a department admin marked auto-dispatch: sent without human verification, recorded as such."""
        forces = await self._repo.forces(conn)
        routing = AlertRepository.as_rules(await self._repo.routing_rules(conn))
        local = datetime.now(TIMEZONE)
        chosen = rules.route(insee_code=camera["insee_code"], event_type=legal_event_type or rule_type,
                             tenant_id=camera["tenant_id"], municipal_police_opt_in=camera["municipal_police_opt_in"],
                             local_minute=local.hour * 60 + local.minute, forces=forces, rules=routing)
        alert = await self._repo.get(conn, alert_id, for_update=True)
        assert alert is not None
        await self._repo.update(conn, alert_id, {"state": AlertState.DISPATCHED.value, "auto_dispatched": True})
        await self._repo.enqueue(conn, AlertStateChanged(
            event_id=new_id(), tenant_id=alert.tenant_id, alert_id=alert_id, camera_id=alert.camera_id,
            from_state=AlertState.NEW, to_state=AlertState.DISPATCHED, reason="auto_dispatch"))
        for force in chosen:
            await create_dispatch(self._repo, conn, alert, force, officer_ids=[], urgency=rules.urgency_for(severity),
                                  ttl_s=300, ordered_by=None, auto=True)
        await self._repo.log(conn, tenant_id=alert.tenant_id, alert_id=alert_id, author_id=None, kind="auto",
                             action="alert.auto_dispatched",
                             text=f"Envoi automatique (règle {rule_type} marquée auto-dispatch) à "
                                  f"{', '.join(f.name for f in chosen) or 'aucune force'}")

    async def _restored(self, event: CameraRestored) -> uuid.UUID | None:
        try:
            async with tenant_transaction(self._pool, [event.tenant_id]) as conn:
                await self._context(conn, event, event.camera_id)
                await self._repo.lock_camera_rule(conn, event.camera_id, "camera_offline")
                if not await self._repo.insert_source_linked(conn, event.tenant_id, event.event_id,
                                                             type(event).__name__, event.occurred_at, None):
                    return None
                closed = None
                for alert in await self._repo.open_offline_alerts(conn, event.camera_id):
                    # Nobody needs to act on an outage that ended before anyone picked it up.
                    await self._repo.update(conn, alert.id, {"state": AlertState.CLOSED.value,
                                                             "outcome": "camera_restored",
                                                             "closed_at": datetime.now(UTC)})
                    await self._repo.enqueue(conn, AlertStateChanged(
                        event_id=new_id(), tenant_id=alert.tenant_id, alert_id=alert.id, camera_id=alert.camera_id,
                        from_state=AlertState(alert.state), to_state=AlertState.CLOSED, reason="camera_restored"))
                    await self._repo.log(conn, tenant_id=alert.tenant_id, alert_id=alert.id, author_id=None,
                                         kind="auto", action="alert.closed",
                                         text=f"Caméra rétablie après {event.offline_for_s:.0f} s")
                    closed = alert.id
        except _DATABASE_UNAVAILABLE as exc:
            raise Retry(f"database: {exc}") from exc
        self._on_commit()
        return closed
