"""Forces: police nationale circonscriptions, gendarmerie brigades, polices municipales, SDIS."""

from __future__ import annotations

import uuid

from litestar import Controller, get, patch, post
from litestar.params import FromPath, JSONBody

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from tenants.model import Force, ForceCreate, ForceUpdate


class ForceController(Controller):
    path = "/forces"
    tags = ["forces"]

    @get("/", summary="List forces")
    async def list_forces(
        self, principal: PrincipalDep, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[Force]:
        rows = await services.tenancy.list_forces(principal, decode_cursor(cursor), limit + 1)
        return page_of(rows, limit, lambda f: f.id)

    @post("/", summary="Create a force and the communes it covers")
    async def create_force(self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[ForceCreate]) -> Force:
        return await services.tenancy.create_force(principal, data)

    @get("/{force_id:uuid}", summary="Read a force")
    async def get_force(self, principal: PrincipalDep, services: ServicesDep, force_id: FromPath[uuid.UUID]) -> Force:
        return await services.tenancy.get_force(principal, force_id)

    @patch("/{force_id:uuid}", summary="Change a force or its communes")
    async def update_force(
        self, principal: PrincipalDep, services: ServicesDep, force_id: FromPath[uuid.UUID], data: JSONBody[ForceUpdate]
    ) -> Force:
        return await services.tenancy.update_force(principal, force_id, data)


ROUTES = [ForceController]
