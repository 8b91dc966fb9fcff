"""Transparency for a tenant: every journaled access to its cameras' images, with who, which camera, when, why."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from core.db import Database
from core.errors import InvalidInput, NotFound
from core.tenancy import Principal, Role, require_role
from journal.rules import MEDIA_ACTIONS

# The commune's admin reads its own; the department's admins and auditors answer for every tenant in their scope.
IMAGE_ACCESS_READERS = frozenset({Role.TENANT_ADMIN, Role.DEPARTMENT_ADMIN, Role.AUDITOR})


class ImageAccess(msgspec.Struct, frozen=True, kw_only=True):
    """One journaled image access (live, playback, snapshot, clip or export): the person as the platform knows them,
    the role they acted in, the camera, the recorded range where there is one, and the motive they gave."""

    id: uuid.UUID
    occurred_at: datetime
    action: str
    actor_user_id: uuid.UUID | None
    actor_name: str | None
    actor_role: str
    camera_id: uuid.UUID | None
    camera_name: str | None
    range_start: datetime | None
    range_end: datetime | None
    motive: str | None


class ImageAccessRepository:
    async def page(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, *, camera_id: uuid.UUID | None,
                   since: datetime | None, until: datetime | None, after: uuid.UUID | None,
                   limit: int) -> list[ImageAccess]:
        rows = await conn.fetch(
            "SELECT j.id, j.occurred_at, j.action, j.actor_user_id, u.display_name AS actor_name, j.actor_role, "
            "  j.camera_id, c.name AS camera_name, j.range_start, j.range_end, j.motive "
            "FROM access_journal j "
            "LEFT JOIN cameras c ON c.id = j.camera_id AND c.tenant_id = j.tenant_id "
            "LEFT JOIN users u ON u.id = j.actor_user_id "
            "WHERE j.tenant_id = $1 AND j.action = ANY($2::text[]) "
            "AND ($3::uuid IS NULL OR j.camera_id = $3) "
            "AND ($4::timestamptz IS NULL OR j.occurred_at >= $4) AND ($5::timestamptz IS NULL OR j.occurred_at < $5) "
            "AND ($6::uuid IS NULL OR j.id < $6) ORDER BY j.id DESC LIMIT $7",
            tenant_id, sorted(MEDIA_ACTIONS), camera_id, since, until, after, limit)
        return [ImageAccess(**dict(r)) for r in rows]


class ImageAccessService:
    def __init__(self, db: Database, repository: ImageAccessRepository | None = None) -> None:
        self._db = db
        self._repo = repository or ImageAccessRepository()

    async def page(self, principal: Principal, tenant_id: uuid.UUID, *, camera_id: uuid.UUID | None = None,
                   since: datetime | None = None, until: datetime | None = None, after: uuid.UUID | None = None,
                   limit: int = 50) -> list[ImageAccess]:
        require_role(principal, IMAGE_ACCESS_READERS, "read the accesses to a tenant's images")
        if since is not None and until is not None and until <= since:
            raise InvalidInput("the period ends before it starts", field="until")
        # Row-level security hides other tenants' lines anyway; an id outside the scope is answered as unknown.
        if not principal.scope.includes(tenant_id):
            raise NotFound("no such tenant")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.page(conn, tenant_id, camera_id=camera_id, since=since, until=until,
                                         after=after, limit=limit)
