"""Tenants of the department: communes, EPCI and the department's own sites."""

from __future__ import annotations

import uuid

from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from tenants.model import Commune, Tenant, TenantCreate, TenantUpdate


class TenantController(Controller):
    path = "/tenants"
    tags = ["tenancy"]

    @get("/", summary="List tenants visible to the caller")
    async def list_tenants(
        self, principal: PrincipalDep, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[Tenant]:
        rows = await services.tenancy.list_tenants(principal, decode_cursor(cursor), limit + 1)
        return page_of(rows, limit, lambda t: t.id)

    @post("/", summary="Create a tenant (department admin)")
    async def create_tenant(
        self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[TenantCreate]
    ) -> Tenant:
        return await services.tenancy.create_tenant(principal, data)

    @get("/{tenant_id:uuid}", summary="Read a tenant")
    async def get_tenant(
        self, principal: PrincipalDep, services: ServicesDep, tenant_id: FromPath[uuid.UUID]
    ) -> Tenant:
        return await services.tenancy.get_tenant(principal, tenant_id)

    @patch("/{tenant_id:uuid}", summary="Change a tenant's settings")
    async def update_tenant(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[TenantUpdate],
    ) -> Tenant:
        return await services.tenancy.update_tenant(principal, tenant_id, data)


class CommuneController(Controller):
    path = "/communes"
    tags = ["tenancy"]

    @get("/", summary="The commune list (INSEE codes)")
    async def list_communes(
        self, principal: PrincipalDep, services: ServicesDep, department_code: FromQuery[str | None] = None
    ) -> list[Commune]:
        return await services.tenancy.communes(principal, department_code)


ROUTES = [TenantController, CommuneController]
