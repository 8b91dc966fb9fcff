"""Cameras and their prefectoral authorisations (recorded by the department, with the scan of the order)."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from tenants.model import (
    Authorisation,
    AuthorisationCreate,
    AuthorisationExpiry,
    Camera,
    CameraCreate,
    CameraUpdate,
)
from tenants.rules import ORDER_SCAN_MAX_BYTES, ORDER_SCAN_MEDIA_TYPE

WithinDays = Annotated[int, QueryParameter(ge=1, le=366, description="how many days ahead, 60 by default")]


async def require_pdf_body(request: Request[Any, Any, Any]) -> None:
    """The order-scan upload takes a PDF body, not JSON: this hook replaces the app's JSON-only one on that route
    (a handler's before_request wins over the app's), with the same refusal of NUL characters in the URL."""
    if "\x00" in request.url.path or any("\x00" in k or "\x00" in v for k, v in request.query_params.items()):
        raise HTTPException(status_code=400, detail="NUL characters are not accepted in the URL")
    length = request.headers.get("content-length")
    if (length is None or length == "0") and "transfer-encoding" not in request.headers:
        return
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != ORDER_SCAN_MEDIA_TYPE:
        sent = media_type or "unspecified"
        raise HTTPException(status_code=415, detail=f"the scan must be sent as {ORDER_SCAN_MEDIA_TYPE}, not {sent}")


class CameraController(Controller):
    path = "/cameras"
    tags = ["cameras"]

    @get("/", summary="List cameras in scope")
    async def list_cameras(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        tenant_id: FromQuery[uuid.UUID | None] = None,
        site_id: FromQuery[uuid.UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[Camera]:
        rows = await services.cameras.list_cameras(principal, tenant_id, site_id, decode_cursor(cursor), limit + 1)
        return page_of(rows, limit, lambda c: c.id)

    @post("/", summary="Add a camera to a site")
    async def create_camera(
        self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[CameraCreate]
    ) -> Camera:
        return await services.cameras.create_camera(principal, data)

    @get("/{camera_id:uuid}", summary="Read a camera (never its credentials)")
    async def get_camera(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID]
    ) -> Camera:
        return await services.cameras.get_camera(principal, camera_id)

    @patch("/{camera_id:uuid}", summary="Change a camera")
    async def update_camera(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        camera_id: FromPath[uuid.UUID],
        data: JSONBody[CameraUpdate],
    ) -> Camera:
        return await services.cameras.update_camera(principal, camera_id, data)

    @delete("/{camera_id:uuid}", summary="Remove a camera")
    async def delete_camera(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID]
    ) -> None:
        await services.cameras.delete_camera(principal, camera_id)

    @get("/{camera_id:uuid}/authorisations", summary="The camera's prefectoral authorisations")
    async def list_authorisations(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID]
    ) -> list[Authorisation]:
        return await services.authorisations.list_authorisations(principal, camera_id)

    @post(
        "/{camera_id:uuid}/authorisations",
        summary="Record a prefectoral authorisation and the décret 2023-828 event types it grants (department admins)",
    )
    async def create_authorisation(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        camera_id: FromPath[uuid.UUID],
        data: JSONBody[AuthorisationCreate],
    ) -> Authorisation:
        return await services.authorisations.create_authorisation(principal, camera_id, data)


class AuthorisationController(Controller):
    path = "/authorisations"
    tags = ["cameras"]

    @get("/expiring", summary="Cameras whose authorisation ends soon (warned 60, 30 and 7 days ahead) or is missing")
    async def list_expiring(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        within_days: WithinDays = 60,
        tenant_id: FromQuery[uuid.UUID | None] = None,
    ) -> list[AuthorisationExpiry]:
        return await services.authorisations.expiring(principal, within_days=within_days, tenant_id=tenant_id)

    @get("/{authorisation_id:uuid}", summary="Read an authorisation")
    async def get_authorisation(
        self, principal: PrincipalDep, services: ServicesDep, authorisation_id: FromPath[uuid.UUID]
    ) -> Authorisation:
        return await services.authorisations.get_authorisation(principal, authorisation_id)

    @put(
        "/{authorisation_id:uuid}/order-scan",
        summary=f"File the PDF scan of the prefectoral order (department admins; body: {ORDER_SCAN_MEDIA_TYPE}, "
        f"at most {ORDER_SCAN_MAX_BYTES // 2**20} MiB)",
        before_request=require_pdf_body,
        request_max_body_size=ORDER_SCAN_MAX_BYTES,
    )
    async def file_order_scan(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        authorisation_id: FromPath[uuid.UUID],
        request: Request[Any, Any, Any],
    ) -> Authorisation:
        return await services.authorisations.file_order_scan(principal, authorisation_id, request.stream())

    @get(
        "/{authorisation_id:uuid}/order-scan",
        summary="The filed scan of the prefectoral order (journaled)",
        media_type=ORDER_SCAN_MEDIA_TYPE,
    )
    async def order_scan(
        self, principal: PrincipalDep, services: ServicesDep, authorisation_id: FromPath[uuid.UUID]
    ) -> Stream:
        scan, reader = await services.authorisations.order_scan(principal, authorisation_id)
        digest = base64.b64encode(bytes.fromhex(scan.sha256)).decode()
        return Stream(
            reader.chunks(),
            media_type=ORDER_SCAN_MEDIA_TYPE,
            headers={
                "Content-Length": str(reader.size),
                "Repr-Digest": f"sha-256=:{digest}:",
                "Content-Disposition": f'attachment; filename="arrete-prefectoral-{authorisation_id}.pdf"',
                "Cache-Control": "private, no-store",
            },
        )


ROUTES = [CameraController, AuthorisationController]
