"""Use cases of the department directory (communes, tenants, sites, forces): each runs in one tenant-scoped transaction
and journals what it changes."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import new_id
from core.tenancy import DEPARTMENT_ADMINS, STAFF_READERS, TENANCY_WRITERS, Principal, require_role
from journal.service import JournalService
from tenants import rules
from tenants.errors import DuplicateName, UnknownCommune
from tenants.model import (
    Commune,
    Force,
    ForceCreate,
    ForceUpdate,
    Site,
    SiteCreate,
    SiteUpdate,
    Tenant,
    TenantCreate,
    TenantUpdate,
    fields_set,
)
from tenants.repository import TenancyRepository


class TenancyService:
    """Communes, tenants, sites and forces, as seen by one principal."""

    def __init__(
        self,
        db: Database,
        journal: JournalService | None = None,
        repository: TenancyRepository | None = None,
    ) -> None:
        self._db = db
        self._journal = journal or JournalService()
        self._repo = repository or TenancyRepository()

    # --- communes
    async def communes(self, principal: Principal, department_code: str | None) -> list[Commune]:
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.communes(conn, department_code)

    async def _require_commune(self, conn: asyncpg.Connection, code: str, field: str = "insee_code") -> None:
        rules.check_insee_format(code, field=field)
        if await self._repo.commune(conn, code) is None:
            raise UnknownCommune(code, field)

    # --- tenants
    async def list_tenants(self, principal: Principal, after: uuid.UUID | None, limit: int) -> list[Tenant]:
        require_role(principal, STAFF_READERS, "list tenants")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.tenants(conn, after, limit)

    async def get_tenant(self, principal: Principal, tenant_id: uuid.UUID) -> Tenant:
        require_role(principal, STAFF_READERS, "read tenants")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._tenant(conn, tenant_id)

    async def _tenant(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> Tenant:
        tenant = await self._repo.tenant(conn, tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        return tenant

    async def create_tenant(self, principal: Principal, data: TenantCreate) -> Tenant:
        require_role(principal, DEPARTMENT_ADMINS, "create tenants")
        rules.check_retention_days(data.retention_days, field="retention_days")
        if data.kind == "commune" and data.insee_code is None:
            raise InvalidInput("a commune needs its INSEE code", field="insee_code")
        if data.kind != "commune" and data.insee_code is not None:
            raise InvalidInput("only a commune has an INSEE code", field="insee_code")
        async with self._db.transaction(principal) as conn:
            if data.insee_code is not None:
                await self._require_commune(conn, data.insee_code)
            values = {"id": new_id(), "department_id": principal.department_id, **msgspec.structs.asdict(data)}
            try:
                tenant = await self._repo.insert_tenant(conn, values)
            except asyncpg.UniqueViolationError as exc:
                raise Conflict("a tenant with this name or INSEE code already exists") from exc
            await self._journal.note(
                conn, principal, "tenant.create", ("tenant", tenant.id),
                tenant_id=_journal_tenant(principal, tenant.id), name=tenant.name,
            )
        return tenant

    async def update_tenant(self, principal: Principal, tenant_id: uuid.UUID, data: TenantUpdate) -> Tenant:
        require_role(principal, TENANCY_WRITERS, "change tenants")
        values = fields_set(data)
        if "retention_days" in values:
            rules.check_retention_days(values["retention_days"], field="retention_days")
        department_only = {"subscription_status", "live_supervision", "name"} & values.keys()
        if department_only and principal.role not in DEPARTMENT_ADMINS:
            raise InvalidInput(
                f"only the department changes {sorted(department_only)}", field=sorted(department_only)[0]
            )
        async with self._db.transaction(principal) as conn:
            await self._tenant(conn, tenant_id)
            if not values:
                return await self._tenant(conn, tenant_id)
            try:
                tenant = await self._repo.update_tenant(conn, tenant_id, values)
            except asyncpg.UniqueViolationError as exc:
                raise Conflict("a tenant with this name already exists") from exc
            if tenant is None:
                raise NotFound("no such tenant")
            await self._journal.note(
                conn, principal, "tenant.update", ("tenant", tenant_id),
                tenant_id=_journal_tenant(principal, tenant_id), **_jsonable(values),
            )
        return tenant

    # --- sites
    async def list_sites(
        self, principal: Principal, tenant_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
    ) -> list[Site]:
        require_role(principal, STAFF_READERS, "list sites")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.sites(conn, tenant_id, after, limit)

    async def get_site(self, principal: Principal, site_id: uuid.UUID) -> Site:
        require_role(principal, STAFF_READERS, "read sites")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._site(conn, site_id)

    async def _site(self, conn: asyncpg.Connection, site_id: uuid.UUID) -> Site:
        site = await self._repo.site(conn, site_id)
        if site is None:
            raise NotFound("no such site")
        return site

    async def create_site(self, principal: Principal, tenant_id: uuid.UUID, data: SiteCreate) -> Site:
        require_role(principal, TENANCY_WRITERS, "create sites")
        async with self._db.transaction(principal) as conn:
            await self._tenant_in_scope(principal, conn, tenant_id)
            await self._require_commune(conn, data.insee_code)
            values = {"id": new_id(), "tenant_id": tenant_id, **msgspec.structs.asdict(data)}
            try:
                site = await self._repo.insert_site(conn, values)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateName("site", data.name) from exc
            await self._journal.note(
                conn, principal, "site.create", ("site", site.id), tenant_id=tenant_id, name=site.name
            )
        return site

    async def _tenant_in_scope(self, principal: Principal, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> None:
        # The directory is readable department-wide; writing under a tenant needs it in the principal's scope.
        if not principal.scope.includes(tenant_id) or await self._repo.tenant(conn, tenant_id) is None:
            raise NotFound("no such tenant")

    async def update_site(self, principal: Principal, site_id: uuid.UUID, data: SiteUpdate) -> Site:
        require_role(principal, TENANCY_WRITERS, "change sites")
        values = fields_set(data)
        async with self._db.transaction(principal) as conn:
            site = await self._site(conn, site_id)
            if not values:
                return site
            try:
                updated = await self._repo.update_site(conn, site_id, values)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateName("site", str(values.get("name"))) from exc
            assert updated is not None
            await self._journal.note(
                conn, principal, "site.update", ("site", site_id), tenant_id=site.tenant_id, **_jsonable(values)
            )
        return updated

    async def delete_site(self, principal: Principal, site_id: uuid.UUID) -> None:
        require_role(principal, TENANCY_WRITERS, "delete sites")
        async with self._db.transaction(principal) as conn:
            site = await self._site(conn, site_id)
            if await self._repo.site_has_cameras(conn, site_id):
                raise Conflict("the site still has cameras; remove them first")
            await self._repo.delete_site(conn, site_id)
            await self._journal.note(
                conn, principal, "site.delete", ("site", site_id), tenant_id=site.tenant_id, name=site.name
            )

    # --- forces
    async def list_forces(self, principal: Principal, after: uuid.UUID | None, limit: int) -> list[Force]:
        require_role(principal, STAFF_READERS, "list forces")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.forces(conn, after, limit)

    async def get_force(self, principal: Principal, force_id: uuid.UUID) -> Force:
        require_role(principal, STAFF_READERS, "read forces")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._force(conn, force_id)

    async def _force(self, conn: asyncpg.Connection, force_id: uuid.UUID) -> Force:
        force = await self._repo.force(conn, force_id)
        if force is None:
            raise NotFound("no such force")
        return force

    async def _check_communes(self, conn: asyncpg.Connection, codes: list[str]) -> list[str]:
        for index, code in enumerate(codes):
            await self._require_commune(conn, code, field=f"communes[{index}]")
        return sorted(set(codes))

    async def create_force(self, principal: Principal, data: ForceCreate) -> Force:
        require_role(principal, DEPARTMENT_ADMINS, "create forces")
        if (data.kind == "police_municipale") != (data.tenant_id is not None):
            raise InvalidInput(
                "a police municipale names the commune tenant that runs it (and only it does)", field="tenant_id"
            )
        async with self._db.transaction(principal) as conn:
            communes = await self._check_communes(conn, list(data.communes))
            if data.tenant_id is not None:
                tenant = await self._repo.tenant(conn, data.tenant_id)
                if tenant is None or tenant.kind != "commune":
                    raise InvalidInput("tenant_id names no commune of this department", field="tenant_id")
                if communes != [tenant.insee_code]:
                    raise InvalidInput(
                        "a police municipale covers its own commune only (décret 2022-1152)", field="communes"
                    )
            force_id = new_id()
            try:
                await self._repo.insert_force(
                    conn,
                    {
                        "id": force_id,
                        "department_id": principal.department_id,
                        "kind": data.kind,
                        "name": data.name,
                        "tenant_id": data.tenant_id,
                        "phone": data.phone,
                    },
                )
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateName("force", data.name) from exc
            await self._repo.set_force_communes(conn, force_id, principal.department_id, communes)
            await self._journal.note(
                conn, principal, "force.create", ("force", force_id), tenant_id=principal.home_tenant_id,
                name=data.name,
            )
            return await self._force(conn, force_id)

    async def update_force(self, principal: Principal, force_id: uuid.UUID, data: ForceUpdate) -> Force:
        require_role(principal, DEPARTMENT_ADMINS, "change forces")
        values = fields_set(data)
        communes = values.pop("communes", None)
        async with self._db.transaction(principal) as conn:
            force = await self._force(conn, force_id)
            if communes is not None:
                checked = await self._check_communes(conn, list(communes))
                if force.kind == "police_municipale" and checked != force.communes:
                    raise InvalidInput(
                        "a police municipale covers its own commune only (décret 2022-1152)", field="communes"
                    )
                await self._repo.set_force_communes(conn, force_id, force.department_id, checked)
            try:
                await self._repo.update_force(conn, force_id, values)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateName("force", str(values.get("name"))) from exc
            await self._journal.note(
                conn, principal, "force.update", ("force", force_id), tenant_id=principal.home_tenant_id,
                **_jsonable({**values, **({"communes": communes} if communes else {})}),
            )
            return await self._force(conn, force_id)


def _journal_tenant(principal: Principal, tenant_id: uuid.UUID) -> uuid.UUID:
    """The chain a change goes to: the tenant's own when in scope, else the actor's home (department) chain."""
    return tenant_id if principal.scope.includes(tenant_id) else principal.home_tenant_id


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """Changed fields as the journal line's details (JSON values: dates as ISO strings)."""
    return msgspec.json.decode(msgspec.json.encode(values), type=dict[str, Any])
