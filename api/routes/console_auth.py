"""The console's sign-in: the flows of /auth, the refresh token kept in an HttpOnly cookie, never in script."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody
from litestar.response import Redirect

from api.console_session import REFRESH_COOKIE, ConsoleSession, refresh_cookie, require_console, signed_in
from api.deps import PrincipalDep, ServicesDep
from api.routes.auth import _client, start_federated_flow
from core.errors import AuthenticationFailed
from identity.model import LoginRequest, SecondFactorChallenge, TotpLoginRequest


class SignInOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What the console's sign-in page offers besides the password."""

    oidc: bool


class ConsoleAuthController(Controller):
    path = "/auth/console"
    tags = ["auth"]

    @get("/options", summary="The sign-in methods the console offers (the identity provider's button when configured)")
    async def options(self, services: ServicesDep) -> SignInOptions:
        return SignInOptions(oidc=services.oidc is not None)

    @get("/oidc/start", summary="Start a federated sign-in that comes back to the console", status_code=302)
    async def oidc_start(self, request: Request[Any, Any, Any], services: ServicesDep) -> Redirect:
        return await start_federated_flow(request, services, for_console=True)

    @post("/login", summary="Console sign-in with email and password (refresh token set as an HttpOnly cookie)",
          status_code=200)
    async def login(self, request: Request[Any, Any, Any], services: ServicesDep,
                    data: JSONBody[LoginRequest]) -> Response[ConsoleSession | SecondFactorChallenge]:
        require_console(request)
        ip, agent = _client(request)
        result = await services.sessions.login(data, client_ip=ip, user_agent=agent)
        if isinstance(result, SecondFactorChallenge):
            return Response(content=result, headers={"Cache-Control": "no-store"})
        return signed_in(result, services.settings.auth.refresh_ttl_s)  # type: ignore[return-value]

    @post("/login/totp", summary="Finish a console sign-in with a TOTP code", status_code=200)
    async def login_totp(self, request: Request[Any, Any, Any], services: ServicesDep,
                         data: JSONBody[TotpLoginRequest]) -> Response[ConsoleSession]:
        require_console(request)
        ip, agent = _client(request)
        pair = await services.sessions.login_second_factor(data.challenge, data.code, client_ip=ip, user_agent=agent)
        return signed_in(pair, services.settings.auth.refresh_ttl_s)

    @post("/refresh", summary="A new access token from the console's refresh cookie (rotated, each works once)",
          status_code=200)
    async def refresh(self, request: Request[Any, Any, Any], services: ServicesDep) -> Response[ConsoleSession]:
        require_console(request)
        token = request.cookies.get(REFRESH_COOKIE, "")
        if not 10 <= len(token) <= 200:
            raise AuthenticationFailed("no console session: sign in again")
        pair = await services.sessions.refresh(token)
        return signed_in(pair, services.settings.auth.refresh_ttl_s)

    @post("/logout", summary="End the console's session and drop its refresh cookie", status_code=200)
    async def logout(self, principal: PrincipalDep, services: ServicesDep) -> Response[None]:
        await services.sessions.logout(principal)
        return Response(content=None, status_code=204, cookies=[refresh_cookie("", 0)])


ROUTES = [ConsoleAuthController]
