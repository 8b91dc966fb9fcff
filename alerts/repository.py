"""SQL of the alerts domain; queries run in the caller's transaction (RLS applies, except for the department role)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from alerts.events import subject_for
from alerts.model import (
    Alert,
    Dispatch,
    DispatchRow,
    Handover,
    LogbookEntry,
    PolicyRecord,
    PrecisionRow,
    ResponderStatus,
    RoutingRuleRecord,
    SopStep,
    TimerRow,
)
from alerts.rules import ForceRef, RoutingRule
from core.ids import new_id
from core.outbox import Outbox

# Every alert event is written here in the transaction of its change; core.outbox's relay publishes it.
ALERT_OUTBOX = Outbox("alert_outbox", subject_for)

_ALERT = (
    "id, tenant_id, camera_id, site_id, insee_code, rule_id, rule_type, legal_event_type, severity, priority, state, "
    "detail, snapshot_key, clip_id, clip_status, occurrences, first_seen_at, last_seen_at, raised_at, "
    "sla_claim_due_at, "
    "claimed_by, claimed_at, verified_by, verified_at, verdict, dismissed_reason, outcome, closed_at, auto_dispatched, "
    "call_force_prompt_at"
)
_DISPATCH = (
    "id, tenant_id, alert_id, force_id, force_kind, officer_ids, urgency, ttl_s, escalation_level, status, auto, "
    "ordered_by, ordered_at, delivered_at, acknowledged_at, closed_at, call_force_prompt_at"
)
_LOGBOOK = "id, tenant_id, alert_id, author_id, kind, action, text, created_at"
# Columns an update may set: the service names them, never the client.
_ALERT_UPDATABLE = frozenset({
    "state", "claimed_by", "claimed_at", "verified_by", "verified_at", "verdict", "dismissed_reason", "outcome",
    "closed_by", "closed_at", "auto_dispatched", "call_force_prompt_at", "clip_id", "clip_status",
})


def _alert(r: asyncpg.Record) -> Alert:
    return Alert(**dict(r))


def _dispatch(r: asyncpg.Record) -> Dispatch:
    data = dict(r)
    data["officer_ids"] = list(data["officer_ids"])
    return Dispatch(**data)


class AlertRepository:
    """All SQL of alerts, $n parameters only."""

    # --- policies --------------------------------------------------------------------------------------------

    async def policies(self, conn: asyncpg.Connection) -> list[PolicyRecord]:
        rows = await conn.fetch(
            "SELECT rule_type, severity, dedupe_window_s, cooldown_s, sla_claim_s, auto_dispatch FROM alert_policies "
            "ORDER BY rule_type"
        )
        return [PolicyRecord(**dict(r)) for r in rows]

    async def upsert_policy(self, conn: asyncpg.Connection, department_id: uuid.UUID, policy: PolicyRecord,
                            set_by: uuid.UUID) -> None:
        await conn.execute(
            "INSERT INTO alert_policies (id, department_id, rule_type, severity, dedupe_window_s, cooldown_s, "
            "sla_claim_s, auto_dispatch, auto_dispatch_set_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (department_id, rule_type) DO UPDATE SET severity = excluded.severity, "
            "dedupe_window_s = excluded.dedupe_window_s, cooldown_s = excluded.cooldown_s, "
            "sla_claim_s = excluded.sla_claim_s, auto_dispatch = excluded.auto_dispatch, "
            "auto_dispatch_set_by = excluded.auto_dispatch_set_by, updated_at = now()",
            uuid.uuid4(), department_id, policy.rule_type, policy.severity, policy.dedupe_window_s,
            policy.cooldown_s, policy.sla_claim_s, policy.auto_dispatch, set_by,
        )

    # --- operator workflow ------------------------------------------------------------------------------------

    async def get(self, conn: asyncpg.Connection, alert_id: uuid.UUID, *, for_update: bool = False) -> Alert | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn.fetchrow(f"SELECT {_ALERT} FROM alerts WHERE id = $1{lock}", alert_id)
        return None if row is None else _alert(row)

    async def update(self, conn: asyncpg.Connection, alert_id: uuid.UUID, changes: dict[str, Any]) -> Alert:
        unknown = set(changes) - _ALERT_UPDATABLE
        assert not unknown, unknown
        sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
        row = await conn.fetchrow(
            f"UPDATE alerts SET {sets}, updated_at = now() WHERE id = $1 RETURNING {_ALERT}",
            alert_id, *changes.values(),
        )
        assert row is not None
        return _alert(row)

    async def open_offline_alerts(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> list[Alert]:
        rows = await conn.fetch(
            f"SELECT {_ALERT} FROM alerts WHERE camera_id = $1 AND rule_type = 'camera_offline' "
            "AND state IN ('new', 'claimed')", camera_id)
        return [_alert(r) for r in rows]

    async def camera_of(self, conn: asyncpg.Connection, alert_id: uuid.UUID) -> uuid.UUID | None:
        camera_id: uuid.UUID | None = await conn.fetchval("SELECT camera_id FROM alerts WHERE id = $1", alert_id)
        return camera_id

    async def queue(self, conn: asyncpg.Connection, *, states: list[str], tenant_id: uuid.UUID | None,
                    after: uuid.UUID | None, limit: int, force_id: uuid.UUID | None) -> list[Alert]:
        """Open alerts by id (time-ordered UUIDv7) for stable cursors; an officer sees only their force's."""
        rows = await conn.fetch(
            f"SELECT {_ALERT} FROM alerts a WHERE state = ANY($1::text[]) AND ($2::uuid IS NULL OR tenant_id = $2) "
            "AND ($3::uuid IS NULL OR id < $3) AND ($5::uuid IS NULL OR EXISTS (SELECT 1 FROM dispatches d "
            "WHERE d.alert_id = a.id AND d.force_id = $5)) ORDER BY id DESC LIMIT $4",
            states, tenant_id, after, limit, force_id,
        )
        return [_alert(r) for r in rows]

    async def dispatched_to(self, conn: asyncpg.Connection, alert_id: uuid.UUID, force_id: uuid.UUID) -> bool:
        return bool(await conn.fetchval(
            "SELECT true FROM dispatches WHERE alert_id = $1 AND force_id = $2", alert_id, force_id))

    async def sop_steps(self, conn: asyncpg.Connection, alert_id: uuid.UUID) -> dict[str, asyncpg.Record]:
        rows = await conn.fetch("SELECT step, done_by, done_at, note FROM alert_sop_steps WHERE alert_id = $1",
                                alert_id)
        return {r["step"]: r for r in rows}

    async def insert_sop_step(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, alert_id: uuid.UUID, step: str,
                              done_by: uuid.UUID, note: str | None) -> bool:
        return bool(await conn.fetchval(
            "INSERT INTO alert_sop_steps (tenant_id, alert_id, step, done_by, note) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT DO NOTHING RETURNING true",
            tenant_id, alert_id, step, done_by, note,
        ))

    # --- dispatches and responders -----------------------------------------------------------------------------

    async def forces(self, conn: asyncpg.Connection) -> list[ForceRef]:
        rows = await conn.fetch(
            "SELECT f.id, f.kind, f.name, f.tenant_id, f.phone, coalesce((SELECT array_agg(fc.insee_code) "
            "FROM force_communes fc WHERE fc.force_id = f.id), '{}') AS communes FROM forces f ORDER BY f.name"
        )
        return [ForceRef(r["id"], r["kind"], r["name"], r["tenant_id"], frozenset(r["communes"]), r["phone"])
                for r in rows]

    async def routing_rules(self, conn: asyncpg.Connection) -> list[RoutingRuleRecord]:
        rows = await conn.fetch(
            "SELECT id, insee_code, event_type, start_minute, end_minute, force_id, effect, note FROM routing_rules "
            "ORDER BY created_at, id")
        return [RoutingRuleRecord(**dict(r)) for r in rows]

    @staticmethod
    def as_rules(records: list[RoutingRuleRecord]) -> list[RoutingRule]:
        return [RoutingRule(r.insee_code, r.event_type, r.start_minute, r.end_minute, r.force_id, r.effect)
                for r in records]

    async def municipal_police_opt_in(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> bool:
        return bool(await conn.fetchval("SELECT municipal_police_opt_in FROM tenants WHERE id = $1", tenant_id))

    async def commune_exists(self, conn: asyncpg.Connection, insee_code: str) -> bool:
        return bool(await conn.fetchval("SELECT true FROM communes WHERE insee_code = $1", insee_code))

    async def insert_routing_rule(self, conn: asyncpg.Connection, values: dict[str, Any]) -> RoutingRuleRecord:
        columns = ", ".join(values)
        params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        row = await conn.fetchrow(
            f"INSERT INTO routing_rules ({columns}) VALUES ({params}) RETURNING id, insee_code, event_type, "
            "start_minute, end_minute, force_id, effect, note", *values.values())
        assert row is not None
        return RoutingRuleRecord(**dict(row))

    async def delete_routing_rule(self, conn: asyncpg.Connection, rule_id: uuid.UUID) -> bool:
        return bool(await conn.fetchval("DELETE FROM routing_rules WHERE id = $1 RETURNING true", rule_id))

    async def insert_dispatch(self, conn: asyncpg.Connection, row: DispatchRow) -> Dispatch | None:
        """None when this force was already sent this alert (unique key)."""
        params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
        inserted = await conn.fetchrow(
            f"INSERT INTO dispatches ({', '.join(DispatchRow._fields)}) VALUES ({params}) "
            f"ON CONFLICT (alert_id, force_id) DO NOTHING RETURNING {_DISPATCH}", *row)
        return None if inserted is None else _dispatch(inserted)

    async def dispatches(self, conn: asyncpg.Connection, alert_id: uuid.UUID) -> list[Dispatch]:
        rows = await conn.fetch(f"SELECT {_DISPATCH} FROM dispatches WHERE alert_id = $1 ORDER BY ordered_at",
                                alert_id)
        return [_dispatch(r) for r in rows]

    async def dispatch(self, conn: asyncpg.Connection, dispatch_id: uuid.UUID, *,
                       for_update: bool = False) -> Dispatch | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn.fetchrow(f"SELECT {_DISPATCH} FROM dispatches WHERE id = $1{lock}", dispatch_id)
        return None if row is None else _dispatch(row)

    async def update_dispatch(self, conn: asyncpg.Connection, dispatch_id: uuid.UUID, status: str | None, *,
                              officer_ids: list[uuid.UUID] | None = None, level: int | None = None,
                              prompt: bool = False) -> None:
        await conn.execute(
            "UPDATE dispatches SET status = coalesce($2, status), officer_ids = coalesce($3, officer_ids), "
            "escalation_level = coalesce($4, escalation_level), "
            "delivered_at = CASE WHEN $2 = 'delivered' AND delivered_at IS NULL THEN now() ELSE delivered_at END, "
            "acknowledged_at = CASE WHEN $2 IN ('acknowledged', 'en_route', 'on_scene') AND acknowledged_at IS NULL "
            "THEN now() ELSE acknowledged_at END, "
            "closed_at = CASE WHEN $2 IN ('closed', 'withdrawn') AND closed_at IS NULL THEN now() ELSE closed_at END, "
            "call_force_prompt_at = CASE WHEN $5 THEN coalesce(call_force_prompt_at, now()) "
            "ELSE call_force_prompt_at END WHERE id = $1",
            dispatch_id, status, officer_ids, level, prompt,
        )

    async def insert_responder_status(self, conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
        columns = ", ".join(values)
        params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        return bool(await conn.fetchval(
            f"INSERT INTO responder_statuses ({columns}) VALUES ({params}) ON CONFLICT DO NOTHING RETURNING true",
            *values.values()))

    async def responder_statuses(self, conn: asyncpg.Connection, alert_id: uuid.UUID) -> list[ResponderStatus]:
        rows = await conn.fetch(
            "SELECT dispatch_id, officer_id, device_id, status, occurred_at FROM responder_statuses "
            "WHERE alert_id = $1 ORDER BY occurred_at", alert_id)
        return [ResponderStatus(**dict(r)) for r in rows]

    async def officers_of_force(self, conn: asyncpg.Connection, force_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await conn.fetch(
            "SELECT user_id FROM memberships WHERE force_id = $1 AND role = 'officer' ORDER BY created_at, user_id",
            force_id)
        return [r["user_id"] for r in rows]

    # --- escalation timers -------------------------------------------------------------------------------------

    async def insert_timers(self, conn: asyncpg.Connection, rows: Sequence[TimerRow]) -> None:
        await conn.executemany(
            "INSERT INTO escalation_timers (id, tenant_id, dispatch_id, alert_id, kind, level, due_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dispatch_id, kind, level) DO NOTHING", rows)

    async def cancel_timers(self, conn: asyncpg.Connection, dispatch_id: uuid.UUID, kinds: list[str]) -> None:
        await conn.execute(
            "UPDATE escalation_timers SET cancelled_at = now() WHERE dispatch_id = $1 AND kind = ANY($2::text[]) "
            "AND fired_at IS NULL AND cancelled_at IS NULL", dispatch_id, kinds)

    async def cancel_alert_timers(self, conn: asyncpg.Connection, alert_id: uuid.UUID) -> None:
        await conn.execute(
            "UPDATE escalation_timers SET cancelled_at = now() WHERE alert_id = $1 AND fired_at IS NULL "
            "AND cancelled_at IS NULL", alert_id)

    async def due_timers(self, conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
        return await conn.fetch(
            "SELECT id, tenant_id, dispatch_id, alert_id, kind, level FROM escalation_timers WHERE fired_at IS NULL "
            "AND cancelled_at IS NULL AND due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED", limit)

    async def mark_fired(self, conn: asyncpg.Connection, timer_id: uuid.UUID) -> None:
        await conn.execute("UPDATE escalation_timers SET fired_at = now() WHERE id = $1", timer_id)

    # --- main courante ---------------------------------------------------------------------------------------

    async def log(self, conn: asyncpg.Connection, *, tenant_id: uuid.UUID, alert_id: uuid.UUID | None,
                  author_id: uuid.UUID | None, kind: str, action: str, text: str) -> LogbookEntry:
        row = await conn.fetchrow(
            f"INSERT INTO logbook_entries (id, tenant_id, alert_id, author_id, kind, action, text) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_LOGBOOK}",
            # Time-ordered ids: the main courante lists and pages by id, newest first.
            new_id(), tenant_id, alert_id, author_id, kind, action, text[:4000],
        )
        assert row is not None
        return LogbookEntry(**dict(row))

    async def logbook(self, conn: asyncpg.Connection, *, since: datetime, until: datetime,
                      before: uuid.UUID | None, limit: int, search: str | None = None) -> list[LogbookEntry]:
        # The words searched are matched literally: % and _ typed by an operator are not wildcards.
        pattern = None if search is None else "%" + re.sub(r"([\\%_])", r"\\\1", search) + "%"
        rows = await conn.fetch(
            f"SELECT {_LOGBOOK} FROM logbook_entries WHERE created_at >= $1 AND created_at < $2 "
            "AND ($3::uuid IS NULL OR id < $3) "
            "AND ($5::text IS NULL OR text ILIKE $5 ESCAPE '\\' OR action ILIKE $5 ESCAPE '\\') "
            "ORDER BY id DESC LIMIT $4",
            since, until, before, limit, pattern)
        return [LogbookEntry(**dict(r)) for r in rows]

    async def shift_summary(self, conn: asyncpg.Connection, since: datetime, until: datetime) -> dict[str, object]:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE raised_at >= $1 AND raised_at < $2) AS raised, "
            "count(*) FILTER (WHERE state = 'dismissed' AND updated_at >= $1) AS dismissed, "
            "count(*) FILTER (WHERE state = 'closed' AND closed_at >= $1) AS closed, "
            "count(*) FILTER (WHERE state NOT IN ('dismissed', 'closed')) AS still_open, "
            "count(*) FILTER (WHERE state = 'dispatched') AS dispatched_open, "
            "count(*) FILTER (WHERE verdict = 'true_positive' AND updated_at >= $1) AS true_positives, "
            "count(*) FILTER (WHERE verdict = 'false_positive' AND updated_at >= $1) AS false_positives "
            "FROM alerts", since, until)
        assert row is not None
        open_rows = await conn.fetch(
            "SELECT id, rule_type, state, severity FROM alerts WHERE state NOT IN ('dismissed', 'closed') "
            "ORDER BY priority DESC, raised_at LIMIT 50")
        free = await conn.fetchval(
            "SELECT count(*) FROM logbook_entries WHERE kind = 'free' AND created_at >= $1 AND created_at < $2",
            since, until)
        return {**{k: int(v) for k, v in dict(row).items()}, "free_entries": int(free or 0),
                "open_alerts": [{"id": str(r["id"]), "rule_type": r["rule_type"], "state": r["state"],
                                 "severity": r["severity"]} for r in open_rows]}

    async def insert_handover(self, conn: asyncpg.Connection, values: dict[str, Any]) -> Handover:
        row = await conn.fetchrow(
            "INSERT INTO shift_handovers (id, tenant_id, author_id, period_start, period_end, summary, notes) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, tenant_id, author_id, period_start, period_end, "
            "summary, notes, created_at",
            values["id"], values["tenant_id"], values["author_id"], values["period_start"], values["period_end"],
            msgspec.json.encode(values["summary"]).decode(), values["notes"])
        assert row is not None
        data = dict(row)
        data["summary"] = msgspec.json.decode(data["summary"])
        return Handover(**data)

    async def handovers(self, conn: asyncpg.Connection, limit: int) -> list[Handover]:
        rows = await conn.fetch(
            "SELECT id, tenant_id, author_id, period_start, period_end, summary, notes, created_at "
            "FROM shift_handovers ORDER BY created_at DESC LIMIT $1", limit)
        result = []
        for r in rows:
            data = dict(r)
            data["summary"] = msgspec.json.decode(data["summary"])
            result.append(Handover(**data))
        return result

    # --- SLA and evaluation ------------------------------------------------------------------------------------

    async def sla_breaches(self, conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
        return await conn.fetch(
            "SELECT id AS alert_id, tenant_id, rule_type, severity, raised_at, sla_claim_due_at AS due_at, "
            "extract(epoch FROM now() - sla_claim_due_at) AS overdue_s, 'unclaimed' AS kind FROM alerts "
            "WHERE state = 'new' AND sla_claim_due_at < now() "
            "UNION ALL SELECT a.id, a.tenant_id, a.rule_type, a.severity, a.raised_at, d.call_force_prompt_at, "
            "extract(epoch FROM now() - d.call_force_prompt_at), 'force_unacknowledged' FROM dispatches d "
            "JOIN alerts a ON a.id = d.alert_id WHERE d.call_force_prompt_at IS NOT NULL "
            "AND d.acknowledged_at IS NULL AND d.status NOT IN ('closed', 'withdrawn') "
            "ORDER BY overdue_s DESC LIMIT $1", limit)

    async def precision(self, conn: asyncpg.Connection, group_by: str, since: datetime) -> list[PrecisionRow]:
        key = {"rule": "rule_type", "camera": "camera_id::text", "commune": "insee_code",
               "event_type": "coalesce(legal_event_type, rule_type)"}[group_by]
        rows = await conn.fetch(
            f"SELECT {key} AS key, count(*) FILTER (WHERE verdict = 'true_positive') AS tp, "
            "count(*) FILTER (WHERE verdict = 'false_positive') AS fp, count(*) FILTER (WHERE verdict IS NULL) AS nj "
            f"FROM alerts WHERE raised_at >= $1 GROUP BY 1 ORDER BY 1", since)
        return [PrecisionRow(key=r["key"], true_positives=r["tp"], false_positives=r["fp"], unjudged=r["nj"],
                             precision=(r["tp"] / (r["tp"] + r["fp"])) if r["tp"] + r["fp"] else None)
                for r in rows]

    async def sop_rows(self, conn: asyncpg.Connection, alert_id: uuid.UUID, steps: tuple[str, ...]) -> list[SopStep]:
        done = await self.sop_steps(conn, alert_id)
        listed = [SopStep(step=s, done_by=done[s]["done_by"] if s in done else None,
                          done_at=done[s]["done_at"] if s in done else None,
                          note=done[s]["note"] if s in done else None) for s in steps]
        extra = [SopStep(step=s, done_by=r["done_by"], done_at=r["done_at"], note=r["note"])
                 for s, r in done.items() if s not in steps]
        return listed + extra

    async def expedite_timers(self, conn: asyncpg.Connection, dispatch_id: uuid.UUID, kind: str) -> None:
        await conn.execute(
            "UPDATE escalation_timers SET due_at = least(due_at, now()) WHERE dispatch_id = $1 AND kind = $2 "
            "AND fired_at IS NULL AND cancelled_at IS NULL", dispatch_id, kind)

    async def prompt_call(self, conn: asyncpg.Connection, alert_id: uuid.UUID) -> None:
        await conn.execute(
            "UPDATE alerts SET call_force_prompt_at = coalesce(call_force_prompt_at, now()), updated_at = now() "
            "WHERE id = $1", alert_id)
