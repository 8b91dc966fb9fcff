"""Billing: issuer, plans, contracts, runs, invoices and payments, the Chorus Pro deposit, the mayor's report."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Controller, Response, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from billing.metering import MONTH_PATTERN
from billing.model import (
    CameraPlan,
    CameraPlanChange,
    Contract,
    ContractCreate,
    ContractUpdate,
    CreditNoteRequest,
    Invoice,
    InvoiceSummary,
    Issuer,
    IssuerInput,
    MonthlyReport,
    PaymentInput,
    Plan,
    PlanCreate,
    PriceInput,
    Run,
    RunRequest,
)

Month = Annotated[str, QueryParameter(pattern=MONTH_PATTERN, description="a calendar month, YYYY-MM")]
MonthFilter = Annotated[str | None, QueryParameter(pattern=MONTH_PATTERN, description="a billing month, YYYY-MM")]
Part = Annotated[int, QueryParameter(ge=1, le=1000, description="part of a deposit over 500 documents")]
InvoiceStatus = Literal["issued", "sent", "paid", "cancelled"]


def _file(name: str, data: bytes, media_type: str) -> Response[bytes]:
    return Response(
        content=data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"},
    )


class IssuerController(Controller):
    path = "/billing/issuer"
    tags = ["billing"]

    @get("/", summary="The body that issues the department's invoices")
    async def get_issuer(self, principal: PrincipalDep, services: ServicesDep) -> Issuer:
        return await services.billing.issuer(principal)

    @put("/", summary="Set the issuing body (department admin)")
    async def set_issuer(self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[IssuerInput]) -> Issuer:
        return await services.billing.set_issuer(principal, data)


class PlanController(Controller):
    path = "/billing/plans"
    tags = ["billing"]

    @get("/", summary="The department's plans with every price version")
    async def list_plans(self, principal: PrincipalDep, services: ServicesDep) -> list[Plan]:
        return await services.billing.plans(principal)

    @post("/", summary="Create a plan with its first price (department admin)")
    async def create_plan(self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[PlanCreate]) -> Plan:
        return await services.billing.create_plan(principal, data)

    @get("/{plan_id:uuid}", summary="Read a plan")
    async def get_plan(self, principal: PrincipalDep, services: ServicesDep, plan_id: FromPath[uuid.UUID]) -> Plan:
        return await services.billing.plan(principal, plan_id)

    @post("/{plan_id:uuid}/prices", summary="A new price from its date (409 when an issued invoice billed that day)")
    async def add_price(
        self, principal: PrincipalDep, services: ServicesDep, plan_id: FromPath[uuid.UUID], data: JSONBody[PriceInput]
    ) -> Plan:
        return await services.billing.add_price(principal, plan_id, data)


class ContractController(Controller):
    path = "/billing/contracts"
    tags = ["billing"]

    @get("/", summary="Contracts (conventions) visible to the caller")
    async def list_contracts(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        tenant_id: FromQuery[uuid.UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[Contract]:
        rows = await services.billing.contracts(principal, tenant_id, decode_cursor(cursor), limit + 1)
        return page_of(rows, limit, lambda c: c.id)

    @post("/", summary="Create a tenant's contract (409 when it overlaps another)")
    async def create_contract(
        self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[ContractCreate]
    ) -> Contract:
        return await services.billing.create_contract(principal, data)

    @get("/{contract_id:uuid}", summary="Read a contract")
    async def get_contract(
        self, principal: PrincipalDep, services: ServicesDep, contract_id: FromPath[uuid.UUID]
    ) -> Contract:
        return await services.billing.contract(principal, contract_id)

    @patch("/{contract_id:uuid}", summary="Change a contract's buyer, contact, SLA or end")
    async def update_contract(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        contract_id: FromPath[uuid.UUID],
        data: JSONBody[ContractUpdate],
    ) -> Contract:
        return await services.billing.update_contract(principal, contract_id, data)

    @get("/{contract_id:uuid}/cameras", summary="The plan of each camera under the contract, over time")
    async def camera_plans(
        self, principal: PrincipalDep, services: ServicesDep, contract_id: FromPath[uuid.UUID]
    ) -> list[CameraPlan]:
        return await services.billing.camera_plans(principal, contract_id)

    @post("/{contract_id:uuid}/cameras", summary="Bill a camera on a plan from a date (or take it off)")
    async def change_camera_plan(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        contract_id: FromPath[uuid.UUID],
        data: JSONBody[CameraPlanChange],
    ) -> list[CameraPlan]:
        return await services.billing.change_camera_plan(principal, contract_id, data)


class RunController(Controller):
    path = "/billing/runs"
    tags = ["billing"]

    @post("/", summary="Bill a month that has ended (idempotent: a rerun issues nothing new)")
    async def run_month(self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[RunRequest]) -> Run:
        return await services.billing.run_month(principal, data.month)

    @get("/", summary="Billing runs and what each did")
    async def list_runs(
        self, principal: PrincipalDep, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[Run]:
        rows = await services.billing.runs(principal, None, decode_cursor(cursor), limit + 1)
        return page_of(rows, limit, lambda r: r.id)

    @get("/{run_id:uuid}", summary="Read a run")
    async def get_run(self, principal: PrincipalDep, services: ServicesDep, run_id: FromPath[uuid.UUID]) -> Run:
        (run,) = await services.billing.runs(principal, run_id, None, 1)
        return run


class InvoiceController(Controller):
    path = "/billing/invoices"
    tags = ["billing"]

    @get("/", summary="Invoices and credit notes visible to the caller")
    async def list_invoices(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        tenant_id: FromQuery[uuid.UUID | None] = None,
        month: MonthFilter = None,
        status: FromQuery[InvoiceStatus | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[InvoiceSummary]:
        rows = await services.billing.invoices(
            principal, tenant_id=tenant_id, month=month, status=status, after=decode_cursor(cursor), limit=limit + 1
        )
        return page_of(rows, limit, lambda i: i.id)

    @get("/{invoice_id:uuid}", summary="Read an invoice or credit note, its lines, payments and annex")
    async def get_invoice(
        self, principal: PrincipalDep, services: ServicesDep, invoice_id: FromPath[uuid.UUID]
    ) -> Invoice:
        return await services.billing.invoice(principal, invoice_id)

    @get("/{invoice_id:uuid}/document", summary="The Factur-X PDF/A-3 (EN 16931)", media_type="application/pdf")
    async def document(
        self, principal: PrincipalDep, services: ServicesDep, invoice_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        name, data = await services.billing.invoice_document(principal, invoice_id)
        return _file(name, data, "application/pdf")

    @post("/{invoice_id:uuid}/sent", summary="Mark a document sent (deposited on Chorus Pro)", status_code=200)
    async def mark_sent(
        self, principal: PrincipalDep, services: ServicesDep, invoice_id: FromPath[uuid.UUID]
    ) -> Invoice:
        return await services.billing.mark_sent(principal, invoice_id)

    @post("/{invoice_id:uuid}/payments", summary="Record a payment (the invoice is paid once fully settled)")
    async def record_payment(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        invoice_id: FromPath[uuid.UUID],
        data: JSONBody[PaymentInput],
    ) -> Invoice:
        return await services.billing.record_payment(principal, invoice_id, data)

    @post("/{invoice_id:uuid}/credit-note", summary="Issue the credit note that cancels this invoice exactly")
    async def credit_note(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        invoice_id: FromPath[uuid.UUID],
        data: JSONBody[CreditNoteRequest],
    ) -> Invoice:
        return await services.billing.issue_credit_note(principal, invoice_id, data)


@get("/billing/deposit", tags=["billing"], summary="The month's Chorus Pro deposit: a ZIP of Factur-X PDFs",
     media_type="application/zip")
async def deposit(principal: PrincipalDep, services: ServicesDep, month: Month, part: Part = 1) -> Response[bytes]:
    name, data = await services.billing.deposit(principal, month, part)
    return _file(name, data, "application/zip")


class ReportController(Controller):
    path = "/billing/reports"
    tags = ["billing"]

    @get("/{tenant_id:uuid}", summary="The mayor's monthly report (the data of its PDF)")
    async def report(
        self, principal: PrincipalDep, services: ServicesDep, tenant_id: FromPath[uuid.UUID], month: Month
    ) -> MonthlyReport:
        return await services.billing.monthly_report(principal, tenant_id, month)

    @get("/{tenant_id:uuid}/document", summary="The mayor's monthly report as PDF", media_type="application/pdf")
    async def report_document(
        self, principal: PrincipalDep, services: ServicesDep, tenant_id: FromPath[uuid.UUID], month: Month
    ) -> Response[bytes]:
        name, data = await services.billing.monthly_report_pdf(principal, tenant_id, month)
        return _file(name, data, "application/pdf")


ROUTES = [IssuerController, PlanController, ContractController, RunController, InvoiceController, deposit,
          ReportController]
