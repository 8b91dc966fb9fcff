"""Use cases of cameras (their authorisations: tenants.authorisations): each runs in one tenant-scoped transaction and
journals what it changes."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from core.crypto import CAMERA_CREDENTIALS, SecretBox
from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import new_id
from core.tenancy import STAFF_READERS, TENANCY_WRITERS, Principal, require_role
from journal.service import JournalService
from tenants import rules
from tenants.errors import DuplicateName
from tenants.model import (
    Camera,
    CameraCreate,
    CameraCredentials,
    CameraUpdate,
    fields_set,
)
from tenants.network_repository import CameraNetworkRepository
from tenants.repository import TenancyRepository


class CameraService:
    """Cameras (stream addresses, sealed credentials, privacy masks), as seen by one principal."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        journal: JournalService | None = None,
        repository: TenancyRepository | None = None,
        networks: CameraNetworkRepository | None = None,
    ) -> None:
        self._db = db
        self._secrets = secrets
        self._journal = journal or JournalService()
        self._repo = repository or TenancyRepository()
        self._networks = networks or CameraNetworkRepository()

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

    def _seal(self, credentials: CameraCredentials | None, camera_id: uuid.UUID) -> bytes | None:
        if credentials is None:
            return None
        return self._secrets.seal(msgspec.json.encode(credentials), column=CAMERA_CREDENTIALS, row_id=camera_id)

    async def _check_hosts(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, urls: dict[str, str | None]) -> None:
        """Each stream address given is an IP address inside one of the camera networks of the tenant's department."""
        if not any(urls.values()):
            return
        networks = await self._networks.of_tenant(conn, tenant_id)
        for field, url in urls.items():
            if url is not None:
                rules.check_camera_host(url, networks, field=field)

    async def create_camera(self, principal: Principal, data: CameraCreate) -> Camera:
        require_role(principal, TENANCY_WRITERS, "create cameras")
        rules.check_rtsp_url(data.main_stream_url, field="main_stream_url")
        if data.sub_stream_url is not None:
            rules.check_rtsp_url(data.sub_stream_url, field="sub_stream_url")
        async with self._db.transaction(principal) as conn:
            site = await self._repo.site(conn, data.site_id)
            if site is None:
                raise InvalidInput("site_id names no site of yours", field="site_id")
            await self._check_hosts(conn, site.tenant_id, {"main_stream_url": data.main_stream_url,
                                                           "sub_stream_url": data.sub_stream_url})
            camera_id = new_id()
            values = {
                "id": camera_id,
                "tenant_id": site.tenant_id,
                "site_id": site.id,
                "name": data.name,
                "main_stream_url": data.main_stream_url,
                "sub_stream_url": data.sub_stream_url,
                "credentials_sealed": self._seal(data.credentials, camera_id),
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
            if camera.privacy_masks:
                await self._note_masks(conn, principal, camera)
        return camera

    async def update_camera(self, principal: Principal, camera_id: uuid.UUID, data: CameraUpdate) -> Camera:
        require_role(principal, TENANCY_WRITERS, "change cameras")
        values = fields_set(data)
        for field in ("main_stream_url", "sub_stream_url"):
            if values.get(field) is not None:
                rules.check_rtsp_url(values[field], field=field)
        if "credentials" in values:
            values["credentials_sealed"] = self._seal(values.pop("credentials"), camera_id)
        if "privacy_masks" in values:
            values["privacy_masks"] = msgspec.json.encode(values["privacy_masks"]).decode()
        async with self._db.transaction(principal) as conn:
            camera = await self._camera(conn, camera_id)
            if not values:
                return camera
            if "site_id" in values:
                values["insee_code"] = await self._destination_commune(conn, camera, values["site_id"])
            urls: dict[str, str | None] = {f: values[f] for f in ("main_stream_url", "sub_stream_url") if f in values}
            await self._check_hosts(conn, camera.tenant_id, urls)
            new_urls = [values.get(f, getattr(camera, f)) for f in ("main_stream_url", "sub_stream_url")]
            cleared = (camera.has_credentials and "credentials_sealed" not in values
                       and not rules.credentials_follow([camera.main_stream_url, camera.sub_stream_url], new_urls))
            if cleared:
                # Pointed at another host, the camera would hand that host its stored password.
                values["credentials_sealed"] = None
            try:
                updated = await self._repo.update_camera(conn, camera_id, values)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateName("camera", str(values.get("name"))) from exc
            assert updated is not None
            changed = sorted(k if k != "credentials_sealed" else "credentials" for k in values if k != "insee_code")
            await self._journal.note(
                conn, principal, "camera.update", ("camera", camera_id), tenant_id=camera.tenant_id,
                camera_id=camera_id, changed=changed, **({"credentials_cleared": True} if cleared else {}),
            )
            if updated.privacy_masks_version != camera.privacy_masks_version:
                await self._note_masks(conn, principal, updated)
        return updated

    async def _destination_commune(self, conn: asyncpg.Connection, camera: Camera, site_id: uuid.UUID) -> str:
        """A camera moves between the sites of its own tenant only: its recordings, authorisations and contract are
        the tenant's. Answers the commune of the destination, which the camera takes."""
        site = await self._repo.site(conn, site_id)
        if site is None:
            raise InvalidInput("site_id names no site of yours", field="site_id")
        if site.tenant_id != camera.tenant_id:
            raise InvalidInput("a camera moves only between the sites of its own tenant", field="site_id")
        return site.insee_code

    async def _note_masks(self, conn: asyncpg.Connection, principal: Principal, camera: Camera) -> None:
        """The masks in force from now on, in the journal: which polygons hid what, from which version."""
        await self._journal.note(
            conn, principal, "camera.privacy_masks", ("camera", camera.id), tenant_id=camera.tenant_id,
            camera_id=camera.id, version=camera.privacy_masks_version,
            masks=[[list(point) for point in mask.points] for mask in camera.privacy_masks],
        )

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
