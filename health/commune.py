"""A commune's cameras over a month for its mayor: health now, availability measured so far, tickets still open."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from core.db import Database
from core.errors import InvalidInput, NotFound
from core.tenancy import Principal, Role, require_role

PARIS = ZoneInfo("Europe/Paris")
# The commune's own admin, and the department staff who answer for the service to it.
DASHBOARD_READERS = frozenset({Role.TENANT_ADMIN, Role.DEPARTMENT_ADMIN, Role.AUDITOR})


class CameraMonth(msgspec.Struct, frozen=True, kw_only=True):
    """One camera: where it is, its health now, and over the month's days observed so far how long it was available
    (online or degraded) out of how long its health was known. `availability` is None when nothing was observed."""

    camera_id: uuid.UUID
    name: str
    site_name: str
    insee_code: str
    status: str
    health_state: str | None
    health_since: datetime | None
    observed_s: float
    available_s: float
    availability: float | None
    open_tickets: int


class CommuneDashboard(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: uuid.UUID
    tenant_name: str
    month: str
    first_day: date
    # The last day counted: the month's last, or today while the month runs.
    last_day: date
    observed_s: float
    available_s: float
    availability: float | None
    cameras: list[CameraMonth]


def percent(available_s: float, observed_s: float) -> float | None:
    """Availability in percent to 0.01, over observed time only: an unobserved hour counts neither way."""
    if observed_s <= 0:
        return None
    return round(100 * min(available_s, observed_s) / observed_s, 2)


def month_days(month: str, today: date) -> tuple[date, date]:
    """The month's first day and its last counted day; a month not started yet is refused on the `month` field."""
    try:
        first = date(int(month[:4]), int(month[5:7]), 1)
    except ValueError as exc:
        raise InvalidInput(f"{month} is not a month (YYYY-MM)", field="month") from exc
    if len(month) != 7 or month[4] != "-":
        raise InvalidInput(f"{month} is not a month (YYYY-MM)", field="month")
    if first > today:
        raise InvalidInput(f"{month} has not started yet", field="month")
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, min(following - timedelta(days=1), today)


class CommuneDashboardRepository:
    async def tenant_name(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> str | None:
        name: str | None = await conn.fetchval("SELECT name FROM tenants WHERE id = $1", tenant_id)
        return name

    async def cameras(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, first: date,
                      last: date) -> list[asyncpg.Record]:
        return list(await conn.fetch(
            "SELECT c.id, c.name, s.name AS site_name, c.insee_code, c.status, h.state, h.since, "
            "  coalesce(a.observed_s, 0) AS observed_s, coalesce(a.available_s, 0) AS available_s, "
            "  (SELECT count(*) FROM maintenance_tickets m WHERE m.camera_id = c.id AND m.state <> 'resolved') "
            "    AS open_tickets "
            "FROM cameras c JOIN sites s ON s.id = c.site_id AND s.tenant_id = c.tenant_id "
            "LEFT JOIN camera_health h ON h.camera_id = c.id "
            "LEFT JOIN (SELECT camera_id, sum(observed_s) AS observed_s, sum(available_s) AS available_s "
            "           FROM camera_availability_v WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 "
            "           GROUP BY camera_id) a ON a.camera_id = c.id "
            "WHERE c.tenant_id = $1 ORDER BY c.insee_code, s.name, c.name", tenant_id, first, last))


class CommuneDashboardService:
    def __init__(self, db: Database, repository: CommuneDashboardRepository | None = None) -> None:
        self._db = db
        self._repo = repository or CommuneDashboardRepository()

    async def dashboard(self, principal: Principal, tenant_id: uuid.UUID, month: str | None = None) -> CommuneDashboard:
        require_role(principal, DASHBOARD_READERS, "read a commune's dashboard")
        today = datetime.now(UTC).astimezone(PARIS).date()
        month = month or f"{today:%Y-%m}"
        first, last = month_days(month, today)
        # The tenant directory is readable department-wide: scope decides, so a neighbour's id is simply unknown.
        if not principal.scope.includes(tenant_id):
            raise NotFound("no such tenant")
        async with self._db.transaction(principal, readonly=True) as conn:
            name = await self._repo.tenant_name(conn, tenant_id)
            if name is None:
                raise NotFound("no such tenant")
            rows = await self._repo.cameras(conn, tenant_id, first, last)
        cameras = [CameraMonth(
            camera_id=r["id"], name=r["name"], site_name=r["site_name"], insee_code=r["insee_code"],
            status=r["status"], health_state=r["state"], health_since=r["since"], observed_s=float(r["observed_s"]),
            available_s=float(r["available_s"]), availability=percent(float(r["available_s"]), float(r["observed_s"])),
            open_tickets=int(r["open_tickets"])) for r in rows]
        observed = sum(c.observed_s for c in cameras)
        available = sum(c.available_s for c in cameras)
        return CommuneDashboard(tenant_id=tenant_id, tenant_name=name, month=month, first_day=first, last_day=last,
                                observed_s=observed, available_s=available, availability=percent(available, observed),
                                cameras=cameras)
