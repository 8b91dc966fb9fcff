"""Reading the access journal (tenant admins see their own cameras' lines)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from litestar import Controller, get
from litestar.params import FromQuery

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from core.tenancy import Role, require_role

JOURNAL_READERS = frozenset({Role.AUDITOR, Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.TENANT_ADMIN})


class JournalLine(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    position: int
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_role: str
    action: str
    target_type: str
    target_id: str | None
    camera_id: uuid.UUID | None
    range_start: datetime | None
    range_end: datetime | None
    motive: str | None
    recipient: str | None
    details: str
    hash: str


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
    ) -> Page[JournalLine]:
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
        lines = [
            JournalLine(
                **{**{f: getattr(e, f) for f in JournalLine.__struct_fields__ if f != "hash"}, "hash": e.hash.hex()}
            )
            for e in entries
        ]
        return page_of(lines, limit, lambda line: line.id)


ROUTES = [JournalController]
