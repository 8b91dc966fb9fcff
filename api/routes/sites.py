"""Sites (collèges, town halls, public spaces) of a tenant."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from tenants.model import Site, SiteCreate, SiteUpdate


class SiteController(Controller):
    path = "/"
    tags = ["tenancy"]

    @get("/sites", summary="List sites in scope, optionally of one tenant")
    async def list_sites(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        tenant_id: FromQuery[uuid.UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[Site]:
        rows = await services.tenancy.list_sites(principal, tenant_id, decode_cursor(cursor), limit + 1)
        return page_of(rows, limit, lambda s: s.id)

    @post("/tenants/{tenant_id:uuid}/sites", summary="Create a site in a tenant")
    async def create_site(
        self, principal: PrincipalDep, services: ServicesDep, tenant_id: FromPath[uuid.UUID], data: JSONBody[SiteCreate]
    ) -> Site:
        return await services.tenancy.create_site(principal, tenant_id, data)

    @get("/sites/{site_id:uuid}", summary="Read a site")
    async def get_site(self, principal: PrincipalDep, services: ServicesDep, site_id: FromPath[uuid.UUID]) -> Site:
        return await services.tenancy.get_site(principal, site_id)

    @patch("/sites/{site_id:uuid}", summary="Change a site")
    async def update_site(
        self, principal: PrincipalDep, services: ServicesDep, site_id: FromPath[uuid.UUID], data: JSONBody[SiteUpdate]
    ) -> Site:
        return await services.tenancy.update_site(principal, site_id, data)

    @delete("/sites/{site_id:uuid}", summary="Delete a site without cameras")
    async def delete_site(self, principal: PrincipalDep, services: ServicesDep, site_id: FromPath[uuid.UUID]) -> None:
        await services.tenancy.delete_site(principal, site_id)


ROUTES = [SiteController]
