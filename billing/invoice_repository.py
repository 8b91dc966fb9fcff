"""SQL of issued documents: drafts, lines, the gapless counter, issue, status moves, payments, documents, runs."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec

from billing.model import (
    Annex,
    Invoice,
    InvoiceLine,
    InvoiceSummary,
    IssuedRef,
    Party,
    Payment,
    Run,
    RunOutcome,
)

_SUMMARY = (
    "id, tenant_id, kind, status, number, period_start, period_end, issue_date, due_date, credit_of, total_ht, "
    "total_vat, total_ttc, document_sha256"
)
_LINE = (
    "position, kind, description, quantity, unit_code, unit_price, base_quantity, net_amount, vat_rate, plan_id, "
    "camera_id"
)
# The constraint and trigger refusals a write may meet, mapped to domain errors by the service.
IMMUTABLE_SQLSTATE = "VG202"


class InvoiceRepository:
    # --- issuing
    async def live_invoice(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, month: date) -> IssuedRef | None:
        row = await conn.fetchrow(
            "SELECT id, tenant_id, number, total_ttc FROM billing_invoices WHERE tenant_id = $1 AND period_start = $2 "
            "AND kind = 'invoice' AND status NOT IN ('draft', 'cancelled')",
            tenant_id,
            month,
        )
        return None if row is None else IssuedRef(invoice_id=row["id"], tenant_id=row["tenant_id"],
                                                   number=row["number"], total_ttc=row["total_ttc"])

    async def insert_draft(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO billing_invoices (id, tenant_id, department_id, kind, status, period_start, period_end, "
            "credit_of, credit_reason, contract_id, run_id, buyer, seller, vat_rate, annex) "
            "VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            values["id"],
            values["tenant_id"],
            values["department_id"],
            values["kind"],
            values["period_start"],
            values["period_end"],
            values["credit_of"],
            values["credit_reason"],
            values["contract_id"],
            values["run_id"],
            msgspec.json.encode(values["buyer"]).decode(),
            msgspec.json.encode(values["seller"]).decode(),
            values["vat_rate"],
            msgspec.json.encode(values["annex"]).decode(),
        )

    async def insert_lines(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, invoice_id: uuid.UUID, lines: list[InvoiceLine]
    ) -> None:
        await conn.executemany(
            "INSERT INTO billing_invoice_lines (id, tenant_id, invoice_id, position, kind, description, plan_id, "
            "camera_id, quantity, unit_code, unit_price, base_quantity, net_amount, vat_rate) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            [
                (uuid.uuid4(), tenant_id, invoice_id, line.position, line.kind, line.description, line.plan_id,
                 line.camera_id, line.quantity, line.unit_code, line.unit_price, line.base_quantity,
                 line.net_amount, line.vat_rate)
                for line in lines
            ],
        )

    async def next_number(self, conn: asyncpg.Connection, department_id: uuid.UUID, year: int) -> int:
        """Takes the department's counter row lock until the transaction ends: the number is used iff it commits."""
        number: int = await conn.fetchval(
            "INSERT INTO billing_number_counters AS c (department_id, year, last_number) VALUES ($1, $2, 1) "
            "ON CONFLICT (department_id, year) DO UPDATE SET last_number = c.last_number + 1 RETURNING last_number",
            department_id,
            year,
        )
        return number

    async def issue(
        self,
        conn: asyncpg.Connection,
        invoice_id: uuid.UUID,
        *,
        number: str,
        year: int,
        sequence: int,
        issue_date: date,
        due_date: date,
        total_ht: Decimal,
        total_vat: Decimal,
        total_ttc: Decimal,
    ) -> None:
        await conn.execute(
            "UPDATE billing_invoices SET status = 'issued', number = $2, year = $3, sequence = $4, issue_date = $5, "
            "due_date = $6, total_ht = $7, total_vat = $8, total_ttc = $9, issued_at = now() WHERE id = $1",
            invoice_id,
            number,
            year,
            sequence,
            issue_date,
            due_date,
            total_ht,
            total_vat,
            total_ttc,
        )

    # --- reading
    async def invoice(self, conn: asyncpg.Connection, invoice_id: uuid.UUID) -> Invoice | None:
        row = await conn.fetchrow(
            "SELECT i.*, o.number AS credit_of_number, o.issue_date AS credit_of_issue_date, "
            "(SELECT coalesce(sum(p.amount), 0) FROM billing_payments p WHERE p.invoice_id = i.id) AS paid_amount "
            "FROM billing_invoices i LEFT JOIN billing_invoices o ON o.id = i.credit_of "
            "WHERE i.id = $1 AND i.status <> 'draft'",
            invoice_id,
        )
        if row is None:
            return None
        lines = await conn.fetch(
            f"SELECT {_LINE} FROM billing_invoice_lines WHERE invoice_id = $1 ORDER BY position", invoice_id
        )
        payments = await conn.fetch(
            "SELECT id, invoice_id, amount, paid_on, method, reference, recorded_at FROM billing_payments "
            "WHERE invoice_id = $1 ORDER BY recorded_at, id",
            invoice_id,
        )
        return Invoice(
            **{k: row[k] for k in Invoice.__struct_fields__ if k not in {"buyer", "seller", "annex", "lines",
                                                                        "payments"}},
            buyer=msgspec.json.decode(row["buyer"], type=Party),
            seller=msgspec.json.decode(row["seller"], type=Party),
            annex=msgspec.json.decode(row["annex"], type=Annex),
            lines=[InvoiceLine(**dict(r)) for r in lines],
            payments=[Payment(**dict(r)) for r in payments],
        )

    async def invoices(
        self,
        conn: asyncpg.Connection,
        *,
        tenant_id: uuid.UUID | None,
        period_start: date | None,
        status: str | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[InvoiceSummary]:
        rows = await conn.fetch(
            f"SELECT {_SUMMARY} FROM billing_invoices WHERE status <> 'draft' AND ($1::uuid IS NULL OR tenant_id = $1) "
            "AND ($2::date IS NULL OR period_start = $2) AND ($3::text IS NULL OR status = $3) "
            "AND ($4::uuid IS NULL OR id > $4) ORDER BY id LIMIT $5",
            tenant_id,
            period_start,
            status,
            after,
            limit,
        )
        return [InvoiceSummary(**dict(r)) for r in rows]

    async def period_documents(
        self, conn: asyncpg.Connection, department_id: uuid.UUID, period_start: date
    ) -> list[uuid.UUID]:
        """Invoices and credit notes of a billing month, in number order (the Chorus Pro deposit)."""
        rows = await conn.fetch(
            "SELECT id FROM billing_invoices WHERE department_id = $1 AND period_start = $2 AND status <> 'draft' "
            "ORDER BY year, sequence",
            department_id,
            period_start,
        )
        return [r["id"] for r in rows]

    async def lock_invoice(self, conn: asyncpg.Connection, invoice_id: uuid.UUID) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT id, tenant_id, department_id, kind, status, number, total_ttc, document_key, "
            "(SELECT coalesce(sum(p.amount), 0) FROM billing_payments p WHERE p.invoice_id = i.id) AS paid_amount "
            "FROM billing_invoices i WHERE id = $1 AND status <> 'draft' FOR UPDATE",
            invoice_id,
        )

    async def set_status(self, conn: asyncpg.Connection, invoice_id: uuid.UUID, status: str) -> None:
        stamp = {"sent": "sent_at", "paid": "paid_at", "cancelled": "cancelled_at"}[status]
        await conn.execute(
            f"UPDATE billing_invoices SET status = $2, {stamp} = now() WHERE id = $1", invoice_id, status
        )

    async def set_document(
        self, conn: asyncpg.Connection, invoice_id: uuid.UUID, key: str, sha256: str
    ) -> bool:
        """Records the stored document once; False when another writer recorded one first."""
        result: str = await conn.execute(
            "UPDATE billing_invoices SET document_key = $2, document_sha256 = $3 "
            "WHERE id = $1 AND document_key IS NULL",
            invoice_id,
            key,
            sha256,
        )
        return result.endswith(" 1")

    async def document(self, conn: asyncpg.Connection, invoice_id: uuid.UUID) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT tenant_id, number, document_key, document_sha256 FROM billing_invoices "
            "WHERE id = $1 AND status <> 'draft'",
            invoice_id,
        )

    async def insert_payment(self, conn: asyncpg.Connection, values: dict[str, Any]) -> Payment:
        row = await conn.fetchrow(
            "INSERT INTO billing_payments (id, tenant_id, invoice_id, amount, paid_on, method, reference, recorded_by) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "RETURNING id, invoice_id, amount, paid_on, method, reference, recorded_at",
            values["id"],
            values["tenant_id"],
            values["invoice_id"],
            values["amount"],
            values["paid_on"],
            values["method"],
            values["reference"],
            values["recorded_by"],
        )
        assert row is not None
        return Payment(**dict(row))

    # --- runs
    async def insert_run(
        self, conn: asyncpg.Connection, run_id: uuid.UUID, department_id: uuid.UUID, month: date,
        user_id: uuid.UUID | None,
    ) -> None:
        await conn.execute(
            "INSERT INTO billing_runs (id, department_id, month, started_by) VALUES ($1, $2, $3, $4)",
            run_id,
            department_id,
            month,
            user_id,
        )

    async def finish_run(self, conn: asyncpg.Connection, run_id: uuid.UUID, outcome: RunOutcome) -> None:
        await conn.execute(
            "UPDATE billing_runs SET finished_at = now(), summary = $2 WHERE id = $1",
            run_id,
            msgspec.json.encode(outcome).decode(),
        )

    async def runs(
        self, conn: asyncpg.Connection, run_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
    ) -> list[Run]:
        rows = await conn.fetch(
            "SELECT id, to_char(month, 'YYYY-MM') AS month, started_by, started_at, finished_at, summary "
            "FROM billing_runs WHERE ($1::uuid IS NULL OR id = $1) AND ($2::uuid IS NULL OR id > $2) "
            "ORDER BY id LIMIT $3",
            run_id,
            after,
            limit,
        )
        return [
            Run(
                id=r["id"],
                month=r["month"],
                started_by=r["started_by"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                outcome=msgspec.json.decode(r["summary"], type=RunOutcome),
            )
            for r in rows
        ]
