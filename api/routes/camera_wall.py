"""The camera wall: cameras by commune and site with their condition (online, offline, recording gaps, tamper)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import get
from litestar.params import FromQuery, QueryParameter

from api.deps import PrincipalDep, ServicesDep
from dvr.model import CameraCondition, CameraWall

InseeCode = Annotated[str | None, QueryParameter(pattern=r"^([0-9]{2}|2A|2B)[0-9]{3}$",
                                                 description="only the cameras of this commune")]


@get("/camera-wall", tags=["cameras"],
     summary="Cameras by commune and site with their condition and last frame time (filters: tenant, commune)")
async def camera_wall(
    principal: PrincipalDep,
    services: ServicesDep,
    tenant_id: FromQuery[uuid.UUID | None] = None,
    insee_code: InseeCode = None,
    condition: FromQuery[list[CameraCondition] | None] = None,
) -> CameraWall:
    return await services.camera_wall.wall(principal, tenant_id=tenant_id, insee_code=insee_code,
                                           conditions=frozenset(condition) if condition else None)


ROUTES = [camera_wall]
