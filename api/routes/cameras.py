"""Cameras and their prefectoral authorisations."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from tenants.model import Authorisation, AuthorisationCreate, Camera, CameraCreate, CameraUpdate


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
        return await services.cameras.list_authorisations(principal, camera_id)

    @post("/{camera_id:uuid}/authorisations", summary="Record a prefectoral authorisation")
    async def create_authorisation(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        camera_id: FromPath[uuid.UUID],
        data: JSONBody[AuthorisationCreate],
    ) -> Authorisation:
        return await services.cameras.create_authorisation(principal, camera_id, data)


class AuthorisationController(Controller):
    path = "/authorisations"
    tags = ["cameras"]

    @get("/{authorisation_id:uuid}", summary="Read an authorisation")
    async def get_authorisation(
        self, principal: PrincipalDep, services: ServicesDep, authorisation_id: FromPath[uuid.UUID]
    ) -> Authorisation:
        return await services.cameras.get_authorisation(principal, authorisation_id)


ROUTES = [CameraController, AuthorisationController]
