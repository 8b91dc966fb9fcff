"""The monthly run: each member tenant billed in its own transaction, idempotently; documents rendered after."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from billing.access import BILLING_RUNNERS, Acting, BillingBase
from billing.errors import IssuerMissing, MonthNotEnded
from billing.issuing import buyer_party, invoice_lines, issue, seller_party
from billing.metering import Month, active_intervals
from billing.model import (
    Annex,
    AnnexCamera,
    Invoice,
    IssuedRef,
    Party,
    Run,
    RunOutcome,
    TenantProblem,
    UnplannedCamera,
)
from billing.rules import CameraInput, SlaTerms, build_draft
from core.errors import InvalidInput, NotFound, VigieError
from core.ids import new_id
from core.tenancy import Principal

# A run reads the department's directory, issuer and contracts as its caller may (a request in its own transaction, the
# CLI's department job through the department GUC), then opens one transaction per member tenant
# (`_for_billed_tenant`, billing.access), where it reads the tenant's registry history, outages and usage through the
# views, and issues. Two runs at once meet on the tenant's lock: the second finds the
# invoice issued and issues nothing; their numbers interleave on the counter without gap or duplicate.

# Invoices are kept ten years (Code de commerce L123-22): their stored documents are locked as long.
DOCUMENT_RETENTION = timedelta(days=3653)


@dataclass(frozen=True)
class _Context:
    department_id: uuid.UUID
    department_code: str
    seller: Party
    payment_days: int
    vat_rate: Decimal
    month: Month
    run_id: uuid.UUID
    actor: Principal | None


@dataclass
class _Collected:
    issued: list[IssuedRef] = field(default_factory=list)
    already: list[IssuedRef] = field(default_factory=list)
    unplanned: list[UnplannedCamera] = field(default_factory=list)
    problems: list[TenantProblem] = field(default_factory=list)
    nothing: int = 0


def parse_month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="month") from exc


class RunCases(BillingBase):
    async def run_month(self, principal: Principal, month: str) -> Run:
        self._require(principal, BILLING_RUNNERS, "run billing")
        return await self._run(principal, parse_month(month))

    async def run_department_month(self, department_code: str, month: str) -> Run:
        """The same run as a department job (the CLI): no principal, journaled as the system."""
        return await self._run(await self.department_id(department_code), parse_month(month))

    async def department_codes(self) -> list[str]:
        async with self._db.anonymous(readonly=True) as conn:
            return [code for _, code in await self._catalogue.departments(conn)]

    async def department_id(self, code: str) -> uuid.UUID:
        async with self._db.anonymous(readonly=True) as conn:
            found = await self._catalogue.department_by_code(conn, code)
        if found is None:
            raise NotFound(f"no department coded {code}")
        return found

    async def runs(
        self, principal: Principal, run_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
    ) -> list[Run]:
        self._require(principal, BILLING_RUNNERS, "read billing runs")
        async with self._db.transaction(principal, readonly=True) as conn:
            found = await self._invoices.runs(conn, run_id, after, limit)
        if run_id is not None and not found:
            raise NotFound("no such run")
        return found

    async def _run(self, who: Acting, month: Month) -> Run:
        if not month.ended(datetime.now(UTC)):
            raise MonthNotEnded(str(month))
        department_id = self._department_of(who)
        actor = who if isinstance(who, Principal) else None
        async with self._billing_rows(who, readonly=True) as conn:
            code = await self._catalogue.department_code(conn, department_id)
            issuer = await self._catalogue.issuer(conn, department_id)
            home = await self._catalogue.department_tenant(conn, department_id)
            tenants = await self._catalogue.member_tenants(conn, department_id)
        if issuer is None:
            raise IssuerMissing()
        assert code is not None
        assert home is not None
        context = _Context(department_id, code, seller_party(issuer), issuer.payment_days, self._settings.vat_rate,
                           month, new_id(), actor)
        async with self._billing_rows(who, home_tenant_id=home) as conn:
            await self._invoices.insert_run(conn, context.run_id, department_id, month.first_day,
                                            None if actor is None else actor.user_id)
        collected = _Collected()
        # A few tenants at once: their transactions only meet on the numbering counter, at their very end.
        gate = asyncio.Semaphore(max(1, min(4, self._db.pool_size - 1)))

        async def one(tenant: asyncpg.Record) -> None:
            async with gate:
                try:
                    async with self._for_billed_tenant(who, tenant["id"]) as conn:
                        await self._bill_tenant(conn, context, tenant, collected)
                except (VigieError, asyncpg.PostgresError) as exc:
                    collected.problems.append(TenantProblem(tenant_id=tenant["id"], tenant_name=tenant["name"],
                                                            problem=f"not billed: {exc}"))

        await asyncio.gather(*(one(t) for t in tenants))
        outcome = RunOutcome(
            issued=sorted(collected.issued, key=lambda i: i.number),
            already_issued=sorted(collected.already, key=lambda i: i.number),
            unplanned_cameras=collected.unplanned,
            problems=sorted(collected.problems, key=lambda p: p.tenant_name),
            nothing_to_bill=collected.nothing,
        )
        async with self._billing_rows(who, home_tenant_id=home) as conn:
            await self._invoices.finish_run(conn, context.run_id, outcome)
            await self._journal.note(conn, actor, "billing.run", ("billing_run", context.run_id), tenant_id=home,
                                     month=str(month), issued=len(outcome.issued),
                                     already_issued=len(outcome.already_issued), problems=len(outcome.problems),
                                     unplanned_cameras=len(outcome.unplanned_cameras))
            (run,) = await self._invoices.runs(conn, context.run_id, None, 1)
        return run

    async def _bill_tenant(
        self, conn: asyncpg.Connection, ctx: _Context, tenant: asyncpg.Record, collected: _Collected
    ) -> None:
        tenant_id, month = tenant["id"], ctx.month
        await self._catalogue.lock_tenant(conn, tenant_id)
        await self._catalogue.lock_catalogue_shared(conn, ctx.department_id)
        existing = await self._invoices.live_invoice(conn, tenant_id, month.first_day)
        if existing is not None:
            collected.already.append(existing)
            return
        registered = await self._metering.cameras(conn, tenant_id, month.end)
        contracts = await self._metering.contracts_in_month(conn, tenant_id, month.first_day, month.last_day)
        assignments = await self._metering.assignments(conn, tenant_id, month.first_day, month.last_day)
        outages = await self._metering.outages(conn, tenant_id, month.start, month.end)
        cameras = [
            CameraInput(c.camera_id, c.name, c.insee_code, active_intervals(c.events, month.end),
                        assignments.get(c.camera_id, []), outages.get(c.camera_id, []))
            for c in registered
        ]
        if not contracts:
            in_service = [c for c in cameras if c.intervals and any(
                i.clip(month.start, month.end) for i in c.intervals)]
            if in_service:
                collected.problems.append(TenantProblem(
                    tenant_id=tenant_id, tenant_name=tenant["name"],
                    problem=f"no contract this month, yet {len(in_service)} cameras in service: nothing issued"))
            else:
                collected.nothing += 1
            return
        contract = contracts[0]
        plans, prices = await self._metering.catalogue(conn, ctx.department_id, month.last_day)
        draft = build_draft(
            month, cameras, plans, prices,
            SlaTerms(contract["availability_target"], contract["sla_credit_percent_per_point"],
                     contract["sla_credit_cap_percent"]),
            detector_seconds=await self._metering.detector_seconds(conn, tenant_id, month.first_day, month.last_day),
            storage_gb_days=await self._metering.storage_gb_days(conn, tenant_id, month.start, month.end),
        )
        # Never silently free: a camera in service without a plan, or a plan without a price, holds the invoice
        # until the contract or the catalogue says what it costs; a rerun then issues it.
        if draft.unplanned or draft.missing_prices:
            collected.unplanned.extend(
                UnplannedCamera(tenant_id=tenant_id, camera_id=c.camera_id, name=c.name, days=c.unplanned_days)
                for c in draft.unplanned)
            reasons = [f"{len(draft.unplanned)} cameras without a plan"] if draft.unplanned else []
            reasons += [f"no price in force for plan {code}" for code in draft.missing_prices]
            collected.problems.append(TenantProblem(tenant_id=tenant_id, tenant_name=tenant["name"],
                                                    problem="invoice held: " + "; ".join(reasons)))
            return
        if not draft.lines:
            collected.nothing += 1
            return
        annex = Annex(
            days_in_month=month.days,
            cameras=[AnnexCamera(camera_id=c.camera_id, name=c.name, insee_code=c.insee_code,
                                 days_by_plan=c.days_by_plan, unplanned_days=c.unplanned_days,
                                 availability=c.availability, credit=c.credit) for c in draft.cameras],
            detector_hours=draft.detector_hours,
            storage_gb_days=draft.storage_gb_days,
        )
        issued = await issue(
            conn, self._invoices, department_id=ctx.department_id, department_code=ctx.department_code,
            tenant_id=tenant_id, kind="invoice", month=month, contract_id=contract["id"],
            buyer=buyer_party(contract), seller=ctx.seller, lines=invoice_lines(draft.lines, ctx.vat_rate),
            annex=annex, vat_rate=ctx.vat_rate, payment_days=ctx.payment_days, run_id=ctx.run_id,
        )
        await self._journal.note(conn, ctx.actor, "billing.invoice.issue", ("billing_invoice", issued.invoice_id),
                                 tenant_id=tenant_id, number=issued.number, month=str(month),
                                 total_ttc=issued.total_ttc, run_id=ctx.run_id)
        collected.issued.append(issued)

    # --- documents
    async def month_documents(self, who: Acting, month: Month) -> list[uuid.UUID]:
        """Invoices and credit notes of a billing month, in number order."""
        async with self._billing_rows(who, readonly=True) as conn:
            return await self._invoices.period_documents(conn, self._department_of(who), month.first_day)

    async def render_documents(self, who: Acting, invoice_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        """Renders and stores those of the documents not stored yet; returns the ones this call stored.

        Pipelined: each document is stored as soon as its process hands it back, while the others render, so the
        cores never wait on the store's fsyncs."""
        async with self._billing_rows(who, readonly=True) as conn:
            invoices = [i for i in [await self._invoices.invoice(conn, x) for x in invoice_ids]
                        if i is not None and i.document_sha256 is None]
        renderer = self.renderer()
        # Enough in flight to keep every process busy, few enough to bound memory on a large month.
        gate = asyncio.Semaphore(renderer.workers * 4)
        spaces: set[uuid.UUID] = set()
        records: list[tuple[uuid.UUID, str, str]] = []

        async def one(invoice: Invoice) -> None:
            async with gate:
                (document,) = await renderer.render([invoice])
            key = f"billing/{invoice.issue_date.year}/{invoice.number}.pdf"
            if invoice.tenant_id not in spaces:
                spaces.add(invoice.tenant_id)
                await self._store.ensure_tenant_space(invoice.tenant_id)
            await self._store.put(invoice.tenant_id, key, document.pdf, content_type="application/pdf",
                                  retain_until=invoice.issued_at + DOCUMENT_RETENTION)
            records.append((invoice.id, key, document.sha256))

        await asyncio.gather(*(one(i) for i in invoices))
        stored: list[uuid.UUID] = []
        async with self._billing_rows(who) as conn:
            for invoice_id, key, sha256 in records:
                if await self._invoices.set_document(conn, invoice_id, key, sha256):
                    stored.append(invoice_id)
        return stored
