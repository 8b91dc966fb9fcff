"""Use cases of the tenancy domain: each runs in one tenant-scoped transaction and journals what it changes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import msgspec

from core.crypto import SecretBox
from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import new_id
from core.tenancy import DEPARTMENT_ADMINS, STAFF_READERS, TENANCY_WRITERS, Principal, require_role
from journal.service import JournalService
from tenants import rules
from tenants.errors import DuplicateName, UnknownCommune
from tenants.model import (
    Authorisation,
    AuthorisationCreate,
    Camera,
    CameraCreate,
    CameraCredentials,
    CameraUpdate,
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
)
from tenants.repository import TenancyRepository

CREDENTIALS_PURPOSE = "camera-credentials"


def _set_fields(update: msgspec.Struct) -> dict[str, Any]:
    return {f: v for f in update.__struct_fields__ if (v := getattr(update, f)) is not msgspec.UNSET}


def _today() -> date:
    return datetime.now(UTC).date()


class TenancyService:
    """Tenants, sites, cameras, authorisations and forces, as seen by one principal."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        journal: JournalService | None = None,
        repository: TenancyRepository | None = None,
    ) -> None:
        self._db = db
        self._secrets = secrets
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
            await self._journal.record(
                conn,
                tenant_id=_journal_tenant(principal, tenant.id),
                actor=principal,
                action="tenant.create",
                target_type="tenant",
                target_id=tenant.id,
                details={"name": tenant.name},
            )
        return tenant

    async def update_tenant(self, principal: Principal, tenant_id: uuid.UUID, data: TenantUpdate) -> Tenant:
        require_role(principal, TENANCY_WRITERS, "change tenants")
        values = _set_fields(data)
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
            await self._journal.record(
                conn,
                tenant_id=_journal_tenant(principal, tenant_id),
                actor=principal,
                action="tenant.update",
                target_type="tenant",
                target_id=tenant_id,
                details=_jsonable(values),
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
            await self._journal.record(
                conn,
                tenant_id=tenant_id,
                actor=principal,
                action="site.create",
                target_type="site",
                target_id=site.id,
                details={"name": site.name},
            )
        return site

    async def _tenant_in_scope(self, principal: Principal, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> None:
        # The directory is readable department-wide; writing under a tenant needs it in the principal's scope.
        if not principal.scope.includes(tenant_id) or await self._repo.tenant(conn, tenant_id) is None:
            raise NotFound("no such tenant")

    async def update_site(self, principal: Principal, site_id: uuid.UUID, data: SiteUpdate) -> Site:
        require_role(principal, TENANCY_WRITERS, "change sites")
        values = _set_fields(data)
        async with self._db.transaction(principal) as conn:
            site = await self._site(conn, site_id)
            if not values:
                return site
            try:
                updated = await self._repo.update_site(conn, site_id, values)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateName("site", str(values.get("name"))) from exc
            assert updated is not None
            await self._journal.record(
                conn,
                tenant_id=site.tenant_id,
                actor=principal,
                action="site.update",
                target_type="site",
                target_id=site_id,
                details=_jsonable(values),
            )
        return updated

    async def delete_site(self, principal: Principal, site_id: uuid.UUID) -> None:
        require_role(principal, TENANCY_WRITERS, "delete sites")
        async with self._db.transaction(principal) as conn:
            site = await self._site(conn, site_id)
            if await self._repo.site_has_cameras(conn, site_id):
                raise Conflict("the site still has cameras; remove them first")
            await self._repo.delete_site(conn, site_id)
            await self._journal.record(
                conn,
                tenant_id=site.tenant_id,
                actor=principal,
                action="site.delete",
                target_type="site",
                target_id=site_id,
                details={"name": site.name},
            )

    # --- cameras
    async def list_cameras(
        self,
        principal: Principal,
        tenant_id: uuid.UUID | None,
        site_id: uuid.UUID | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[Camera]:
        require_role(principal, STAFF_READERS, "list cameras")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.cameras(conn, tenant_id, site_id, after, limit)

    async def get_camera(self, principal: Principal, camera_id: uuid.UUID) -> Camera:
        require_role(principal, STAFF_READERS, "read cameras")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._camera(conn, camera_id)

    async def _camera(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> Camera:
        camera = await self._repo.camera(conn, camera_id)
        if camera is None:
            raise NotFound("no such camera")
        return camera

    def _seal(self, credentials: CameraCredentials | None) -> bytes | None:
        if credentials is None:
            return None
        return self._secrets.seal(msgspec.json.encode(credentials), purpose=CREDENTIALS_PURPOSE)

    async def create_camera(self, principal: Principal, data: CameraCreate) -> Camera:
        require_role(principal, TENANCY_WRITERS, "create cameras")
        rules.check_rtsp_url(data.main_stream_url, field="main_stream_url")
        if data.sub_stream_url is not None:
            rules.check_rtsp_url(data.sub_stream_url, field="sub_stream_url")
        async with self._db.transaction(principal) as conn:
            site = await self._repo.site(conn, data.site_id)
            if site is None:
                raise InvalidInput("site_id names no site of yours", field="site_id")
            values = {
                "id": new_id(),
                "tenant_id": site.tenant_id,
                "site_id": site.id,
                "name": data.name,
                "main_stream_url": data.main_stream_url,
                "sub_stream_url": data.sub_stream_url,
                "credentials_sealed": self._seal(data.credentials),
                "insee_code": site.insee_code,
                "latitude": data.latitude if data.latitude is not None else site.latitude,
                "longitude": data.longitude if data.longitude is not None else site.longitude,
                "privacy_masks": msgspec.json.encode(data.privacy_masks).decode(),
            }
            try:
                camera = await self._repo.insert_camera(conn, values)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateName("camera", data.name) from exc
            await self._journal.record(
                conn,
                tenant_id=site.tenant_id,
                actor=principal,
                action="camera.create",
                target_type="camera",
                target_id=camera.id,
                camera_id=camera.id,
                details={"name": camera.name},
            )
        return camera

    async def update_camera(self, principal: Principal, camera_id: uuid.UUID, data: CameraUpdate) -> Camera:
        require_role(principal, TENANCY_WRITERS, "change cameras")
        values = _set_fields(data)
        for field in ("main_stream_url", "sub_stream_url"):
            if values.get(field) is not None:
                rules.check_rtsp_url(values[field], field=field)
        if "credentials" in values:
            values["credentials_sealed"] = self._seal(values.pop("credentials"))
        if "privacy_masks" in values:
            values["privacy_masks"] = msgspec.json.encode(values["privacy_masks"]).decode()
        async with self._db.transaction(principal) as conn:
            camera = await self._camera(conn, camera_id)
            if not values:
                return camera
            try:
                updated = await self._repo.update_camera(conn, camera_id, values)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateName("camera", str(values.get("name"))) from exc
            assert updated is not None
            changed = sorted(k if k != "credentials_sealed" else "credentials" for k in values)
            await self._journal.record(
                conn,
                tenant_id=camera.tenant_id,
                actor=principal,
                action="camera.update",
                target_type="camera",
                target_id=camera_id,
                camera_id=camera_id,
                details={"changed": changed},
            )
        return updated

    async def delete_camera(self, principal: Principal, camera_id: uuid.UUID) -> None:
        require_role(principal, TENANCY_WRITERS, "delete cameras")
        async with self._db.transaction(principal) as conn:
            camera = await self._camera(conn, camera_id)
            try:
                await self._repo.delete_camera(conn, camera_id)
            except asyncpg.ForeignKeyViolationError as exc:
                # Recordings must be destroyed (and registered) before their camera can go.
                raise Conflict("the camera still has recordings or evidence; disable it instead "
                               "(status: disabled) until they are destroyed") from exc
            await self._journal.record(
                conn,
                tenant_id=camera.tenant_id,
                actor=principal,
                action="camera.delete",
                target_type="camera",
                target_id=camera_id,
                camera_id=camera_id,
                details={"name": camera.name},
            )

    # --- authorisations
    async def list_authorisations(self, principal: Principal, camera_id: uuid.UUID) -> list[Authorisation]:
        require_role(principal, STAFF_READERS, "read authorisations")
        async with self._db.transaction(principal, readonly=True) as conn:
            await self._camera(conn, camera_id)
            return await self._repo.authorisations(conn, camera_id)

    async def get_authorisation(self, principal: Principal, authorisation_id: uuid.UUID) -> Authorisation:
        require_role(principal, STAFF_READERS, "read authorisations")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._authorisation(conn, authorisation_id)

    async def _authorisation(self, conn: asyncpg.Connection, authorisation_id: uuid.UUID) -> Authorisation:
        found = await self._repo.authorisation(conn, authorisation_id)
        if found is None:
            raise NotFound("no such authorisation")
        return found

    async def create_authorisation(
        self, principal: Principal, camera_id: uuid.UUID, data: AuthorisationCreate
    ) -> Authorisation:
        require_role(principal, TENANCY_WRITERS, "record authorisations")
        purposes = rules.check_purposes(list(data.purposes))
        rules.check_retention_bounds(data.max_retention_days, data.min_retention_days)
        rules.check_authorisation_window(data.valid_from, data.valid_until, today=_today())
        seen: set[str] = set()
        for index, grant in enumerate(data.event_types):
            field = f"event_types[{index}]"
            rules.check_event_type(grant.event_type, field=f"{field}.event_type")
            rules.check_event_window(
                grant.valid_from, grant.valid_until, data.valid_from, data.valid_until, field=field
            )
            if grant.event_type in seen:
                raise InvalidInput(f"{grant.event_type} is listed twice", field=field)
            seen.add(grant.event_type)
        async with self._db.transaction(principal) as conn:
            camera = await self._camera(conn, camera_id)
            authorisation_id = await self._repo.insert_authorisation(
                conn,
                {
                    "id": new_id(),
                    "tenant_id": camera.tenant_id,
                    "camera_id": camera_id,
                    "prefectoral_order_number": data.prefectoral_order_number,
                    "purposes": purposes,
                    "max_retention_days": data.max_retention_days,
                    "min_retention_days": data.min_retention_days,
                    "valid_from": data.valid_from,
                    "valid_until": data.valid_until,
                    "authorised_viewers": data.authorised_viewers,
                },
            )
            for grant in data.event_types:
                await self._repo.upsert_event_type(
                    conn,
                    {
                        "id": new_id(),
                        "tenant_id": camera.tenant_id,
                        "authorisation_id": authorisation_id,
                        **msgspec.structs.asdict(grant),
                    },
                )
            await self._journal.record(
                conn,
                tenant_id=camera.tenant_id,
                actor=principal,
                action="authorisation.create",
                target_type="authorisation",
                target_id=authorisation_id,
                camera_id=camera_id,
                details={"order": data.prefectoral_order_number, "event_types": sorted(seen)},
            )
            return await self._authorisation(conn, authorisation_id)

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
            journal_tenant = principal.home_tenant_id
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
            await self._journal.record(
                conn,
                tenant_id=journal_tenant,
                actor=principal,
                action="force.create",
                target_type="force",
                target_id=force_id,
                details={"name": data.name},
            )
            return await self._force(conn, force_id)

    async def update_force(self, principal: Principal, force_id: uuid.UUID, data: ForceUpdate) -> Force:
        require_role(principal, DEPARTMENT_ADMINS, "change forces")
        values = _set_fields(data)
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
            await self._journal.record(
                conn,
                tenant_id=principal.home_tenant_id,
                actor=principal,
                action="force.update",
                target_type="force",
                target_id=force_id,
                details=_jsonable({**values, **({"communes": communes} if communes else {})}),
            )
            return await self._force(conn, force_id)


def _journal_tenant(principal: Principal, tenant_id: uuid.UUID) -> uuid.UUID:
    """The chain a change goes to: the tenant's own when in scope, else the actor's home (department) chain."""
    return tenant_id if principal.scope.includes(tenant_id) else principal.home_tenant_id


def _jsonable(values: dict[str, Any]) -> dict[str, object]:
    return msgspec.json.decode(msgspec.json.encode(values))  # type: ignore[no-any-return]
