"""The month end to end on real Postgres: catalogue and contracts, the run (idempotent, held when a camera has no
plan), exact amounts, immutability in the database, credit notes, payments, documents validated, the deposit."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from datetime import date
from decimal import Decimal

import asyncpg
import facturx
import pytest
from pypdf import PdfReader

from billing import validation
from billing.errors import AlreadyInvoiced, BadSiret, MonthNotEnded, OverlappingContract
from billing.model import CameraPlanChange, ContractUpdate, CreditNoteRequest, PaymentInput, PriceInput
from billing.service import BillingService
from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from core.tenancy import Principal
from tests.billing.conftest import SIRET_VERSAILLES, Setup, contract_for, history, paris

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def october(billing: BillingService, people: dict[str, Principal], configured: Setup) -> dict[str, uuid.UUID]:
    run = await billing.run_month(people["finance"], "2026-10")
    return {ref.number: ref.invoice_id for ref in run.outcome.issued} | {"run": run.id}


async def test_the_run_bills_exact_amounts(
    billing: BillingService, people: dict[str, Principal], configured: Setup, october: dict[str, uuid.UUID]
) -> None:
    runs = await billing.runs(people["admin"], october["run"], None, 1)
    outcome = runs[0].outcome
    assert {i.tenant_id for i in outcome.issued} == {configured.tenant("versailles"), configured.tenant("houdan")}
    # Mantes-la-Jolie has a camera in service and no contract: reported, not invoiced; the department is never invoiced.
    assert [(p.tenant_name, p.problem.split(",")[0]) for p in outcome.problems] == [
        ("Mantes-la-Jolie", "no contract this month")]
    versailles = next(i for i in outcome.issued if i.tenant_id == configured.tenant("versailles"))
    invoice = await billing.invoice(people["versailles"], versailles.invoice_id)
    lines = [(line.kind, line.quantity, line.net_amount) for line in invoice.lines]
    assert lines == [
        ("plan", Decimal(16), Decimal("61.94")),  # detection, 16-31 October: 120 * 16 / 31
        ("plan", Decimal(15), Decimal("43.55")),  # live, 1-15 October: 90 * 15 / 31
        ("plan", Decimal(1), Decimal("1.00")),  # recording, c5 added on the 31st at 15:00
        ("sla_credit", Decimal(-1), Decimal("-21.10")),  # 12 h down of 745 h: 98.39 %, 2 points, 20 % of 105.48
        ("detector_usage", Decimal(2), Decimal("1.00")),  # 2 h at 0.50
    ]
    assert invoice.total_ht == sum((line.net_amount for line in invoice.lines), Decimal(0)) == Decimal("86.39")
    assert invoice.total_vat == Decimal("17.28")
    assert invoice.total_ttc == Decimal("103.67")
    c4 = next(c for c in invoice.annex.cameras if c.camera_id == configured.camera("c4"))
    assert c4.availability == Decimal("98.39")
    assert c4.days_by_plan == {"live": 15, "detection": 16}
    assert invoice.annex.storage_gb_days == Decimal("120.4167")  # 10 GB from 20 October: 12 days and the DST hour
    assert invoice.buyer.siret == SIRET_VERSAILLES
    assert invoice.buyer.chorus_service_code == "SERV-VIDEO"
    houdan = next(i for i in outcome.issued if i.tenant_id == configured.tenant("houdan"))
    assert houdan.total_ttc == Decimal("36.00")  # 30 days (11 October suspended all day) of 31.00 / 31, + VAT


async def test_a_rerun_issues_nothing_new(
    billing: BillingService, people: dict[str, Principal], october: dict[str, uuid.UUID]
) -> None:
    again = await billing.run_month(people["admin"], "2026-10")
    assert again.outcome.issued == []
    assert sorted(i.number for i in again.outcome.already_issued) == sorted(k for k in october if k != "run")


async def test_a_month_not_ended_is_refused(billing: BillingService, people: dict[str, Principal]) -> None:
    with pytest.raises(MonthNotEnded) as refused:
        await billing.run_month(people["finance"], "2026-12")
    assert refused.value.field == "month"
    with pytest.raises(InvalidInput):
        await billing.run_month(people["finance"], "2026-13")


async def test_roles(billing: BillingService, people: dict[str, Principal], configured: Setup,
                     october: dict[str, uuid.UUID]) -> None:
    with pytest.raises(PermissionDenied):
        await billing.run_month(people["operator"], "2026-10")
    with pytest.raises(PermissionDenied):
        await billing.invoices(people["operator"], tenant_id=None, month=None, status=None, after=None, limit=10)
    with pytest.raises(PermissionDenied):
        await billing.run_month(people["versailles"], "2026-10")
    mine = await billing.invoices(people["versailles"], tenant_id=None, month="2026-10", status=None, after=None,
                                  limit=50)
    assert {i.tenant_id for i in mine} == {configured.tenant("versailles")}
    everyone = await billing.invoices(people["admin"], tenant_id=None, month="2026-10", status=None, after=None,
                                      limit=50)
    # The admin's scope excludes Houdan (recording only): billing rows reach it through the department.
    assert configured.tenant("houdan") in {i.tenant_id for i in everyone}
    houdan_invoice = next(i.id for i in everyone if i.tenant_id == configured.tenant("houdan"))
    with pytest.raises(NotFound):
        await billing.invoice(people["versailles"], houdan_invoice)


async def test_bad_siret_and_overlapping_contracts(
    billing: BillingService, people: dict[str, Principal], configured: Setup
) -> None:
    with pytest.raises(BadSiret) as bad:
        await billing.create_contract(people["admin"], contract_for(configured.tenant("mantes"), "CV-X",
                                                                    "21950127700013", date(2026, 1, 1)))
    assert bad.value.field == "buyer_siret"
    with pytest.raises(OverlappingContract):
        await billing.create_contract(people["admin"], contract_for(configured.tenant("versailles"), "CV-VERSAILLES-2",
                                                                    SIRET_VERSAILLES, date(2026, 12, 1)))
    with pytest.raises(InvalidInput):
        await billing.create_contract(people["admin"], contract_for(configured.tenant("departement"), "CV-D",
                                                                    SIRET_VERSAILLES, date(2026, 1, 1)))


async def test_the_past_cannot_be_repriced_or_replanned(
    billing: BillingService, people: dict[str, Principal], configured: Setup, october: dict[str, uuid.UUID]
) -> None:
    with pytest.raises(AlreadyInvoiced):
        await billing.add_price(people["admin"], configured.plans["live"],
                                PriceInput(effective_from=date(2026, 10, 20), monthly_price_ht="95.00"))
    with pytest.raises(AlreadyInvoiced):
        await billing.change_camera_plan(people["admin"], configured.contracts["versailles"], CameraPlanChange(
            camera_id=configured.camera("c5"), plan_id=configured.plans["live"], from_date=date(2026, 10, 31)))
    with pytest.raises(AlreadyInvoiced):
        await billing.update_contract(people["admin"], configured.contracts["versailles"],
                                      ContractUpdate(end_date=date(2026, 10, 15)))
    plan = await billing.add_price(people["admin"], configured.plans["live"],
                                   PriceInput(effective_from=date(2027, 1, 1), monthly_price_ht="95.00"))
    assert [p.monthly_price_ht for p in plan.prices] == [Decimal("90.00"), Decimal("95.00")]
    # The October invoice kept the price it was issued with.
    invoices = await billing.invoices(people["finance"], tenant_id=configured.tenant("versailles"), month="2026-10",
                                      status=None, after=None, limit=5)
    assert invoices[0].total_ttc == Decimal("103.67")


async def test_issued_invoices_are_immutable_in_the_database(
    app_pool: asyncpg.Pool, configured: Setup, october: dict[str, uuid.UUID]
) -> None:
    invoice_id = next(v for k, v in october.items() if k != "run")
    tenants = [configured.tenant("versailles"), configured.tenant("houdan")]
    for statement in (
        "UPDATE billing_invoices SET total_ht = 0 WHERE id = $1",
        "UPDATE billing_invoices SET number = 'F95-2026-999999' WHERE id = $1",
        "UPDATE billing_invoices SET status = 'draft' WHERE id = $1",
        "DELETE FROM billing_invoices WHERE id = $1",
        "UPDATE billing_invoice_lines SET net_amount = 0 WHERE invoice_id = $1",
        "DELETE FROM billing_invoice_lines WHERE invoice_id = $1",
        "INSERT INTO billing_invoice_lines (id, tenant_id, invoice_id, position, kind, description, quantity, "
        "unit_code, unit_price, net_amount, vat_rate) SELECT gen_random_uuid(), tenant_id, id, 99, 'plan', 'x', 1, "
        "'C62', 1, 1, 20 FROM billing_invoices WHERE id = $1",
    ):
        async with Database(app_pool).for_tenants(tenants, department_id=configured.seed.department_id) as conn:
            with pytest.raises(asyncpg.PostgresError) as refused:
                await conn.execute(statement, invoice_id)
            assert refused.value.sqlstate in ("VG202", "42501"), statement


async def test_registry_history_cannot_be_written_by_the_runtime_roles(
    app_pool: asyncpg.Pool, department_pool: asyncpg.Pool, configured: Setup
) -> None:
    statement = ("INSERT INTO camera_registry_events (tenant_id, camera_id, occurred_at, kind, status, name, "
                 "insee_code) VALUES ($1, $2, now(), 'removed', 'online', 'x', '78646')")
    async with Database(app_pool).for_tenants([configured.tenant("versailles")]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement, configured.tenant("versailles"), configured.camera("c4"))
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await department_pool.execute(statement, configured.tenant("versailles"), configured.camera("c4"))
    # Changing a camera writes it, through the trigger, whoever changes it.
    async with Database(app_pool).for_tenants([configured.tenant("versailles")]) as conn:
        await conn.execute("UPDATE cameras SET status = 'disabled' WHERE id = $1", configured.camera("c5"))
        await conn.execute("UPDATE cameras SET status = 'online' WHERE id = $1", configured.camera("c5"))
        kinds = await conn.fetch(
            "SELECT kind, status FROM billing_camera_registry_v WHERE camera_id = $1 AND occurred_at > now() - "
            "interval '1 minute' ORDER BY seq", configured.camera("c5"))
    assert [(k["kind"], k["status"]) for k in kinds][-2:] == [("status_changed", "disabled"),
                                                             ("status_changed", "online")]


async def test_a_camera_without_a_plan_holds_the_invoice_until_planned(
    billing: BillingService, people: dict[str, Principal], configured: Setup
) -> None:
    admin = people["admin"]
    await billing.change_camera_plan(admin, configured.contracts["versailles"], CameraPlanChange(
        camera_id=configured.camera("c5"), plan_id=None, from_date=date(2026, 11, 1)))
    held = await billing.run_month(people["finance"], "2026-11")
    assert configured.tenant("versailles") not in {i.tenant_id for i in held.outcome.issued}
    assert [(c.camera_id, c.days) for c in held.outcome.unplanned_cameras] == [(configured.camera("c5"), 30)]
    assert any("invoice held" in p.problem for p in held.outcome.problems)
    await billing.change_camera_plan(admin, configured.contracts["versailles"], CameraPlanChange(
        camera_id=configured.camera("c5"), plan_id=configured.plans["recording"], from_date=date(2026, 11, 1)))
    issued = await billing.run_month(people["finance"], "2026-11")
    assert [i.tenant_id for i in issued.outcome.issued] == [configured.tenant("versailles")]
    # Nothing rendered it yet: the tenant admin's first request renders and stores it inside the admin's own scope.
    (november,) = issued.outcome.issued
    name, pdf = await billing.invoice_document(people["versailles"], november.invoice_id)
    assert name == f"{november.number}.pdf"
    stored = await billing.invoice(people["versailles"], november.invoice_id)
    assert stored.document_sha256 == hashlib.sha256(pdf).hexdigest()


async def test_payments_and_statuses(
    billing: BillingService, people: dict[str, Principal], configured: Setup, october: dict[str, uuid.UUID]
) -> None:
    finance = people["finance"]
    (houdan,) = await billing.invoices(finance, tenant_id=configured.tenant("houdan"), month="2026-10", status=None,
                                      after=None, limit=5)
    sent = await billing.mark_sent(finance, houdan.id)
    assert sent.status == "sent"
    with pytest.raises(Conflict):
        await billing.mark_sent(finance, houdan.id)
    with pytest.raises(InvalidInput) as too_much:
        await billing.record_payment(finance, houdan.id, PaymentInput(amount="36.01", paid_on=date(2026, 11, 20),
                                                                      method="public_treasury"))
    assert too_much.value.field == "amount"
    part = await billing.record_payment(finance, houdan.id, PaymentInput(amount="20", paid_on=date(2026, 11, 20),
                                                                        method="public_treasury"))
    assert (part.status, part.paid_amount) == ("sent", Decimal("20.00"))
    paid = await billing.record_payment(finance, houdan.id, PaymentInput(amount="16.00", paid_on=date(2026, 11, 21),
                                                                        method="transfer", reference="VIR-1"))
    assert (paid.status, paid.paid_amount, len(paid.payments)) == ("paid", Decimal("36.00"), 2)
    with pytest.raises(PermissionDenied):
        await billing.record_payment(people["houdan"], houdan.id, PaymentInput(amount="1", paid_on=date(2026, 11, 21),
                                                                              method="transfer"))


async def test_a_credit_note_cancels_an_invoice_exactly_and_the_month_is_billed_again(
    billing: BillingService, people: dict[str, Principal], configured: Setup, october: dict[str, uuid.UUID]
) -> None:
    finance = people["finance"]
    (original,) = await billing.invoices(finance, tenant_id=configured.tenant("versailles"), month="2026-10",
                                         status="issued", after=None, limit=5)
    credit = await billing.issue_credit_note(finance, original.id, CreditNoteRequest(reason="Disponibilité recalculée"))
    assert credit.kind == "credit_note"
    assert credit.credit_of == original.id
    assert credit.credit_of_number == original.number
    assert (credit.total_ht, credit.total_vat, credit.total_ttc) == (original.total_ht, original.total_vat,
                                                                     original.total_ttc)
    assert [line.net_amount for line in credit.lines] == [
        line.net_amount for line in (await billing.invoice(finance, original.id)).lines]
    assert (await billing.invoice(finance, original.id)).status == "cancelled"
    with pytest.raises(Conflict):
        await billing.issue_credit_note(finance, original.id, CreditNoteRequest(reason="again"))
    with pytest.raises(Conflict):
        await billing.issue_credit_note(finance, credit.id, CreditNoteRequest(reason="a credit of a credit"))
    rerun = await billing.run_month(finance, "2026-10")
    (replacement,) = rerun.outcome.issued
    assert replacement.tenant_id == configured.tenant("versailles")
    assert replacement.number not in (original.number, credit.number)
    assert replacement.total_ttc == original.total_ttc


async def test_documents_are_factur_x_and_validate(
    billing: BillingService, people: dict[str, Principal], configured: Setup, october: dict[str, uuid.UUID]
) -> None:
    finance = people["finance"]
    ids = await billing.month_documents(configured.seed.department_id, billing_month("2026-10"))
    assert len(ids) >= 2
    stored = await billing.render_documents(configured.seed.department_id, ids)
    assert set(stored) == set(ids)
    for invoice_id in ids:
        invoice = await billing.invoice(finance, invoice_id)
        name, pdf = await billing.invoice_document(finance, invoice_id)
        assert name == f"{invoice.number}.pdf"
        assert pdf.startswith(b"%PDF-")
        reader = PdfReader(io.BytesIO(pdf))
        xmp = reader.xmp_metadata
        assert xmp is not None
        raw = xmp.stream.get_data().decode()
        # PDF/A-3b markers and the Factur-X profile (no veraPDF here: the markers, not full conformance).
        assert "<pdfaid:part>3</pdfaid:part>" in raw
        assert "<pdfaid:conformance>B</pdfaid:conformance>" in raw
        assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in raw
        assert "/OutputIntents" in reader.trailer["/Root"]
        assert hashlib.sha256(pdf).hexdigest() == invoice.document_sha256
        xml_name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
        assert xml_name == "factur-x.xml"
        validation.validate(xml)  # XSD and the EN 16931 schematron, run here
    # The tenant admin reads its own document; not another tenant's.
    tenants = {i: (await billing.invoice(finance, i)).tenant_id for i in ids}
    versailles_doc = next(i for i, tenant in tenants.items() if tenant == configured.tenant("versailles"))
    assert (await billing.invoice_document(people["versailles"], versailles_doc))[1].startswith(b"%PDF-")
    with pytest.raises(NotFound):
        await billing.invoice_document(people["houdan"], versailles_doc)
    name, archive = await billing.deposit(finance, "2026-10")
    assert name == "chorus-pro-2026-10.zip"
    with zipfile.ZipFile(io.BytesIO(archive)) as deposit:
        names = deposit.namelist()
        assert all(n.endswith(".pdf") for n in names)
        assert len(names) == len(ids)


def billing_month(text: str):  # type: ignore[no-untyped-def]
    from billing.metering import Month

    return Month.parse(text)


async def test_a_contract_ended_early_ends_its_cameras_plans(
    billing: BillingService, people: dict[str, Principal], configured: Setup, owner: asyncpg.Connection
) -> None:
    admin = people["admin"]
    mantes = await billing.create_contract(admin, contract_for(configured.tenant("mantes"), "CV-MANTES",
                                                                SIRET_VERSAILLES, date(2026, 5, 1)))
    await billing.change_camera_plan(admin, mantes.id, CameraPlanChange(
        camera_id=configured.camera("c6"), plan_id=configured.plans["recording"], from_date=date(2026, 5, 1)))
    ended = await billing.update_contract(admin, mantes.id, ContractUpdate(end_date=date(2026, 5, 20)))
    assert ended.end_date == date(2026, 5, 20)
    # Still in service after the contract's end and without a plan: the invoice is held, never partly free.
    held = await billing.run_month(people["finance"], "2026-05")
    assert [(c.camera_id, c.days) for c in held.outcome.unplanned_cameras] == [(configured.camera("c6"), 11)]
    # Suspended from the day after the contract's end (and back in service in June): May is billed.
    await history(owner, configured.tenant("mantes"), configured.camera("c6"), [
        (paris(2026, 5, 21), "status_changed", "disabled"), (paris(2026, 6, 1), "status_changed", "online")])
    run = await billing.run_month(people["finance"], "2026-05")
    (invoice,) = [i for i in run.outcome.issued if i.tenant_id == configured.tenant("mantes")]
    lines = (await billing.invoice(admin, invoice.invoice_id)).lines
    assert [(line.quantity, line.net_amount) for line in lines] == [(Decimal(20), Decimal("20.00"))]
    # After its end, the camera is in service without a contract: June is reported, not billed.
    june = await billing.run_month(people["finance"], "2026-06")
    assert configured.tenant("mantes") not in {i.tenant_id for i in june.outcome.issued}
