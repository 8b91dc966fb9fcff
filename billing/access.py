"""Who may do what in billing, and the transactions its use cases open (the base of BillingService's parts)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg

from billing.documents import DocumentRenderer, prepare_fonts
from billing.invoice_repository import InvoiceRepository
from billing.metering_repository import MeteringRepository
from billing.report_repository import ReportRepository
from billing.repository import CatalogueRepository
from billing.settings import BillingSettings
from core.db import Database
from core.errors import NotFound
from core.objectstore import ObjectStore
from core.tenancy import Principal, Role, require_role
from journal.service import JournalService

# * Department admins manage the catalogue and contracts, run billing, record payments and credit notes.
# * Finance runs billing, records payments, marks documents sent and issues credit notes; it sees no image (every media
# route refuses its role) and its scope is every member tenant of the department (identity.rules.scope_of).
# * Tenant admins read their own contract, invoices and reports (row-level security).
#
# Billing rows carry `department_id`, and their policies admit the department's staff through the department GUC, so a
# department admin bills communes that are not under live supervision without seeing their cameras. A request reads and
# writes them in its own transaction (`Database.transaction(principal)`); a department job (the CLI) in one over the
# department's GUC and no tenant (`_billing_rows`).
#
# The one place where a request acts for a tenant outside its token's scope is `_for_billed_tenant`: a department admin
# bills every member tenant of the department, supervised or not, but the admin's scope holds only the supervised ones
# (recording-only communes are billed, not watched). Where a use case needs another domain's data of such a tenant
# (metering in a run, the mayor's report, checking a camera put on a plan), it first reads the tenant through the
# admin's own transaction, where row-level security shows its department's directory and no other department's, and
# only then opens a transaction over that tenant and the admin's home tenant (`Database.for_tenants`). The same holds
# for finance should a tenant join after its sign-in (its scope is every member tenant as of then). A foreign or unknown
# tenant is NotFound; no billing path uses the RLS-bypassing role.
CATALOGUE_ADMINS = frozenset({Role.DEPARTMENT_ADMIN})
BILLING_RUNNERS = frozenset({Role.DEPARTMENT_ADMIN, Role.FINANCE})
BILLING_READERS = BILLING_RUNNERS | {Role.TENANT_ADMIN}
# Who acts in a use case shared with department jobs: a request's principal, or the id of the department a job bills.
Acting = Principal | uuid.UUID


class BillingBase:
    """State shared by the parts of BillingService; each part is one module of use cases."""

    def __init__(
        self,
        db: Database,
        journal: JournalService,
        store: ObjectStore,
        settings: BillingSettings | None = None,
        *,
        render_workers: int | None = None,
    ) -> None:
        self._db = db
        self._journal = journal
        self._store = store
        self._settings = settings or BillingSettings()
        self._catalogue = CatalogueRepository()
        self._invoices = InvoiceRepository()
        self._metering = MeteringRepository()
        self._reports = ReportRepository()
        self._render_workers = render_workers or self._settings.render_workers
        self._renderer: DocumentRenderer | None = None

    def renderer(self) -> DocumentRenderer:
        """Built on first use: preparing the font and spawning the pool cost nothing until a document is asked for."""
        if self._renderer is None:
            fonts = prepare_fonts(self._settings.font_source_dir, self._settings.font_cache_dir)
            self._renderer = DocumentRenderer(fonts, self._render_workers)
        return self._renderer

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()

    @staticmethod
    def _require(principal: Principal, roles: frozenset[Role], action: str) -> None:
        require_role(principal, roles, action)

    @staticmethod
    def _department_of(who: Acting) -> uuid.UUID:
        return who.department_id if isinstance(who, Principal) else who

    def _billing_rows(
        self, who: Acting, *, home_tenant_id: uuid.UUID | None = None, readonly: bool = False
    ) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """The department's billing rows: a request's own transaction (row-level security: its scope, and the
        department's rows for department staff), or a department job's over the department's GUC, with the department's
        own tenant when the job writes a journal line there."""
        if isinstance(who, Principal):
            return self._db.transaction(who, readonly=readonly)
        return self._db.for_tenants(() if home_tenant_id is None else [home_tenant_id], department_id=who,
                                    readonly=readonly)

    @asynccontextmanager
    async def _for_billed_tenant(
        self, who: Acting, tenant_id: uuid.UUID, *, readonly: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """A transaction that sees one billed tenant's data (and the principal's home tenant, where its journal goes).

        A principal whose scope holds the tenant (a tenant admin's own, any member tenant for finance, a supervised one
        for department staff) gets its own transaction. A department admin or finance acting on a member tenant outside
        that scope gets a transaction over the tenant and the home tenant, once the tenant was read through the
        principal's own transaction (row-level security: the department's directory) and found in its department;
        anyone else, or a tenant of no directory they see, is NotFound. A department job (`who` is a department id)
        gets the tenant with the department's GUC."""
        if not isinstance(who, Principal):
            async with self._db.for_tenants([tenant_id], department_id=who, readonly=readonly) as conn:
                yield conn
            return
        if who.scope.includes(tenant_id):
            async with self._db.transaction(who, readonly=readonly) as conn:
                yield conn
            return
        department_id = who.scope.department_id
        if who.role not in BILLING_RUNNERS or department_id is None:
            raise NotFound("no such tenant")
        async with self._db.transaction(who, readonly=True) as conn:
            tenant = await self._catalogue.tenant(conn, tenant_id)
        if tenant is None or tenant["department_id"] != department_id:
            raise NotFound("no such tenant")
        async with self._db.for_tenants(
            [tenant_id, who.home_tenant_id], department_id=department_id, readonly=readonly
        ) as conn:
            yield conn
