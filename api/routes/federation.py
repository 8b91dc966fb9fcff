"""Federated sign-in administration: external identities linked to accounts, and whether the department trusts its
identity provider's second factor. Department admins only; every change is journaled."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from api.deps import PrincipalDep, ServicesDep
from identity.federation import ExternalIdentity, ExternalIdentityLink, FederationSettings


class ExternalIdentityController(Controller):
    path = "/users/{user_id:uuid}/external-identities"
    tags = ["identity"]

    @get("/", summary="External identities (issuer, subject) that open this account")
    async def list_links(
        self, principal: PrincipalDep, services: ServicesDep, user_id: FromPath[uuid.UUID]
    ) -> list[ExternalIdentity]:
        return await services.federation.links(principal, user_id)

    @post("/", summary="Link an external identity to this account (federated sign-in opens it from then on)")
    async def link(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[ExternalIdentityLink],
    ) -> ExternalIdentity:
        return await services.federation.link(principal, user_id, data)

    @delete("/", summary="Unlink an external identity from this account", status_code=204)
    async def unlink(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        user_id: FromPath[uuid.UUID],
        issuer: Annotated[str, QueryParameter(min_length=1, max_length=500)],
        subject: Annotated[str, QueryParameter(min_length=1, max_length=255)],
    ) -> None:
        await services.federation.unlink(principal, user_id, issuer, subject)


class FederationSettingsController(Controller):
    path = "/department/federation"
    tags = ["identity"]

    @get("/", summary="Whether the identity provider's second factor stands in for Vigie's (department setting)")
    async def read(self, principal: PrincipalDep, services: ServicesDep) -> FederationSettings:
        return await services.federation.settings(principal)

    @put("/", summary="Trust, or stop trusting, the identity provider's second factor (department admins)")
    async def change(
        self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[FederationSettings]
    ) -> FederationSettings:
        return await services.federation.set_settings(principal, data)


ROUTES = [ExternalIdentityController, FederationSettingsController]
