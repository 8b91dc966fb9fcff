"""Use cases of issued documents: their PDF, status moves, payments, credit notes, the Chorus Pro deposit."""

from __future__ import annotations

import asyncio
import io
import uuid
import zipfile
from decimal import Decimal

import asyncpg

from billing.access import BILLING_READERS, BILLING_RUNNERS, Acting, BillingBase
from billing.errors import DocumentImmutable
from billing.invoice_repository import IMMUTABLE_SQLSTATE
from billing.issuing import issue
from billing.metering import Month
from billing.model import CreditNoteRequest, Invoice, InvoiceSummary, PaymentInput
from billing.runs import RunCases, parse_month
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import new_id
from core.tenancy import Principal


class InvoiceCases(RunCases, BillingBase):
    async def invoices(
        self,
        principal: Principal,
        *,
        tenant_id: uuid.UUID | None,
        month: str | None,
        status: str | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[InvoiceSummary]:
        self._require(principal, BILLING_READERS, "read invoices")
        period = None if month is None else parse_month(month).first_day
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._invoices.invoices(
                conn, tenant_id=tenant_id, period_start=period, status=status, after=after, limit=limit
            )

    async def invoice(self, principal: Principal, invoice_id: uuid.UUID) -> Invoice:
        self._require(principal, BILLING_READERS, "read invoices")
        async with self._db.transaction(principal, readonly=True) as conn:
            found = await self._invoices.invoice(conn, invoice_id)
        if found is None:
            raise NotFound("no such invoice")
        return found

    async def invoice_for_job(self, department_id: uuid.UUID, invoice_id: uuid.UUID) -> Invoice:
        """A document read by a department job (the CLI, the benchmark): no principal, the department's GUC."""
        async with self._billing_rows(department_id, readonly=True) as conn:
            found = await self._invoices.invoice(conn, invoice_id)
        if found is None:
            raise NotFound("no such invoice")
        return found

    async def invoice_document(self, principal: Principal, invoice_id: uuid.UUID) -> tuple[str, bytes]:
        """The stored Factur-X PDF; rendered and stored on first request when the run left it to later."""
        self._require(principal, BILLING_READERS, "read invoices")
        async with self._db.transaction(principal, readonly=True) as conn:
            record = await self._invoices.document(conn, invoice_id)
        if record is None:
            raise NotFound("no such invoice")
        if record["document_key"] is None:
            await self.render_documents(principal, [invoice_id])
            async with self._db.transaction(principal, readonly=True) as conn:
                record = await self._invoices.document(conn, invoice_id)
            assert record is not None
            assert record["document_key"] is not None
        data = await self._store.get(record["tenant_id"], record["document_key"])
        return f"{record['number']}.pdf", data

    async def mark_sent(self, principal: Principal, invoice_id: uuid.UUID) -> Invoice:
        """Deposited on Chorus Pro (or sent otherwise): issued → sent."""
        self._require(principal, BILLING_RUNNERS, "mark invoices sent")
        async with self._db.transaction(principal) as conn:
            row = await self._invoices.lock_invoice(conn, invoice_id)
            if row is None:
                raise NotFound("no such invoice")
            if row["status"] != "issued":
                raise Conflict(f"{row['number']} is {row['status']}: only an issued document is marked sent")
            await self._invoices.set_status(conn, invoice_id, "sent")
            await self._journal.note(conn, principal, "billing.invoice.sent", ("billing_invoice", invoice_id),
                                     tenant_id=principal.home_tenant_id, number=row["number"],
                                     billed_tenant=row["tenant_id"])
        return await self.invoice(principal, invoice_id)

    async def record_payment(self, principal: Principal, invoice_id: uuid.UUID, data: PaymentInput) -> Invoice:
        self._require(principal, BILLING_RUNNERS, "record payments")
        amount = Decimal(data.amount)
        if amount <= 0:
            raise InvalidInput("a payment is a positive amount", field="amount")
        async with self._db.transaction(principal) as conn:
            row = await self._invoices.lock_invoice(conn, invoice_id)
            if row is None:
                raise NotFound("no such invoice")
            if row["kind"] != "invoice" or row["status"] not in ("issued", "sent"):
                raise Conflict(f"{row['number']} is a {row['kind']} {row['status']}: it takes no payment")
            due = row["total_ttc"] - row["paid_amount"]
            if amount > due:
                raise InvalidInput(f"{amount} exceeds the {due} still due on {row['number']}", field="amount")
            await self._invoices.insert_payment(conn, {
                "id": new_id(), "tenant_id": row["tenant_id"], "invoice_id": invoice_id, "amount": amount,
                "paid_on": data.paid_on, "method": data.method, "reference": data.reference,
                "recorded_by": principal.user_id,
            })
            if amount == due:
                await self._invoices.set_status(conn, invoice_id, "paid")
            await self._journal.note(conn, principal, "billing.payment.record", ("billing_invoice", invoice_id),
                                     tenant_id=principal.home_tenant_id, number=row["number"], amount=amount,
                                     paid_on=data.paid_on, billed_tenant=row["tenant_id"])
        return await self.invoice(principal, invoice_id)

    async def issue_credit_note(self, principal: Principal, invoice_id: uuid.UUID, data: CreditNoteRequest) -> Invoice:
        """A credit note cancelling the invoice exactly (same lines, same totals, referencing it); the month may then
        be billed again by a run."""
        self._require(principal, BILLING_RUNNERS, "issue credit notes")
        async with self._db.transaction(principal) as conn:
            original = await self._invoices.invoice(conn, invoice_id)
            if original is None:
                raise NotFound("no such invoice")
            await self._catalogue.lock_tenant(conn, original.tenant_id)
            row = await self._invoices.lock_invoice(conn, invoice_id)
            assert row is not None
            if original.kind != "invoice" or row["status"] == "cancelled":
                raise Conflict(f"{original.number} is a {original.kind} {row['status']}: nothing to credit")
            code = await self._catalogue.department_code(conn, original.department_id)
            assert code is not None
            try:
                credit = await issue(
                    conn, self._invoices, department_id=original.department_id, department_code=code,
                    tenant_id=original.tenant_id, kind="credit_note",
                    month=Month.of(original.period_start), contract_id=original.contract_id, buyer=original.buyer,
                    seller=original.seller, lines=original.lines, annex=original.annex, vat_rate=original.vat_rate,
                    payment_days=0, credit_of=original.id, credit_reason=data.reason,
                )
                await self._invoices.set_status(conn, invoice_id, "cancelled")
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"{original.number} already has a credit note") from exc
            except asyncpg.PostgresError as exc:
                if exc.sqlstate == IMMUTABLE_SQLSTATE:
                    raise DocumentImmutable(str(exc)) from exc
                raise
            await self._journal.note(
                conn, principal, "billing.credit_note.issue", ("billing_invoice", credit.invoice_id),
                tenant_id=principal.home_tenant_id, number=credit.number, credits=original.number,
                billed_tenant=original.tenant_id, reason=data.reason,
            )
        return await self.invoice(principal, credit.invoice_id)

    # --- Chorus Pro
    async def deposit(self, principal: Principal, month: str, part: int = 1) -> tuple[str, bytes]:
        """The month's documents as a ZIP of Factur-X PDFs; split into parts of at most 500 (Chorus Pro's limit)."""
        self._require(principal, BILLING_RUNNERS, "build the Chorus Pro deposit")
        return await self.deposit_for(principal, parse_month(month), part)

    async def deposit_for(self, who: Acting, month: Month, part: int = 1) -> tuple[str, bytes]:
        ids = await self.month_documents(who, month)
        size = self._settings.chorus_max_documents
        parts = max(1, -(-len(ids) // size))
        if not 1 <= part <= parts:
            raise InvalidInput(f"this month's deposit has {parts} part(s)", field="part")
        chunk = ids[(part - 1) * size:part * size]
        await self.render_documents(who, chunk)
        files = await self.stored_documents(who, chunk)
        suffix = "" if parts == 1 else f"-{part}-of-{parts}"
        return f"chorus-pro-{month}{suffix}.zip", await asyncio.to_thread(_zip, files)

    async def stored_documents(self, who: Acting, ids: list[uuid.UUID]) -> list[tuple[str, bytes]]:
        """The stored PDFs of these documents, named by number (render them first)."""
        async with self._billing_rows(who, readonly=True) as conn:
            records = [await self._invoices.document(conn, i) for i in ids]
        files = []
        for record in records:
            if record is None or record["document_key"] is None:
                raise NotFound("a document of this month is not stored yet")
            files.append((f"{record['number']}.pdf", await self._store.get(record["tenant_id"],
                                                                          record["document_key"])))
        return files


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    # PDFs are compressed already: stored as they are.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()
