"""The caller's own account and credentials: a password or second factor is changed only with proof of the current
ones, never with a bare access token."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody

from api.deps import PrincipalDep, ServicesDep
from api.proxies import client_host
from identity.model import PasswordChange, SecondFactorReplacement, TotpEnrolment, User


class MeController(Controller):
    path = "/me"
    tags = ["identity"]

    @get("/", summary="The caller's account")
    async def me(self, principal: PrincipalDep, services: ServicesDep) -> User:
        return await services.accounts.me(principal)

    @post(
        "/password",
        summary="Change one's password (current password, and a current code when the account has a second factor)",
        status_code=204,
    )
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        services: ServicesDep,
        data: JSONBody[PasswordChange],
    ) -> None:
        await services.accounts.change_password(principal, data, client_ip=client_host(request))

    @post(
        "/totp",
        summary="Replace one's second factor (current password and a current code); the new seed is shown once",
        status_code=201,
    )
    async def replace_totp(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        services: ServicesDep,
        data: JSONBody[SecondFactorReplacement],
    ) -> TotpEnrolment:
        return await services.accounts.replace_second_factor(principal, data, client_ip=client_host(request))


ROUTES = [MeController]
