"""Who may do what in billing, and the transactions its use cases open (the base of BillingService's parts)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
# route refuses its role) and its scope is every member tenant of the department.
# * Tenant admins read their own contract, invoices and reports (row-level security).
#
# Billing rows carry `department_id`, and their policies admit the department's staff through the department GUC, so a
# department admin bills communes that are not under live supervision without seeing their cameras. Where a use case
# needs another domain's data of one billed tenant (metering, the mayor's report), it opens a transaction for that
# tenant only (`Database.for_tenants`), after checking the tenant belongs to the principal's department.
CATALOGUE_ADMINS = frozenset({Role.DEPARTMENT_ADMIN})
BILLING_RUNNERS = frozenset({Role.DEPARTMENT_ADMIN, Role.FINANCE})
BILLING_READERS = BILLING_RUNNERS | {Role.TENANT_ADMIN}


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

    @asynccontextmanager
    async def _for_billed_tenant(
        self, principal: Principal, tenant_id: uuid.UUID, *, readonly: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """A transaction over one billed tenant and the principal's home tenant (where its journal goes).

        A tenant admin gets their own scope; department staff get the tenant once the directory confirms it is a
        member of their department (a foreign or unknown tenant is NotFound, like any object out of scope)."""
        if principal.role is Role.TENANT_ADMIN:
            if tenant_id != principal.home_tenant_id:
                raise NotFound("no such tenant")
            async with self._db.transaction(principal, readonly=readonly) as conn:
                yield conn
            return
        async with self._db.transaction(principal, readonly=True) as conn:
            tenant = await self._catalogue.tenant(conn, tenant_id)
        if tenant is None or tenant["department_id"] != principal.department_id:
            raise NotFound("no such tenant")
        async with self._db.for_tenants(
            [tenant_id, principal.home_tenant_id], department_id=principal.department_id, readonly=readonly
        ) as conn:
            yield conn
