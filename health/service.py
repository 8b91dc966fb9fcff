"""Use cases of camera health for the console: a camera's health with its history and availability, and the
maintenance tickets (list, acknowledge, resolve). Each runs in one scoped transaction; changes are journaled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.db import Database
from core.errors import Conflict, NotFound
from core.tenancy import STAFF_READERS, Principal, Role, require_role
from health.model import CameraHealth, MaintenanceTicket
from health.repository import HealthRepository
from journal.service import JournalService

# Who takes a ticket in hand or closes it: the CSU and the tenant's admin (their maintainer works for them).
TICKET_HANDLERS = frozenset({Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.TENANT_ADMIN})


class HealthService:
    def __init__(self, db: Database, journal: JournalService | None = None,
                 repository: HealthRepository | None = None) -> None:
        self._db = db
        self._journal = journal or JournalService()
        self._repo = repository or HealthRepository()

    async def camera_health(self, principal: Principal, camera_id: uuid.UUID, *, history: int = 100,
                            days: int = 30) -> CameraHealth:
        """The camera's state now, each watcher's view, its latest transitions and its availability per day."""
        require_role(principal, STAFF_READERS, "read camera health")
        today = datetime.now(ZoneInfo("Europe/Paris")).date()
        async with self._db.transaction(principal, readonly=True) as conn:
            tenant_id = await self._repo.camera_tenant(conn, camera_id)
            if tenant_id is None:
                raise NotFound("no such camera")
            current = await self._repo.current(conn, camera_id)
            return CameraHealth(
                camera_id=camera_id, tenant_id=tenant_id,
                state=None if current is None else current["state"],
                since=None if current is None else current["since"],
                detail=None if current is None else current["detail"],
                signals=await self._repo.signals(conn, camera_id),
                history=await self._repo.history(conn, camera_id, history),
                availability=await self._repo.availability(conn, camera_id, today - timedelta(days=days - 1), today))

    async def tickets(self, principal: Principal, *, state: str | None = None, camera_id: uuid.UUID | None = None,
                      limit: int = 100) -> list[MaintenanceTicket]:
        require_role(principal, STAFF_READERS, "read maintenance tickets")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.tickets(conn, state=state, camera_id=camera_id, limit=limit)

    async def ticket(self, principal: Principal, ticket_id: uuid.UUID) -> MaintenanceTicket:
        require_role(principal, STAFF_READERS, "read maintenance tickets")
        async with self._db.transaction(principal, readonly=True) as conn:
            found = await self._repo.ticket(conn, ticket_id)
        if found is None:
            raise NotFound("no such maintenance ticket")
        return found

    async def acknowledge(self, principal: Principal, ticket_id: uuid.UUID) -> MaintenanceTicket:
        """Take an open ticket in hand (Conflict when it is not open any more)."""
        require_role(principal, TICKET_HANDLERS, "acknowledge maintenance tickets")
        async with self._db.transaction(principal) as conn:
            found = await self._repo.ticket(conn, ticket_id)
            if found is None:
                raise NotFound("no such maintenance ticket")
            if not await self._repo.acknowledge(conn, ticket_id, principal.user_id):
                raise Conflict(f"this ticket is {found.state}, not open")
            await self._journal.note(conn, principal, "maintenance.acknowledge", ("maintenance_ticket", ticket_id),
                                     tenant_id=found.tenant_id, camera_id=found.camera_id)
            updated = await self._repo.ticket(conn, ticket_id)
        assert updated is not None
        return updated

    async def resolve(self, principal: Principal, ticket_id: uuid.UUID, note: str) -> MaintenanceTicket:
        """Close a ticket with what was done (Conflict when it is already resolved)."""
        require_role(principal, TICKET_HANDLERS, "resolve maintenance tickets")
        async with self._db.transaction(principal) as conn:
            found = await self._repo.ticket(conn, ticket_id)
            if found is None:
                raise NotFound("no such maintenance ticket")
            if not await self._repo.resolve(conn, ticket_id, principal.user_id, note.strip() or note):
                raise Conflict("this ticket is already resolved")
            await self._journal.note(conn, principal, "maintenance.resolve", ("maintenance_ticket", ticket_id),
                                     tenant_id=found.tenant_id, camera_id=found.camera_id,
                                     resolved_at=datetime.now(UTC).isoformat())
            updated = await self._repo.ticket(conn, ticket_id)
        assert updated is not None
        return updated
