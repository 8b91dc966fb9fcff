"""SQL of the push domain's API side: officers' devices, the dispatches and statuses they see, staff's reports."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from core.outbox import Outbox
from mobile_push.events import ResponderStatus, subject_for
from mobile_push.model import Attempt, HealthAlarm, ResponderState

# Events committed with the change that caused them; the push process relays them to NATS (core.outbox).
PUSH_OUTBOX = Outbox("push_outbox", subject_for)

_DEVICE = (
    "id, tenant_id, user_id, force_id, platform, app_version, registered_at, token_refreshed_at, last_seen_at, "
    "removed_at, removed_reason, key_thumbprint"
)


class PushRepository:
    """Queries of the push API; every connection is a scoped transaction of the runtime role (row-level security)."""

    # --- devices
    async def insert_device(self, conn: asyncpg.Connection, values: dict[str, Any]) -> asyncpg.Record:
        row = await conn.fetchrow(
            "INSERT INTO push_devices (id, tenant_id, user_id, force_id, platform, token_sealed, token_hash, "
            f"app_version, key_thumbprint) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING {_DEVICE}",
            values["id"],
            values["tenant_id"],
            values["user_id"],
            values["force_id"],
            values["platform"],
            values["token_sealed"],
            values["token_hash"],
            values["app_version"],
            values.get("key_thumbprint"),
        )
        assert row is not None
        return row

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
    ) -> asyncpg.Record | None:
        """None when the device already holds this very token (a duplicate, like one held by another device)."""
        return await conn.fetchrow(
            "UPDATE push_devices SET token_sealed = $2, token_hash = $3, token_refreshed_at = now(), "
            f"last_seen_at = now() WHERE id = $1 AND token_hash <> $3 RETURNING {_DEVICE}",
            device_id,
            sealed,
            token_hash,
        )

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

    async def alarms(self, conn: asyncpg.Connection, *, open_only: bool, limit: int) -> list[HealthAlarm]:
        rows = await conn.fetch(
            "SELECT id, kind, detail, raised_at, last_seen_at, occurrences, cleared_at FROM push_health_alarms "
            "WHERE NOT $1 OR cleared_at IS NULL ORDER BY raised_at DESC LIMIT $2",
            open_only,
            limit,
        )
        return [HealthAlarm(**dict(r)) for r in rows]
