"""SQL of the alert engine's ingest: per transaction, the dedupe locks, one read of everything a plan decides on and
one write of everything it decided (data-modifying CTEs); queries run in the caller's transaction (RLS applies)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from alerts import rules
from alerts.model import AlertRow, DispatchRow, FoldRow, LogbookRow, SourceRow, TimerRow
from alerts.planner import CameraContext, Detection, Known, Plan
from core.outbox import OutboxRow

Columns = tuple[tuple[str, str], ...]


def _columns(row: Any, columns: Columns) -> Columns:
    """(column, type) of a table a plan writes, checked against the row type the planner builds."""
    if row is not None and tuple(c for c, _ in columns) != row._fields:
        raise TypeError(f"{row.__name__} does not match its columns")
    return columns


# Each table's rows go in one INSERT ... SELECT FROM unnest(...), in the order of these fields.
_ALERT_COLUMNS = _columns(AlertRow, (
    ("id", "uuid"), ("tenant_id", "uuid"), ("camera_id", "uuid"), ("site_id", "uuid"), ("insee_code", "text"),
    ("rule_id", "uuid"), ("rule_type", "text"), ("legal_event_type", "text"), ("track_ids", "integer[]"),
    ("severity", "integer"), ("priority", "integer"), ("state", "text"), ("auto_dispatched", "boolean"),
    ("detail", "text"), ("snapshot_key", "text"), ("source_event_id", "uuid"), ("occurrences", "integer"),
    ("first_seen_at", "timestamptz"), ("last_seen_at", "timestamptz"), ("sla_claim_due_at", "timestamptz"),
    ("clip_status", "text"),
))
_HEAD_COLUMNS = _columns(None, (("tenant_id", "uuid"), ("camera_id", "uuid"), ("rule_type", "text"),
                                ("alert_id", "uuid")))
_SOURCE_COLUMNS = _columns(SourceRow, (("tenant_id", "uuid"), ("event_id", "uuid"), ("event_type", "text"),
                                       ("occurred_at", "timestamptz"), ("alert_id", "uuid")))
_DISPATCH_COLUMNS = _columns(DispatchRow, (
    ("id", "uuid"), ("tenant_id", "uuid"), ("alert_id", "uuid"), ("force_id", "uuid"), ("force_kind", "text"),
    ("officer_ids", "uuid[]"), ("urgency", "text"), ("ttl_s", "integer"), ("auto", "boolean"), ("ordered_by", "uuid"),
))
_TIMER_COLUMNS = _columns(TimerRow, (("id", "uuid"), ("tenant_id", "uuid"), ("dispatch_id", "uuid"),
                                     ("alert_id", "uuid"), ("kind", "text"), ("level", "integer"),
                                     ("due_at", "timestamptz")))
_OUTBOX_COLUMNS = _columns(None, (("id", "uuid"), ("tenant_id", "uuid"), ("subject", "text"), ("payload", "bytea"),
                                  ("relay_after", "timestamptz")))
_LOGBOOK_COLUMNS = _columns(LogbookRow, (("id", "uuid"), ("tenant_id", "uuid"), ("alert_id", "uuid"),
                                         ("author_id", "uuid"), ("kind", "text"), ("action", "text"),
                                         ("text", "text")))
_FOLD_COLUMNS = _columns(FoldRow, (("id", "uuid"), ("added", "integer"), ("last_seen", "timestamptz"),
                                   ("tracks", "integer[]")))


def _unnest(columns: Columns, first: int) -> tuple[str, str]:
    """`SELECT <values> FROM unnest(<params>) AS rows(<names>)` with parameters numbered from `first`; array-valued
    columns travel as their text form (unnest would flatten an array of arrays)."""
    params = ", ".join(f"${i}::text[]" if t.endswith("[]") else f"${i}::{t}[]"
                       for i, (_, t) in enumerate(columns, start=first))
    values = ", ".join(f"{c}::{t}" if t.endswith("[]") else c for c, t in columns)
    names = ", ".join(c for c, _ in columns)
    return f"SELECT {values} FROM unnest({params}) AS rows ({names})", names


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


def _write_statement() -> str:
    """Every row of a plan in one statement (one round trip): data-modifying CTEs, foreign keys checked at its end."""
    parts: list[str] = []
    first = 1
    for name, table, columns, suffix in _WRITE_TABLES:
        select, names = _unnest(columns, first)
        first += len(columns)
        parts.append(f"{name} AS (INSERT INTO {table} ({names}) {select}{suffix})")
    fold_select, _ = _unnest(_FOLD_COLUMNS, first)
    parts.append(
        "folded AS (UPDATE alerts SET occurrences = alerts.occurrences + f.added, "
        "last_seen_at = greatest(alerts.last_seen_at, f.last_seen), "
        "track_ids = ARRAY(SELECT DISTINCT unnest(alerts.track_ids || f.tracks) ORDER BY 1), updated_at = now() "
        f"FROM ({fold_select}) AS f WHERE alerts.id = f.id)")
    return "WITH " + ",\n".join(parts) + "\nSELECT 1"


_WRITE = _write_statement()

# Everything a plan decides on, read in one round trip (after the locks): cameras, events already handled,
# policies, the newest alert of each camera and rule, and the forces and routing rules when a rule auto-dispatches.
# Lookups go through LATERAL ... LIMIT 1 (never flattened into a join), one index probe per key: a join may let the
# row-level security predicate (tenant_id = ANY(scope)) drive a scan of every row of the tenants in scope.
# Arrays inside these records travel as comma-separated text: asyncpg decodes an array nested in an anonymous
# record only once that array type was loaded on the connection by some other statement.
_READ = """
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


