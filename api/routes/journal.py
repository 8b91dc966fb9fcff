"""Reading the access journal (tenant admins see their own cameras' lines)."""

from __future__ import annotations

import uuid
from datetime import datetime

from litestar import Controller, get
from litestar.params import FromQuery

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from core.tenancy import Role, require_role
from journal.model import JournalEntry

JOURNAL_READERS = frozenset({Role.AUDITOR, Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.TENANT_ADMIN})


class JournalController(Controller):
    path = "/journal"
    tags = ["journal"]

    @get("/", summary="Journal lines in scope, newest first")
    async def list_journal(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        camera_id: FromQuery[uuid.UUID | None] = None,
        tenant_id: FromQuery[uuid.UUID | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[JournalEntry]:
        require_role(principal, JOURNAL_READERS, "read the access journal")
        async with services.db.transaction(principal, readonly=True) as conn:
            entries = await services.journal.page(
                conn,
                camera_id=camera_id,
                tenant_id=tenant_id,
                since=since,
                until=until,
                after=decode_cursor(cursor),
                limit=limit + 1,
            )
        return page_of(entries, limit, lambda entry: entry.id)


ROUTES = [JournalController]
