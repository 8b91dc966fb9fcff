"""SQL of metering: a tenant's month read through the views of migration 0070 and billing's own rows."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import asyncpg

from billing.metering import Interval, RegistryEvent
from billing.rules import Assignment, Plan, PriceRow

BYTES_PER_GB = Decimal(10) ** 9
SECONDS_PER_DAY = Decimal(86400)


@dataclass(frozen=True)
class RegisteredCamera:
    camera_id: uuid.UUID
    name: str
    insee_code: str
    events: list[RegistryEvent]


class MeteringRepository:
    async def cameras(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, until: datetime) -> list[RegisteredCamera]:
        """Every camera of the tenant with its history up to `until`, named as it was last known."""
        rows = await conn.fetch(
            "SELECT camera_id, occurred_at, kind, status, name, insee_code FROM billing_camera_registry_v "
            "WHERE tenant_id = $1 AND occurred_at < $2 ORDER BY camera_id, occurred_at, seq",
            tenant_id,
            until,
        )
        cameras: dict[uuid.UUID, RegisteredCamera] = {}
        for r in rows:
            previous = cameras.get(r["camera_id"])
            events = [] if previous is None else previous.events
            events.append(RegistryEvent(r["occurred_at"], r["kind"], r["status"]))
            cameras[r["camera_id"]] = RegisteredCamera(r["camera_id"], r["name"], r["insee_code"], events)
        return list(cameras.values())

    async def outages(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[Interval]]:
        rows = await conn.fetch(
            "SELECT camera_id, greatest(start_at, $2) AS s, least(end_at, $3) AS e FROM billing_camera_outages_v "
            "WHERE tenant_id = $1 AND start_at < $3 AND end_at > $2",
            tenant_id,
            start,
            end,
        )
        found: dict[uuid.UUID, list[Interval]] = defaultdict(list)
        for r in rows:
            found[r["camera_id"]].append(Interval(r["s"], r["e"]))
        return found

    async def assignments(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, first: date, last: date
    ) -> dict[uuid.UUID, list[Assignment]]:
        """The plans of the tenant's cameras over the month, within their contract's dates (a contract ended early
        ends its cameras' plans with it). least/greatest skip NULLs: an open end stays open only if both are."""
        rows = await conn.fetch(
            "SELECT * FROM (SELECT cc.camera_id, cc.plan_id, greatest(cc.start_date, c.start_date) AS s, "
            "least(cc.end_date, c.end_date) AS e FROM billing_contract_cameras cc "
            "JOIN billing_contracts c ON c.id = cc.contract_id WHERE cc.tenant_id = $1) a "
            "WHERE s <= $3 AND (e IS NULL OR (e >= $2 AND e >= s)) ORDER BY camera_id, s",
            tenant_id,
            first,
            last,
        )
        found: dict[uuid.UUID, list[Assignment]] = defaultdict(list)
        for r in rows:
            found[r["camera_id"]].append(Assignment(r["plan_id"], r["s"], r["e"]))
        return found

    async def contracts_in_month(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, first: date, last: date
    ) -> list[asyncpg.Record]:
        """The tenant's contracts in force on some day of the month, latest first."""
        return list(
            await conn.fetch(
                "SELECT * FROM billing_contracts WHERE tenant_id = $1 AND start_date <= $3 "
                "AND (end_date IS NULL OR end_date >= $2) ORDER BY start_date DESC",
                tenant_id,
                first,
                last,
            )
        )

    async def catalogue(
        self, conn: asyncpg.Connection, department_id: uuid.UUID, last: date
    ) -> tuple[dict[uuid.UUID, Plan], dict[uuid.UUID, list[PriceRow]]]:
        plans = {
            r["id"]: Plan(r["id"], r["code"], r["name"])
            for r in await conn.fetch(
                "SELECT id, code, name FROM billing_plans WHERE department_id = $1", department_id
            )
        }
        prices: dict[uuid.UUID, list[PriceRow]] = defaultdict(list)
        for r in await conn.fetch(
            "SELECT id, plan_id, effective_from, monthly_price_ht, detector_hour_price, storage_gb_day_price "
            "FROM billing_plan_prices WHERE department_id = $1 AND effective_from <= $2 ORDER BY effective_from",
            department_id,
            last,
        ):
            prices[r["plan_id"]].append(PriceRow(**dict(r)))
        return plans, prices

    async def detector_seconds(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, first: date, last: date
    ) -> Decimal:
        value = await conn.fetchval(
            "SELECT coalesce(sum(detector_seconds), 0)::numeric FROM billing_detector_usage_v "
            "WHERE tenant_id = $1 AND day BETWEEN $2 AND $3",
            tenant_id,
            first,
            last,
        )
        return Decimal(value)

    async def storage_gb_days(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, start: datetime, end: datetime
    ) -> Decimal:
        """Bytes times days stored within the month, in GB-days: a segment is stored from its end until destroyed."""
        byte_seconds = await conn.fetchval(
            "SELECT coalesce(sum(size_bytes::numeric * extract(epoch FROM "
            "least(coalesce(destroyed_at, $3), $3) - greatest(end_at, $2))), 0) FROM billing_segments_v "
            "WHERE tenant_id = $1 AND end_at < $3 AND (destroyed_at IS NULL OR destroyed_at > $2)",
            tenant_id,
            start,
            end,
        )
        return Decimal(byte_seconds) / BYTES_PER_GB / SECONDS_PER_DAY
