"""SQL of the catalogue (issuer, plans, versioned prices) and of contracts with their cameras' plans."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from billing.model import CameraPlan, Contract, Issuer, Plan, Price

_ISSUER = "department_id, legal_name, siret, vat_number, address_line, postcode, city, iban, payment_days, updated_at"
_PRICE = (
    "id, plan_id, effective_from, monthly_price_ht, detector_hour_price, storage_gb_day_price, created_at"
)
CONTRACT_COLUMNS = (
    "id, tenant_id, reference, start_date, end_date, buyer_name, buyer_siret, buyer_address_line, buyer_postcode, "
    "buyer_city, chorus_service_code, engagement_number, billing_contact_name, billing_contact_email, "
    "availability_target, sla_credit_percent_per_point, sla_credit_cap_percent, created_at, updated_at"
)
_CAMERA_PLAN = (
    "cc.id, cc.contract_id, cc.camera_id, cc.plan_id, p.code AS plan_code, cc.start_date, cc.end_date"
)
# Columns a contract update may set (the command's fields); anything else never reaches SQL.
CONTRACT_UPDATABLE = frozenset(
    {
        "end_date", "buyer_name", "buyer_siret", "buyer_address_line", "buyer_postcode", "buyer_city",
        "chorus_service_code", "engagement_number", "billing_contact_name", "billing_contact_email",
        "availability_target", "sla_credit_percent_per_point", "sla_credit_cap_percent",
    }
)


def contract_of(row: asyncpg.Record) -> Contract:
    return Contract(**{k: row[k] for k in Contract.__struct_fields__})


class CatalogueRepository:
    """Department-level rows and contracts; row-level security decides what the transaction sees."""

    # --- the department and its tenants (the directory)
    async def department_code(self, conn: asyncpg.Connection, department_id: uuid.UUID) -> str | None:
        code: str | None = await conn.fetchval("SELECT code FROM departments WHERE id = $1", department_id)
        return code

    async def department_by_code(self, conn: asyncpg.Connection, code: str) -> uuid.UUID | None:
        found: uuid.UUID | None = await conn.fetchval("SELECT id FROM departments WHERE code = $1", code)
        return found

    async def departments(self, conn: asyncpg.Connection) -> list[tuple[uuid.UUID, str]]:
        return [(r["id"], r["code"]) for r in await conn.fetch("SELECT id, code FROM departments ORDER BY code")]

    async def department_tenant(self, conn: asyncpg.Connection, department_id: uuid.UUID) -> uuid.UUID | None:
        found: uuid.UUID | None = await conn.fetchval(
            "SELECT tenant_id FROM billing_tenants_v WHERE department_id = $1 AND kind = 'department'", department_id
        )
        return found

    async def tenant(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT tenant_id AS id, department_id, kind, name FROM billing_tenants_v WHERE tenant_id = $1", tenant_id
        )

    async def member_tenants(self, conn: asyncpg.Connection, department_id: uuid.UUID) -> list[asyncpg.Record]:
        """Every tenant the department may invoice: all but its own."""
        return list(
            await conn.fetch(
                "SELECT tenant_id AS id, name FROM billing_tenants_v WHERE department_id = $1 "
                "AND kind <> 'department' ORDER BY name, tenant_id",
                department_id,
            )
        )

    # --- issuer
    async def issuer(self, conn: asyncpg.Connection, department_id: uuid.UUID) -> Issuer | None:
        row = await conn.fetchrow(f"SELECT {_ISSUER} FROM billing_issuers WHERE department_id = $1", department_id)
        return None if row is None else Issuer(**dict(row))

    async def upsert_issuer(
        self, conn: asyncpg.Connection, department_id: uuid.UUID, values: dict[str, Any], user_id: uuid.UUID | None
    ) -> Issuer:
        row = await conn.fetchrow(
            "INSERT INTO billing_issuers (department_id, legal_name, siret, vat_number, address_line, postcode, city, "
            "iban, payment_days, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (department_id) DO UPDATE SET legal_name = EXCLUDED.legal_name, siret = EXCLUDED.siret, "
            "vat_number = EXCLUDED.vat_number, address_line = EXCLUDED.address_line, postcode = EXCLUDED.postcode, "
            "city = EXCLUDED.city, iban = EXCLUDED.iban, payment_days = EXCLUDED.payment_days, updated_at = now(), "
            f"updated_by = EXCLUDED.updated_by RETURNING {_ISSUER}",
            department_id,
            values["legal_name"],
            values["siret"],
            values["vat_number"],
            values["address_line"],
            values["postcode"],
            values["city"],
            values["iban"],
            values["payment_days"],
            user_id,
        )
        assert row is not None
        return Issuer(**dict(row))

    # --- plans and prices
    async def plans(self, conn: asyncpg.Connection, plan_id: uuid.UUID | None = None) -> list[Plan]:
        rows = await conn.fetch(
            "SELECT id, code, name, description, created_at FROM billing_plans "
            "WHERE ($1::uuid IS NULL OR id = $1) ORDER BY code",
            plan_id,
        )
        prices = await conn.fetch(
            f"SELECT {_PRICE} FROM billing_plan_prices WHERE ($1::uuid IS NULL OR plan_id = $1) "
            "ORDER BY plan_id, effective_from",
            plan_id,
        )
        by_plan: dict[uuid.UUID, list[Price]] = {}
        for p in prices:
            by_plan.setdefault(p["plan_id"], []).append(Price(**dict(p)))
        return [Plan(**dict(r), prices=by_plan.get(r["id"], [])) for r in rows]

    async def insert_plan(
        self, conn: asyncpg.Connection, plan_id: uuid.UUID, department_id: uuid.UUID, code: str, name: str,
        description: str | None,
    ) -> None:
        await conn.execute(
            "INSERT INTO billing_plans (id, department_id, code, name, description) VALUES ($1, $2, $3, $4, $5)",
            plan_id,
            department_id,
            code,
            name,
            description,
        )

    async def insert_price(
        self,
        conn: asyncpg.Connection,
        *,
        price_id: uuid.UUID,
        department_id: uuid.UUID,
        plan_id: uuid.UUID,
        effective_from: date,
        monthly: Decimal,
        detector_hour: Decimal | None,
        storage_gb_day: Decimal | None,
        user_id: uuid.UUID | None,
    ) -> None:
        await conn.execute(
            "INSERT INTO billing_plan_prices (id, department_id, plan_id, effective_from, monthly_price_ht, "
            "detector_hour_price, storage_gb_day_price, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            price_id,
            department_id,
            plan_id,
            effective_from,
            monthly,
            detector_hour,
            storage_gb_day,
            user_id,
        )

    async def lock_tenant(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> None:
        """Serialises what changes a tenant's bill: its contracts and plans, and the issue of its documents."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('billing_tenant:' || $1::uuid::text, 0))", tenant_id
        )

    async def lock_catalogue(self, conn: asyncpg.Connection, department_id: uuid.UUID) -> None:
        """Serialises price changes with issuing runs of the department (both take it), so a backdated price cannot
        slip in while a run prices the same days."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('billing_catalogue:' || $1::uuid::text, 0))", department_id
        )

    async def lock_catalogue_shared(self, conn: asyncpg.Connection, department_id: uuid.UUID) -> None:
        await conn.execute(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended('billing_catalogue:' || $1::uuid::text, 0))",
            department_id,
        )

    async def plan_invoiced_through(
        self, conn: asyncpg.Connection, plan_id: uuid.UUID, since: date
    ) -> str | None:
        """The number of a live document that billed this plan on or after `since`, if any."""
        found: str | None = await conn.fetchval(
            "SELECT i.number FROM billing_invoices i WHERE i.status NOT IN ('draft', 'cancelled') "
            "AND i.period_end >= $2 AND EXISTS (SELECT 1 FROM billing_invoice_lines l WHERE l.invoice_id = i.id "
            "AND l.plan_id = $1) ORDER BY i.period_end DESC LIMIT 1",
            plan_id,
            since,
        )
        return found

    # --- contracts
    async def contracts(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
    ) -> list[Contract]:
        rows = await conn.fetch(
            f"SELECT {CONTRACT_COLUMNS} FROM billing_contracts WHERE ($1::uuid IS NULL OR tenant_id = $1) "
            "AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
            tenant_id,
            after,
            limit,
        )
        return [contract_of(r) for r in rows]

    async def contract(self, conn: asyncpg.Connection, contract_id: uuid.UUID) -> Contract | None:
        row = await conn.fetchrow(f"SELECT {CONTRACT_COLUMNS} FROM billing_contracts WHERE id = $1", contract_id)
        return None if row is None else contract_of(row)

    async def insert_contract(self, conn: asyncpg.Connection, values: dict[str, Any]) -> Contract:
        columns = list(values)
        row = await conn.fetchrow(
            f"INSERT INTO billing_contracts ({', '.join(columns)}) "
            f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) RETURNING {CONTRACT_COLUMNS}",
            *values.values(),
        )
        assert row is not None
        return contract_of(row)

    async def update_contract(
        self, conn: asyncpg.Connection, contract_id: uuid.UUID, values: dict[str, Any]
    ) -> Contract | None:
        assert values.keys() <= CONTRACT_UPDATABLE
        columns = list(values)
        assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
        row = await conn.fetchrow(
            f"UPDATE billing_contracts SET {assignments}, updated_at = now() WHERE id = $1 "
            f"RETURNING {CONTRACT_COLUMNS}",
            contract_id,
            *values.values(),
        )
        return None if row is None else contract_of(row)

    async def camera_plans(self, conn: asyncpg.Connection, contract_id: uuid.UUID) -> list[CameraPlan]:
        rows = await conn.fetch(
            f"SELECT {_CAMERA_PLAN} FROM billing_contract_cameras cc JOIN billing_plans p ON p.id = cc.plan_id "
            "WHERE cc.contract_id = $1 ORDER BY cc.camera_id, cc.start_date",
            contract_id,
        )
        return [CameraPlan(**dict(r)) for r in rows]

    async def camera_plan_at_or_after(
        self, conn: asyncpg.Connection, contract_id: uuid.UUID, camera_id: uuid.UUID, day: date
    ) -> asyncpg.Record | None:
        """The camera's assignment covering `day` or starting after it (the one a change from `day` affects)."""
        return await conn.fetchrow(
            "SELECT id, start_date, end_date FROM billing_contract_cameras WHERE contract_id = $1 AND camera_id = $2 "
            "AND (end_date IS NULL OR end_date >= $3) ORDER BY start_date LIMIT 1 FOR UPDATE",
            contract_id,
            camera_id,
            day,
        )

    async def end_camera_plan(self, conn: asyncpg.Connection, assignment_id: uuid.UUID, end_date: date) -> None:
        await conn.execute("UPDATE billing_contract_cameras SET end_date = $2 WHERE id = $1", assignment_id, end_date)

    async def insert_camera_plan(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO billing_contract_cameras (id, tenant_id, department_id, contract_id, camera_id, plan_id, "
            "start_date, end_date, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            values["id"],
            values["tenant_id"],
            values["department_id"],
            values["contract_id"],
            values["camera_id"],
            values["plan_id"],
            values["start_date"],
            values["end_date"],
            values["created_by"],
        )

    async def camera_known(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, camera_id: uuid.UUID) -> bool:
        """The camera has a registry history in this tenant (read through the registry view)."""
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM billing_camera_registry_v WHERE tenant_id = $1 AND camera_id = $2)",
                tenant_id,
                camera_id,
            )
        )

    async def tenant_invoiced_through(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, day: date) -> str | None:
        """The number of a live invoice of this tenant whose period ends on or after `day`, if any."""
        found: str | None = await conn.fetchval(
            "SELECT number FROM billing_invoices WHERE tenant_id = $1 AND kind = 'invoice' "
            "AND status NOT IN ('draft', 'cancelled') AND period_end >= $2 ORDER BY period_end DESC LIMIT 1",
            tenant_id,
            day,
        )
        return found
