"""All SQL of camera health ($n parameters only); callers pass a connection already scoped or department-wide."""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg

from health.model import DayAvailability, HealthTransition, MaintenanceTicket, Transition, WatcherSignal


class HealthRepository:
    """Reports, current states, history and availability; stateless."""

    async def report(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, camera_id: uuid.UUID,
                     source: str | None, state: str | None, detail: str | None) -> Transition | None:
        """One watcher's report (or, with no source, a re-evaluation); the transition when the state changed."""
        row = await conn.fetchrow("SELECT * FROM camera_health_report($1, $2, $3, $4, $5)",
                                  tenant_id, camera_id, source, state, detail)
        if row is None:
            return None
        return Transition(tenant_id=tenant_id, camera_id=camera_id, from_state=row["from_state"],
                          to_state=row["to_state"], detail=row["detail"])

    async def watched_cameras(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        """Every camera in service: the health watch re-evaluates each (an authorisation ends at midnight)."""
        return list(await conn.fetch("SELECT tenant_id, id AS camera_id FROM cameras WHERE status <> 'disabled' "
                                     "ORDER BY tenant_id, id"))

    async def unpublished(self, conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
        return list(await conn.fetch(
            "SELECT id, tenant_id, camera_id, from_state, to_state, detail, at FROM camera_health_transitions "
            "WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", limit))

    async def mark_published(self, conn: asyncpg.Connection, transition_id: int) -> None:
        await conn.execute("UPDATE camera_health_transitions SET published_at = now() WHERE id = $1", transition_id)

    async def camera_tenant(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> uuid.UUID | None:
        value = await conn.fetchval("SELECT tenant_id FROM cameras WHERE id = $1", camera_id)
        return None if value is None else uuid.UUID(str(value))

    async def current(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT state, since, detail FROM camera_health WHERE camera_id = $1", camera_id)
        return row

    async def signals(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> list[WatcherSignal]:
        rows = await conn.fetch("SELECT source, state, detail, since FROM camera_health_signals WHERE camera_id = $1 "
                                "ORDER BY source", camera_id)
        return [WatcherSignal(**dict(r)) for r in rows]

    async def history(self, conn: asyncpg.Connection, camera_id: uuid.UUID, limit: int) -> list[HealthTransition]:
        rows = await conn.fetch(
            "SELECT at, from_state, to_state, detail FROM camera_health_transitions WHERE camera_id = $1 "
            "ORDER BY at DESC, id DESC LIMIT $2", camera_id, limit)
        return [HealthTransition(**dict(r)) for r in rows]

    async def availability(self, conn: asyncpg.Connection, camera_id: uuid.UUID, since: date,
                           until: date) -> list[DayAvailability]:
        rows = await conn.fetch(
            "SELECT day, observed_s, available_s, availability FROM camera_availability_v "
            "WHERE camera_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day", camera_id, since, until)
        return [DayAvailability(**dict(r)) for r in rows]

    # -- maintenance tickets (migration 0128) ---------------------------------------------------------------------
    async def outages_without_ticket(self, conn: asyncpg.Connection, older_than_s: float) -> list[asyncpg.Record]:
        """Cameras out of order for longer than `older_than_s` with no unresolved ticket, and whom to tell."""
        return list(await conn.fetch(
            "SELECT h.tenant_id, h.camera_id, h.state, h.detail, h.since, c.name AS camera_name, "
            "  t.name AS tenant_name, t.maintainer_email, d.maintenance_email "
            "FROM camera_health h JOIN cameras c ON c.id = h.camera_id AND c.tenant_id = h.tenant_id "
            "JOIN tenants t ON t.id = h.tenant_id JOIN departments d ON d.id = t.department_id "
            "WHERE h.state IN ('offline', 'degraded', 'frozen', 'tampered') AND c.status <> 'disabled' "
            "AND h.since < now() - make_interval(secs => $1) "
            "AND NOT EXISTS (SELECT 1 FROM maintenance_tickets m WHERE m.camera_id = h.camera_id "
            "                AND m.state <> 'resolved')", older_than_s))

    async def open_ticket(self, conn: asyncpg.Connection, ticket_id: uuid.UUID, row: asyncpg.Record) -> bool:
        inserted = await conn.fetchval(
            "INSERT INTO maintenance_tickets (id, tenant_id, camera_id, health_state, detail, outage_since) "
            "VALUES ($1, $2, $3, $4, left($5, 500), $6) ON CONFLICT DO NOTHING RETURNING id",
            ticket_id, row["tenant_id"], row["camera_id"], row["state"], row["detail"], row["since"])
        return inserted is not None

    async def ticket_notified(self, conn: asyncpg.Connection, ticket_id: uuid.UUID, to: list[str],
                              error: str | None) -> None:
        await conn.execute(
            "UPDATE maintenance_tickets SET notified_to = $2, notified_at = CASE WHEN $3::text IS NULL THEN now() END, "
            "notify_error = left($3, 500) WHERE id = $1", ticket_id, to, error)

    async def note_restorations(self, conn: asyncpg.Connection) -> int:
        """Unresolved tickets whose camera is back online get the time it came back (their repair time)."""
        result = await conn.execute(
            "UPDATE maintenance_tickets m SET restored_at = h.since FROM camera_health h "
            "WHERE h.camera_id = m.camera_id AND m.state <> 'resolved' AND m.restored_at IS NULL "
            "AND h.state = 'online' AND h.since >= m.outage_since")
        return int(str(result).rsplit(" ", 1)[-1])

    _TICKET = (
        "SELECT m.id, m.tenant_id, m.camera_id, c.name AS camera_name, m.state, m.health_state, m.detail, "
        "m.outage_since, m.opened_at, m.restored_at, m.notified_to, m.notified_at, m.acknowledged_at, m.resolved_at, "
        "m.resolution_note, extract(epoch FROM coalesce(m.restored_at, m.resolved_at) - m.outage_since)::float8 "
        "AS time_to_repair_s FROM maintenance_tickets m JOIN cameras c ON c.id = m.camera_id "
        "AND c.tenant_id = m.tenant_id ")

    async def tickets(self, conn: asyncpg.Connection, *, state: str | None, camera_id: uuid.UUID | None,
                      limit: int) -> list[MaintenanceTicket]:
        rows = await conn.fetch(
            self._TICKET + "WHERE ($1::text IS NULL OR m.state = $1) AND ($2::uuid IS NULL OR m.camera_id = $2) "
            "ORDER BY m.opened_at DESC, m.id LIMIT $3", state, camera_id, limit)
        return [MaintenanceTicket(**dict(r)) for r in rows]

    async def ticket(self, conn: asyncpg.Connection, ticket_id: uuid.UUID) -> MaintenanceTicket | None:
        row = await conn.fetchrow(self._TICKET + "WHERE m.id = $1", ticket_id)
        return None if row is None else MaintenanceTicket(**dict(row))

    async def acknowledge(self, conn: asyncpg.Connection, ticket_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        result = await conn.execute(
            "UPDATE maintenance_tickets SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2 "
            "WHERE id = $1 AND state = 'open'", ticket_id, user_id)
        return str(result).endswith(" 1")

    async def resolve(self, conn: asyncpg.Connection, ticket_id: uuid.UUID, user_id: uuid.UUID, note: str) -> bool:
        result = await conn.execute(
            "UPDATE maintenance_tickets SET state = 'resolved', resolved_at = now(), resolved_by = $2, "
            "resolution_note = $3, acknowledged_at = coalesce(acknowledged_at, now()), "
            "acknowledged_by = coalesce(acknowledged_by, $2) WHERE id = $1 AND state <> 'resolved'",
            ticket_id, user_id, note)
        return str(result).endswith(" 1")
