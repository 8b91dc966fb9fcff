"""The console's sign-in: the flows of /auth, the refresh token kept in an HttpOnly cookie, never in script."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody

from api.deps import PrincipalDep, ServicesDep
from api.routes.auth import _client
from core.errors import AuthenticationFailed, InvalidInput
from identity.model import LoginRequest, SecondFactorChallenge, TokenPair, TotpLoginRequest

REFRESH_COOKIE = "vigie_console_refresh"
# The browser sends the cookie to this path only: no other request, and no other page of the origin, carries it.
REFRESH_PATH = "/auth/console/refresh"
# A custom header makes a cross-site refresh a CORS preflight the API never allows (SameSite=Strict is the first
# line; this is the second, for browsers or proxies that get SameSite wrong).
CONSOLE_HEADER = "x-vigie-console"


class ConsoleSession(msgspec.Struct, frozen=True, kw_only=True):
    """A signed-in console: the access token for memory, never the refresh token (it is in the cookie)."""

    access_token: str
    expires_in: int
    session_id: uuid.UUID
    role: str
    tenant_id: uuid.UUID
    token_type: str = "Bearer"


def _require_console(request: Request[Any, Any, Any]) -> None:
    if request.headers.get(CONSOLE_HEADER) != "1":
        raise InvalidInput("console requests carry the X-Vigie-Console: 1 header", field=CONSOLE_HEADER)


def _refresh_cookie(value: str, max_age: int) -> Cookie:
    # Secure even on http://127.0.0.1: browsers treat localhost as a secure context and keep the cookie.
    return Cookie(key=REFRESH_COOKIE, value=value, path=REFRESH_PATH, max_age=max_age, httponly=True, secure=True,
                  samesite="strict")


def _signed_in(pair: TokenPair, refresh_ttl_s: int) -> Response[ConsoleSession]:
    session = ConsoleSession(access_token=pair.access_token, expires_in=pair.expires_in, session_id=pair.session_id,
                             role=pair.role, tenant_id=pair.tenant_id, token_type=pair.token_type)
    return Response(content=session, cookies=[_refresh_cookie(pair.refresh_token, refresh_ttl_s)],
                    headers={"Cache-Control": "no-store"})


class ConsoleAuthController(Controller):
    path = "/auth/console"
    tags = ["auth"]

    @post("/login", summary="Console sign-in with email and password (refresh token set as an HttpOnly cookie)",
          status_code=200)
    async def login(self, request: Request[Any, Any, Any], services: ServicesDep,
                    data: JSONBody[LoginRequest]) -> Response[ConsoleSession | SecondFactorChallenge]:
        _require_console(request)
        ip, agent = _client(request)
        result = await services.sessions.login(data, client_ip=ip, user_agent=agent)
        if isinstance(result, SecondFactorChallenge):
            return Response(content=result, headers={"Cache-Control": "no-store"})
        return _signed_in(result, services.settings.auth.refresh_ttl_s)  # type: ignore[return-value]

    @post("/login/totp", summary="Finish a console sign-in with a TOTP code", status_code=200)
    async def login_totp(self, request: Request[Any, Any, Any], services: ServicesDep,
                         data: JSONBody[TotpLoginRequest]) -> Response[ConsoleSession]:
        _require_console(request)
        ip, agent = _client(request)
        pair = await services.sessions.login_second_factor(data.challenge, data.code, client_ip=ip, user_agent=agent)
        return _signed_in(pair, services.settings.auth.refresh_ttl_s)

    @post("/refresh", summary="A new access token from the console's refresh cookie (rotated, each works once)",
          status_code=200)
    async def refresh(self, request: Request[Any, Any, Any], services: ServicesDep) -> Response[ConsoleSession]:
        _require_console(request)
        token = request.cookies.get(REFRESH_COOKIE, "")
        if not 10 <= len(token) <= 200:
            raise AuthenticationFailed("no console session: sign in again")
        pair = await services.sessions.refresh(token)
        return _signed_in(pair, services.settings.auth.refresh_ttl_s)

    @post("/logout", summary="End the console's session and drop its refresh cookie", status_code=200)
    async def logout(self, principal: PrincipalDep, services: ServicesDep) -> Response[None]:
        await services.sessions.logout(principal)
        return Response(content=None, status_code=204, cookies=[_refresh_cookie("", 0)])


ROUTES = [ConsoleAuthController]
