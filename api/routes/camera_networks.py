"""The department's camera networks: the addresses a camera's streams may name (department admins declare them)."""

from __future__ import annotations

from litestar import Controller, get, put
from litestar.params import JSONBody

from api.deps import PrincipalDep, ServicesDep
from tenants.model import CameraNetwork, CameraNetworksInput


class CameraNetworkController(Controller):
    path = "/camera-networks"
    tags = ["cameras"]

    @get("/", summary="The department's camera networks (a camera's stream must name an address inside one)")
    async def list_networks(self, principal: PrincipalDep, services: ServicesDep) -> list[CameraNetwork]:
        return await services.camera_networks.networks(principal)

    @put("/", summary="Replace the department's camera networks (department admin; journaled)")
    async def replace_networks(self, principal: PrincipalDep, services: ServicesDep,
                               data: JSONBody[CameraNetworksInput]) -> list[CameraNetwork]:
        return await services.camera_networks.replace(principal, data)


ROUTES = [CameraNetworkController]
