"""Use cases of cameras and their prefectoral authorisations: each runs in one tenant-scoped transaction and journals
what it changes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import asyncpg
import msgspec

from core.crypto import SecretBox
from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import new_id
from core.tenancy import STAFF_READERS, TENANCY_WRITERS, Principal, require_role
from journal.service import JournalService
from tenants import rules
from tenants.errors import DuplicateName
from tenants.model import (
    Authorisation,
    AuthorisationCreate,
    Camera,
    CameraCreate,
    CameraCredentials,
    CameraUpdate,
    fields_set,
)
from tenants.repository import TenancyRepository

CREDENTIALS_PURPOSE = "camera-credentials"


def _today() -> date:
    return datetime.now(UTC).date()


class CameraService:
    """Cameras (stream addresses, sealed credentials, privacy masks) and their authorisations, as seen by one
    principal."""

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
            await self._journal.note(
                conn, principal, "camera.create", ("camera", camera.id), tenant_id=site.tenant_id,
                camera_id=camera.id, name=camera.name,
            )
        return camera

    async def update_camera(self, principal: Principal, camera_id: uuid.UUID, data: CameraUpdate) -> Camera:
        require_role(principal, TENANCY_WRITERS, "change cameras")
        values = fields_set(data)
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
            await self._journal.note(
                conn, principal, "camera.update", ("camera", camera_id), tenant_id=camera.tenant_id,
                camera_id=camera_id, changed=changed,
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
            await self._journal.note(
                conn, principal, "camera.delete", ("camera", camera_id), tenant_id=camera.tenant_id,
                camera_id=camera_id, name=camera.name,
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
            await self._journal.note(
                conn, principal, "authorisation.create", ("authorisation", authorisation_id),
                tenant_id=camera.tenant_id, camera_id=camera_id, order=data.prefectoral_order_number,
                event_types=sorted(seen),
            )
            return await self._authorisation(conn, authorisation_id)
