"""All SQL of the push domain: devices, dispatches, deliveries, attempts, receipts, outbox, health alarms."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from mobile_push.events import ResponderStatus
from mobile_push.model import Attempt, HealthAlarm, ResponderState

_DEVICE = (
    "id, tenant_id, user_id, force_id, platform, app_version, registered_at, token_refreshed_at, last_seen_at, "
    "removed_at, removed_reason"
)


class PushRepository:
    """Every query of mobile_push; RLS applies whenever the connection is the app role's."""

    # --- devices
    async def insert_device(self, conn: asyncpg.Connection, values: dict[str, Any]) -> asyncpg.Record:
        row = await conn.fetchrow(
            "INSERT INTO push_devices (id, tenant_id, user_id, force_id, platform, token_sealed, token_hash, "
            f"app_version) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING {_DEVICE}",
            values["id"],
            values["tenant_id"],
            values["user_id"],
            values["force_id"],
            values["platform"],
            values["token_sealed"],
            values["token_hash"],
            values["app_version"],
        )
        assert row is not None
        return row

    async def live_token_exists(self, conn: asyncpg.Connection, token_hash: bytes) -> bool:
        """Seen through the department role: a token registered in another tenant is a duplicate too."""
        return bool(
            await conn.fetchval(
                "SELECT true FROM push_devices WHERE token_hash = $1 AND removed_at IS NULL", token_hash
            )
        )

    async def device(
        self, conn: asyncpg.Connection, device_id: uuid.UUID, *, lock: bool = False
    ) -> asyncpg.Record | None:
        return await conn.fetchrow(
            f"SELECT {_DEVICE} FROM push_devices WHERE id = $1{' FOR UPDATE' if lock else ''}", device_id
        )

    async def devices(
        self, conn: asyncpg.Connection, *, user_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
    ) -> list[asyncpg.Record]:
        return list(
            await conn.fetch(
                f"SELECT {_DEVICE} FROM push_devices WHERE ($1::uuid IS NULL OR user_id = $1) "
                "AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
                user_id,
                after,
                limit,
            )
        )

    async def replace_token(
        self, conn: asyncpg.Connection, device_id: uuid.UUID, sealed: bytes, token_hash: bytes
    ) -> asyncpg.Record:
        row = await conn.fetchrow(
            "UPDATE push_devices SET token_sealed = $2, token_hash = $3, token_refreshed_at = now(), "
            f"last_seen_at = now() WHERE id = $1 RETURNING {_DEVICE}",
            device_id,
            sealed,
            token_hash,
        )
        assert row is not None
        return row

    async def touch_device(self, conn: asyncpg.Connection, device_id: uuid.UUID) -> asyncpg.Record:
        row = await conn.fetchrow(
            f"UPDATE push_devices SET last_seen_at = now() WHERE id = $1 RETURNING {_DEVICE}", device_id
        )
        assert row is not None
        return row

    async def remove_device(self, conn: asyncpg.Connection, device_id: uuid.UUID, reason: str) -> bool:
        return bool(
            await conn.fetchval(
                "UPDATE push_devices SET removed_at = now(), removed_reason = $2 "
                "WHERE id = $1 AND removed_at IS NULL RETURNING true",
                device_id,
                reason,
            )
        )

    async def devices_of_force(
        self, conn: asyncpg.Connection, force_id: uuid.UUID, officer_ids: list[uuid.UUID] | None
    ) -> list[asyncpg.Record]:
        """Live devices of a force's officers who still hold an officer membership in that force."""
        return list(
            await conn.fetch(
                "SELECT d.id, d.tenant_id, d.user_id, d.platform, d.token_sealed, d.last_seen_at FROM push_devices d "
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

    async def target_tenant(
        self, conn: asyncpg.Connection, dispatch_id: uuid.UUID, user_id: uuid.UUID
    ) -> uuid.UUID | None:
        """The tenant of a dispatch sent to this officer (None when it was not sent to them)."""
        value = await conn.fetchval(
            "SELECT tenant_id FROM push_targets WHERE dispatch_id = $1 AND user_id = $2", dispatch_id, user_id
        )
        return None if value is None else uuid.UUID(str(value))

    async def target_tenants_for_alert(
        self, conn: asyncpg.Connection, alert_id: uuid.UUID, user_id: uuid.UUID
    ) -> list[uuid.UUID]:
        rows = await conn.fetch(
            "SELECT DISTINCT t.tenant_id FROM push_targets t JOIN push_dispatches d ON d.id = t.dispatch_id "
            "WHERE d.alert_id = $1 AND t.user_id = $2",
            alert_id,
            user_id,
        )
        return [r["tenant_id"] for r in rows]

    async def recent_target_tenants(self, conn: asyncpg.Connection, user_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
        rows = await conn.fetch(
            "SELECT DISTINCT tenant_id FROM (SELECT t.tenant_id FROM push_targets t JOIN push_dispatches d "
            "ON d.id = t.dispatch_id WHERE t.user_id = $1 ORDER BY d.ordered_at DESC LIMIT $2) recent",
            user_id,
            limit,
        )
        return [r["tenant_id"] for r in rows]

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

    async def add_target(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, dispatch_id: uuid.UUID, user_id: uuid.UUID
    ) -> None:
        await conn.execute(
            "INSERT INTO push_targets (tenant_id, dispatch_id, user_id) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
            tenant_id,
            dispatch_id,
            user_id,
        )

    async def add_delivery(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO push_deliveries (id, tenant_id, dispatch_id, order_event_id, device_id, user_id) "
            "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (order_event_id, device_id) DO NOTHING",
            values["id"],
            values["tenant_id"],
            values["dispatch_id"],
            values["order_event_id"],
            values["device_id"],
            values["user_id"],
        )

    async def claim_due(
        self, conn: asyncpg.Connection, limit: int, *, order_event_id: uuid.UUID | None = None
    ) -> list[asyncpg.Record]:
        """Pending deliveries whose time has come, locked so two senders never send the same one."""
        return list(
            await conn.fetch(
                "SELECT l.id, l.tenant_id, l.dispatch_id, l.device_id, l.user_id, l.attempts, d.alert_id, d.urgency, "
                "d.ttl_s, d.ordered_at, d.expires_at, d.escalation_level, v.platform, v.token_sealed, v.removed_at "
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

    async def next_due_in(self, conn: asyncpg.Connection) -> float | None:
        value = await conn.fetchval(
            "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM push_deliveries WHERE state = 'pending'"
        )
        return None if value is None else float(value)

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

    # --- what officers and operators read
    async def dispatch_for_officer(
        self,
        conn: asyncpg.Connection,
        *,
        user_id: uuid.UUID,
        dispatch_id: uuid.UUID | None,
        alert_id: uuid.UUID | None,
        limit: int,
    ) -> list[asyncpg.Record]:
        return list(
            await conn.fetch(
                "SELECT d.id AS dispatch_id, d.alert_id, d.tenant_id, d.force_id, d.urgency, d.escalation_level, "
                "d.ordered_at, d.expires_at, d.camera_id, c.name AS camera_name, s.name AS site_name, c.insee_code, "
                "c.latitude, c.longitude, t.status AS my_status FROM push_targets t "
                "JOIN push_dispatches d ON d.id = t.dispatch_id "
                "LEFT JOIN cameras c ON c.id = d.camera_id LEFT JOIN sites s ON s.id = c.site_id "
                "WHERE t.user_id = $1 AND ($2::uuid IS NULL OR d.id = $2) AND ($3::uuid IS NULL OR d.alert_id = $3) "
                "ORDER BY d.ordered_at DESC LIMIT $4",
                user_id,
                dispatch_id,
                alert_id,
                limit,
            )
        )

    async def target(
        self, conn: asyncpg.Connection, dispatch_id: uuid.UUID, user_id: uuid.UUID
    ) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT t.tenant_id, t.status, d.alert_id FROM push_targets t JOIN push_dispatches d "
            "ON d.id = t.dispatch_id WHERE t.dispatch_id = $1 AND t.user_id = $2 FOR UPDATE OF t",
            dispatch_id,
            user_id,
        )

    async def set_status(
        self,
        conn: asyncpg.Connection,
        *,
        tenant_id: uuid.UUID,
        dispatch_id: uuid.UUID,
        user_id: uuid.UUID,
        status: ResponderStatus,
        device_id: uuid.UUID | None,
        receipt_id: uuid.UUID,
        outcome: str | None = None,
    ) -> None:
        await conn.execute(
            "UPDATE push_targets SET status = $3, status_at = now(), status_device_id = $4 "
            "WHERE dispatch_id = $1 AND user_id = $2",
            dispatch_id,
            user_id,
            status.value,
            device_id,
        )
        await conn.execute(
            "INSERT INTO push_receipts (id, tenant_id, dispatch_id, user_id, device_id, status, outcome) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7)",
            receipt_id,
            tenant_id,
            dispatch_id,
            user_id,
            device_id,
            status.value,
            outcome,
        )

    async def dispatch(self, conn: asyncpg.Connection, dispatch_id: uuid.UUID) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT id, tenant_id, alert_id, force_id, urgency, escalation_level, ordered_at FROM push_dispatches "
            "WHERE id = $1",
            dispatch_id,
        )

    async def responders(self, conn: asyncpg.Connection, dispatch_id: uuid.UUID) -> list[ResponderState]:
        rows = await conn.fetch(
            "SELECT t.user_id, t.status, t.status_at, "
            "(SELECT count(*) FROM push_deliveries l WHERE l.dispatch_id = t.dispatch_id AND l.user_id = t.user_id "
            "AND l.state = 'accepted') AS accepted, "
            "(SELECT count(*) FROM push_deliveries l WHERE l.dispatch_id = t.dispatch_id AND l.user_id = t.user_id "
            "AND l.state = 'failed') AS failed FROM push_targets t WHERE t.dispatch_id = $1 ORDER BY t.user_id",
            dispatch_id,
        )
        return [
            ResponderState(
                officer_id=r["user_id"],
                status=None if r["status"] is None else ResponderStatus(r["status"]),
                status_at=r["status_at"],
                deliveries_accepted=r["accepted"],
                deliveries_failed=r["failed"],
            )
            for r in rows
        ]

    async def attempts(self, conn: asyncpg.Connection, dispatch_id: uuid.UUID) -> list[Attempt]:
        rows = await conn.fetch(
            "SELECT a.delivery_id, l.device_id, l.user_id, a.attempt, a.started_at, a.duration_ms, a.outcome, "
            "a.error_code, a.http_status, a.retry_after_s FROM push_attempts a JOIN push_deliveries l "
            "ON l.id = a.delivery_id WHERE l.dispatch_id = $1 ORDER BY a.started_at, a.attempt",
            dispatch_id,
        )
        return [
            Attempt(
                delivery_id=r["delivery_id"],
                device_id=r["device_id"],
                officer_id=r["user_id"],
                attempt=r["attempt"],
                started_at=r["started_at"],
                duration_ms=r["duration_ms"],
                outcome=r["outcome"],
                error_code=r["error_code"],
                http_status=r["http_status"],
                retry_after_s=r["retry_after_s"],
            )
            for r in rows
        ]

    # --- outbox
    async def enqueue(
        self, conn: asyncpg.Connection, event_id: uuid.UUID, tenant_id: uuid.UUID, subject: str, payload: bytes
    ) -> None:
        await conn.execute(
            "INSERT INTO push_outbox (id, tenant_id, subject, payload) VALUES ($1,$2,$3,$4)",
            event_id,
            tenant_id,
            subject,
            payload,
        )

    async def unsent(self, conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
        return list(
            await conn.fetch(
                "SELECT id, subject, payload FROM push_outbox WHERE sent_at IS NULL ORDER BY created_at, id "
                "LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit,
            )
        )

    async def mark_sent(self, conn: asyncpg.Connection, ids: list[uuid.UUID]) -> None:
        await conn.execute("UPDATE push_outbox SET sent_at = now() WHERE id = ANY ($1)", ids)

    # --- health alarms
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

    async def alarms(self, conn: asyncpg.Connection, *, open_only: bool, limit: int) -> list[HealthAlarm]:
        rows = await conn.fetch(
            "SELECT id, kind, detail, raised_at, last_seen_at, occurrences, cleared_at FROM push_health_alarms "
            "WHERE NOT $1 OR cleared_at IS NULL ORDER BY raised_at DESC LIMIT $2",
            open_only,
            limit,
        )
        return [HealthAlarm(**dict(r)) for r in rows]

    async def stale_devices(self, conn: asyncpg.Connection, before: datetime) -> int:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM push_devices WHERE removed_at IS NULL AND last_seen_at < $1", before
            )
        )