def _split(text: str | None) -> list[str]:
    return text.split(",") if text else []


def _array_text(values: list[Any]) -> str:
    return "{" + ",".join(str(v) for v in values) + "}"


def _arrays(columns: Columns, rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows turned into one list per column, array-valued columns in their text form."""
    if not rows:
        return [[] for _ in columns]
    arrays: list[list[Any]] = [list(column) for column in zip(*rows, strict=True)]
    for i, (_, kind) in enumerate(columns):
        if kind.endswith("[]"):
            arrays[i] = [None if v is None else _array_text(v) for v in arrays[i]]
    return arrays


class AlertIngestRepository:
    """The engine's reads and writes, a few round trips per transaction whatever the number of events."""

    async def departments(self, conn: asyncpg.Connection, tenant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID,
                                                                                                  uuid.UUID]:
        rows = await conn.fetch("SELECT id, department_id FROM tenants WHERE id = ANY($1::uuid[])", tenant_ids)
        return {r["id"]: r["department_id"] for r in rows}

    async def lock(self, conn: asyncpg.Connection, keys: Iterable[tuple[uuid.UUID, str]]) -> None:
        """Serialise dedupe decisions per (camera, rule type): two transactions must not both raise. Taken in one
        order by every process (no deadlock), in a statement of its own: what follows must read what a transaction
        that held a lock before us committed."""
        await conn.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
            "FROM (SELECT DISTINCT unnest($1::text[]) AS k ORDER BY 1) AS keys",
            [f"{camera_id}:{rule_type}" for camera_id, rule_type in keys])

    async def read(self, conn: asyncpg.Connection, department_id: uuid.UUID,
                   detections: Sequence[Detection]) -> Known:
        keys = sorted({(d.tenant_id, d.camera_id, d.rule_type) for d in detections})
        found = await conn.fetchrow(
            _READ, list({d.camera_id for d in detections}), [d.tenant_id for d in detections],
            [d.event_id for d in detections], department_id, list({k[2] for k in keys}), [k[0] for k in keys],
            [k[1] for k in keys], [k[2] for k in keys])
        assert found is not None
        return Known(
            cameras={r[0]: CameraContext(*r) for r in found["cameras"] or ()},
            seen=frozenset(found["seen"] or ()),
            policies={r[0]: rules.Policy(*r) for r in found["policies"] or ()},
            recent={(r[0], r[1]): rules.Recent(r[2], r[3], frozenset(int(t) for t in _split(r[4])), r[5], r[6])
                    for r in found["recent"] or ()},
            forces=[rules.ForceRef(r[0], r[1], r[2], r[3], frozenset(_split(r[5])), r[4])
                    for r in found["forces"] or ()],
            routing=[rules.RoutingRule(*r) for r in found["routing"] or ()],
        )

    async def write(self, conn: asyncpg.Connection, plan: Plan, outbox: Sequence[OutboxRow],
                    relay_after: datetime) -> None:
        """The plan's rows in one statement; its outbox rows wait for the relay until `relay_after`."""
        rows: dict[str, Sequence[tuple[Any, ...]]] = {
            "alerts": list(plan.alerts.values()),
            # The last alert raised per camera and rule (one row each: an upsert may not touch a row twice).
            "alert_heads": list({(a.tenant_id, a.camera_id, a.rule_type): (a.tenant_id, a.camera_id, a.rule_type, a.id)
                                 for a in plan.alerts.values()}.values()),
            "alert_sources": plan.sources, "dispatches": plan.dispatches, "escalation_timers": plan.timers,
            "alert_outbox": [(r.id, r.tenant_id, r.subject, r.payload, relay_after) for r in outbox],
            "logbook_entries": plan.logbook,
        }
        arguments: list[list[Any]] = []
        for _, table, columns, _ in _WRITE_TABLES:
            arguments.extend(_arrays(columns, rows[table]))
        arguments.extend(_arrays(_FOLD_COLUMNS, list(plan.folds.values())))
        await conn.execute(_WRITE, *arguments)

    async def insert_source(self, conn: asyncpg.Connection, source: SourceRow) -> bool:
        """False when the event was handled before."""
        return bool(await conn.fetchval(
            "INSERT INTO alert_sources (tenant_id, event_id, event_type, occurred_at, alert_id) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true", *source))
