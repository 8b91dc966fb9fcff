"""SQL of the mayor's monthly report, read through the report views of migrations 0070 and 0073."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

import asyncpg


class ReportRepository:
    async def recorded_seconds(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, start: datetime, end: datetime
    ) -> dict[uuid.UUID, float]:
        rows = await conn.fetch(
            "SELECT camera_id, sum(extract(epoch FROM least(end_at, $3) - greatest(start_at, $2)))::float8 AS s "
            "FROM billing_segments_v WHERE tenant_id = $1 AND start_at < $3 AND end_at > $2 GROUP BY camera_id",
            tenant_id,
            start,
            end,
        )
        return {r["camera_id"]: float(r["s"] or 0) for r in rows}

    async def alerts(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[asyncpg.Record]:
        return list(
            await conn.fetch(
                "SELECT camera_id, raised_at, verified_at, dismissed, first_dispatch_at FROM report_alerts_v "
                "WHERE tenant_id = $1 AND raised_at >= $2 AND raised_at < $3",
                tenant_id,
                start,
                end,
            )
        )

    async def responders(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[asyncpg.Record]:
        return list(
            await conn.fetch(
                "SELECT camera_id, ordered_at, on_scene_at, outcome FROM report_responders_v "
                "WHERE tenant_id = $1 AND ordered_at >= $2 AND ordered_at < $3",
                tenant_id,
                start,
                end,
            )
        )

    async def requisitions(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[asyncpg.Record]:
        """Requisitions received this month, or served (an export handed over) this month."""
        return list(
            await conn.fetch(
                "SELECT camera_ids, received_at, served_at FROM report_requisitions_v WHERE tenant_id = $1 "
                "AND ((received_at >= $2 AND received_at < $3) OR (served_at >= $2 AND served_at < $3))",
                tenant_id,
                start,
                end,
            )
        )

    async def commune_names(self, conn: asyncpg.Connection, codes: list[str]) -> dict[str, str]:
        rows = await conn.fetch("SELECT insee_code, name FROM communes WHERE insee_code = ANY($1::text[])", codes)
        names: dict[str, str] = defaultdict(str)
        names.update({r["insee_code"]: r["name"] for r in rows})
        return names

    async def tenant_name(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> str | None:
        name: str | None = await conn.fetchval("SELECT name FROM billing_tenants_v WHERE tenant_id = $1", tenant_id)
        return name
