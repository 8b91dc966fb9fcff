"""The mayor's portal: a commune's dashboard for a month and the accesses to its images (transparency)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, FromQuery, QueryParameter

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from billing.metering import MONTH_PATTERN
from health.commune import CommuneDashboard
from journal.image_accesses import ImageAccess

DashboardMonth = Annotated[str | None, QueryParameter(
    pattern=MONTH_PATTERN, description="a calendar month, YYYY-MM; the current one by default")]


class MayorController(Controller):
    path = "/tenants/{tenant_id:uuid}"
    tags = ["tenancy"]

    @get("/dashboard", summary="A tenant's cameras over a month: health now, availability so far, open tickets")
    async def dashboard(
        self, principal: PrincipalDep, services: ServicesDep, tenant_id: FromPath[uuid.UUID],
        month: DashboardMonth = None,
    ) -> CommuneDashboard:
        return await services.commune_dashboard.dashboard(principal, tenant_id, month)

    @get("/image-accesses", summary="Every journaled access to the tenant's images: who, camera, when, motive")
    async def image_accesses(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        tenant_id: FromPath[uuid.UUID],
        camera_id: FromQuery[uuid.UUID | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[ImageAccess]:
        rows = await services.image_accesses.page(principal, tenant_id, camera_id=camera_id, since=since,
                                                  until=until, after=decode_cursor(cursor), limit=limit + 1)
        return page_of(rows, limit, lambda access: access.id)


ROUTES = [MayorController]
