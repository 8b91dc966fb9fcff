"""Issuing one document inside the caller's transaction: a draft with its lines, then its number and totals."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

from billing.invoice_repository import InvoiceRepository
from billing.metering import PARIS, Month
from billing.model import Annex, InvoiceLine, IssuedRef, Issuer, Party
from billing.rules import DraftLine, invoice_number, totals
from core.ids import new_id


# The number comes last: the counter's row lock is held from there to the commit, so concurrent issuers wait only for
# that short tail, and a transaction that rolls back gives its number back (no gap).
def seller_party(issuer: Issuer) -> Party:
    return Party(
        name=issuer.legal_name,
        siret=issuer.siret,
        address_line=issuer.address_line,
        postcode=issuer.postcode,
        city=issuer.city,
        vat_number=issuer.vat_number,
        iban=issuer.iban,
    )


def buyer_party(contract: asyncpg.Record) -> Party:
    return Party(
        name=contract["buyer_name"],
        siret=contract["buyer_siret"],
        address_line=contract["buyer_address_line"],
        postcode=contract["buyer_postcode"],
        city=contract["buyer_city"],
        chorus_service_code=contract["chorus_service_code"],
        engagement_number=contract["engagement_number"],
        contract_reference=contract["reference"],
        contact_name=contract["billing_contact_name"],
        contact_email=contract["billing_contact_email"],
    )


def invoice_lines(lines: Sequence[DraftLine], vat_rate: Decimal) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            position=position,
            kind=line.kind,
            description=line.description,
            quantity=line.quantity,
            unit_code=line.unit_code,
            unit_price=line.unit_price,
            base_quantity=line.base_quantity,
            net_amount=line.net_amount,
            vat_rate=vat_rate,
            plan_id=line.plan_id,
            camera_id=line.camera_id,
        )
        for position, line in enumerate(lines, start=1)
    ]


def today_in_paris() -> datetime:
    return datetime.now(PARIS)


async def issue(
    conn: asyncpg.Connection,
    repository: InvoiceRepository,
    *,
    department_id: uuid.UUID,
    department_code: str,
    tenant_id: uuid.UUID,
    kind: str,
    month: Month,
    contract_id: uuid.UUID,
    buyer: Party,
    seller: Party,
    lines: list[InvoiceLine],
    annex: Annex,
    vat_rate: Decimal,
    payment_days: int,
    run_id: uuid.UUID | None = None,
    credit_of: uuid.UUID | None = None,
    credit_reason: str | None = None,
) -> IssuedRef:
    invoice_id = new_id()
    await repository.insert_draft(
        conn,
        {
            "id": invoice_id,
            "tenant_id": tenant_id,
            "department_id": department_id,
            "kind": kind,
            "period_start": month.first_day,
            "period_end": month.last_day,
            "credit_of": credit_of,
            "credit_reason": credit_reason,
            "contract_id": contract_id,
            "run_id": run_id,
            "buyer": buyer,
            "seller": seller,
            "vat_rate": vat_rate,
            "annex": annex,
        },
    )
    await repository.insert_lines(conn, tenant_id, invoice_id, lines)
    total = totals([line.net_amount for line in lines], vat_rate)
    issue_date = today_in_paris().date()
    sequence = await repository.next_number(conn, department_id, issue_date.year)
    number = invoice_number(department_code, issue_date.year, sequence)
    # A credit note is due at once: it settles against what the buyer owes.
    due = issue_date if kind == "credit_note" else issue_date + timedelta(days=payment_days)
    await repository.issue(
        conn,
        invoice_id,
        number=number,
        year=issue_date.year,
        sequence=sequence,
        issue_date=issue_date,
        due_date=due,
        total_ht=total.ht,
        total_vat=total.vat,
        total_ttc=total.ttc,
    )
    return IssuedRef(invoice_id=invoice_id, tenant_id=tenant_id, number=number, total_ttc=total.ttc)
