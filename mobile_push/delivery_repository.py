"""SQL of the push dispatcher: a force's device directory, orders, deliveries, attempts and the channel's alarms."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg


class DeliveryRepository:
    """Queries of the push process; the caller's connection decides the scope (see PushDispatcher)."""

    # --- the directory an order is resolved against (department role: it spans the officers' home tenants)
    async def devices_of_force(
        self, conn: asyncpg.Connection, force_id: uuid.UUID, officer_ids: list[uuid.UUID] | None
    ) -> list[asyncpg.Record]:
        """Live devices of a force's officers who still hold an officer membership in that force."""
        return list(
            await conn.fetch(
                "SELECT d.id, d.tenant_id, d.user_id FROM push_devices d "
                "WHERE d.force_id = $1 AND d.removed_at IS NULL AND ($2::uuid[] IS NULL OR d.user_id = ANY ($2)) "
                "AND EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.user_id = d.user_id "
                "AND m.force_id = d.force_id AND m.role = 'officer' AND u.status = 'active') ORDER BY d.user_id, d.id",
                force_id,
                officer_ids,
            )
        )

    async def force_competent(
        self, conn: asyncpg.Connection, force_id: uuid.UUID, tenant_id: uuid.UUID, camera_id: uuid.UUID
    ) -> bool:
        """The force may act where the camera is: its own commune only for a police municipale (law), the communes
        it covers for a state force or the SDIS."""
        return bool(
            await conn.fetchval(
                "SELECT true FROM forces f JOIN cameras c ON c.id = $3 AND c.tenant_id = $2 "
                "JOIN tenants t ON t.id = c.tenant_id AND t.department_id = f.department_id WHERE f.id = $1 AND "
                "((f.kind = 'police_municipale' AND f.tenant_id = t.id) OR (f.kind <> 'police_municipale' AND "
                "c.insee_code IN (SELECT insee_code FROM force_communes fc WHERE fc.force_id = f.id)))",
                force_id,
                tenant_id,
                camera_id,
            )
        )

    # --- dispatch orders
    async def record_order(self, conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
        """Upsert the dispatch and record the order; False when this event was already consumed."""
        await conn.execute(
            "INSERT INTO push_dispatches (id, tenant_id, alert_id, camera_id, force_id, urgency, ttl_s, "
            "escalation_level, ordered_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) "
            "ON CONFLICT (id) DO UPDATE SET escalation_level = greatest(push_dispatches.escalation_level, "
            "excluded.escalation_level), expires_at = greatest(push_dispatches.expires_at, excluded.expires_at), "
            "urgency = excluded.urgency, ttl_s = excluded.ttl_s",
            values["dispatch_id"],
            values["tenant_id"],
            values["alert_id"],
            values["camera_id"],
            values["force_id"],
            values["urgency"],
            values["ttl_s"],
            values["escalation_level"],
            values["ordered_at"],
            values["expires_at"],
        )
        return bool(
            await conn.fetchval(
                "INSERT INTO push_orders (event_id, tenant_id, dispatch_id, escalation_level, officer_ids) "
                "VALUES ($1,$2,$3,$4,$5) ON CONFLICT (event_id) DO NOTHING RETURNING true",
                values["event_id"],
                values["tenant_id"],
                values["dispatch_id"],
                values["escalation_level"],
                values["officer_ids"],
            )
        )

    async def add_targets(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, dispatch_id: uuid.UUID, user_ids: list[uuid.UUID]
    ) -> None:
        await conn.execute(
            "INSERT INTO push_targets (tenant_id, dispatch_id, user_id) SELECT $1, $2, u FROM unnest($3::uuid[]) u "
            "ON CONFLICT DO NOTHING",
            tenant_id,
            dispatch_id,
            user_ids,
        )

    async def add_deliveries(
        self,
        conn: asyncpg.Connection,
        values: dict[str, Any],
        devices: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]],
    ) -> None:
        """One delivery per (delivery id, device id, officer id) of this order."""
        await conn.execute(
            "INSERT INTO push_deliveries (id, tenant_id, dispatch_id, order_event_id, device_id, user_id) "
            "SELECT d.id, $1, $2, $3, d.device_id, d.user_id FROM unnest($4::uuid[], $5::uuid[], $6::uuid[]) "
            "AS d(id, device_id, user_id) ON CONFLICT (order_event_id, device_id) DO NOTHING",
            values["tenant_id"],
            values["dispatch_id"],
            values["order_event_id"],
            [d[0] for d in devices],
            [d[1] for d in devices],
            [d[2] for d in devices],
        )

    async def claim_due(
        self, conn: asyncpg.Connection, limit: int, *, order_event_id: uuid.UUID | None = None
    ) -> list[asyncpg.Record]:
        """Pending deliveries whose time has come, locked so two senders never send the same one."""
        return list(
            await conn.fetch(
                "SELECT l.id, l.tenant_id, l.dispatch_id, l.device_id, l.user_id, l.attempts, d.alert_id, d.urgency, "
                "d.ttl_s, d.ordered_at, d.expires_at, d.escalation_level, v.tenant_id AS device_tenant_id, v.platform, "
                "v.token_sealed, v.removed_at "
                "FROM push_deliveries l JOIN push_dispatches d ON d.id = l.dispatch_id "
                "JOIN push_devices v ON v.id = l.device_id WHERE l.state = 'pending' AND l.next_attempt_at <= now() "
                "AND ($2::uuid IS NULL OR l.order_event_id = $2) "
                "ORDER BY l.next_attempt_at LIMIT $1 FOR UPDATE OF l SKIP LOCKED",
                limit,
                order_event_id,
            )
        )

    async def lease(self, conn: asyncpg.Connection, delivery_ids: list[uuid.UUID], lease_s: float) -> None:
        await conn.execute(
            "UPDATE push_deliveries SET next_attempt_at = now() + make_interval(secs => $2) WHERE id = ANY ($1)",
            delivery_ids,
            lease_s,
        )

    async def withdraw(self, conn: asyncpg.Connection, dispatch_id: uuid.UUID, reason: str) -> None:
        await conn.execute(
            "UPDATE push_deliveries SET state = 'failed', last_error = 'withdrawn: ' || $2, updated_at = now() "
            "WHERE dispatch_id = $1 AND state = 'pending'",
            dispatch_id,
            reason[:200],
        )

    async def record_attempt(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO push_attempts (id, tenant_id, delivery_id, attempt, started_at, duration_ms, outcome, "
            "error_code, http_status, retry_after_s, detail) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
            values["id"],
            values["tenant_id"],
            values["delivery_id"],
            values["attempt"],
            values["started_at"],
            values["duration_ms"],
            values["outcome"],
            values["error_code"],
            values["http_status"],
            values["retry_after_s"],
            values["detail"],
        )

    async def update_delivery(
        self,
        conn: asyncpg.Connection,
        delivery_id: uuid.UUID,
        *,
        state: str,
        attempts: int,
        delay_s: float,
        message_name: str | None,
        error: str | None,
    ) -> None:
        await conn.execute(
            "UPDATE push_deliveries SET state = $2, attempts = $3, next_attempt_at = now() + make_interval(secs => $4),"
            " message_name = coalesce($5, message_name), last_error = $6, updated_at = now() WHERE id = $1",
            delivery_id,
            state,
            attempts,
            delay_s,
            message_name,
            error,
        )

    async def officer_unreachable(self, conn: asyncpg.Connection, dispatch_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Every delivery of this officer for this dispatch failed (none accepted, none pending)."""
        return bool(
            await conn.fetchval(
                "SELECT count(*) > 0 AND bool_and(state = 'failed') FROM push_deliveries "
                "WHERE dispatch_id = $1 AND user_id = $2",
                dispatch_id,
                user_id,
            )
        )

    async def mark_target_failed(
        self, conn: asyncpg.Connection, dispatch_id: uuid.UUID, user_id: uuid.UUID, reason: str
    ) -> bool:
        return bool(
            await conn.fetchval(
                "UPDATE push_targets SET failed_reason = $3 WHERE dispatch_id = $1 AND user_id = $2 "
                "AND (failed_reason IS DISTINCT FROM $3) RETURNING true",
                dispatch_id,
                user_id,
                reason,
            )
        )

    # --- health alarms of the channel (no tenant owns them)
    async def raise_alarm(self, conn: asyncpg.Connection, alarm_id: uuid.UUID, kind: str, detail: str) -> bool:
        """True when the alarm is new (not an occurrence of one already open)."""
        return bool(
            await conn.fetchval(
                "INSERT INTO push_health_alarms (id, kind, detail) VALUES ($1, $2, $3) "
                "ON CONFLICT (kind) WHERE cleared_at IS NULL DO UPDATE SET occurrences = "
                "push_health_alarms.occurrences + 1, last_seen_at = now(), detail = excluded.detail "
                "RETURNING xmax = 0",
                alarm_id,
                kind,
                detail[:1000],
            )
        )

    async def clear_alarms(self, conn: asyncpg.Connection, kinds: list[str]) -> int:
        result = await conn.execute(
            "UPDATE push_health_alarms SET cleared_at = now() WHERE cleared_at IS NULL AND kind = ANY ($1)", kinds
        )
        return int(result.split()[-1])
