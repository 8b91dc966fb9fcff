"""Sign-in, second factor, refresh, logout, JWKS and federated sign-in."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody, QueryParameter
from litestar.response import Redirect

from api.deps import PrincipalDep, ServicesDep
from core.errors import NotFound
from identity.model import LoginRequest, RefreshRequest, SecondFactorChallenge, TokenPair, TotpLoginRequest
from identity.oidc import BROWSER_COOKIE, COOKIE_PATH, FLOW_TTL


def _client(request: Request[Any, Any, Any]) -> tuple[str, str]:
    host = request.client.host if request.client else "unknown"
    return host, request.headers.get("user-agent", "")


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/login", summary="Sign in with email and password", status_code=200)
    async def login(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: JSONBody[LoginRequest]
    ) -> TokenPair | SecondFactorChallenge:
        ip, agent = _client(request)
        return await services.sessions.login(data, client_ip=ip, user_agent=agent)

    @post("/login/totp", summary="Finish signing in with a TOTP code", status_code=200)
    async def login_totp(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: JSONBody[TotpLoginRequest]
    ) -> TokenPair:
        ip, agent = _client(request)
        return await services.sessions.login_second_factor(data.challenge, data.code, client_ip=ip, user_agent=agent)

    @post("/refresh", summary="Exchange a refresh token (each works once)", status_code=200)
    async def refresh(self, services: ServicesDep, data: JSONBody[RefreshRequest]) -> TokenPair:
        return await services.sessions.refresh(data.refresh_token)

    @post("/logout", summary="End the caller's session", status_code=204)
    async def logout(self, principal: PrincipalDep, services: ServicesDep) -> None:
        await services.sessions.logout(principal)

    @get("/oidc/start", summary="Start a federated sign-in at the configured identity provider", status_code=302)
    async def oidc_start(self, request: Request[Any, Any, Any], services: ServicesDep) -> Redirect:
        if services.oidc is None:
            raise NotFound("no external identity provider is configured")
        ip, _ = _client(request)
        flow = await services.oidc.start(client_ip=ip)
        # The callback must come back to the browser that started: it holds the flow's secret in this cookie.
        cookie = Cookie(
            key=BROWSER_COOKIE, value=flow.browser_secret, path=COOKIE_PATH, max_age=int(FLOW_TTL.total_seconds()),
            httponly=True, samesite="lax", secure=services.oidc.cookie_secure,
        )
        return Redirect(path=flow.authorization_url, status_code=302, cookies=[cookie])

    @get("/oidc/callback", summary="Finish a federated sign-in (in the browser that started it)")
    async def oidc_callback(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        code: Annotated[str, QueryParameter(min_length=1, max_length=2048)],
        oidc_state: Annotated[str, QueryParameter(name="state", min_length=1, max_length=256)],
    ) -> Response[TokenPair | SecondFactorChallenge]:
        if services.oidc is None:
            raise NotFound("no external identity provider is configured")
        identity = await services.oidc.finish(code, oidc_state, request.cookies.get(BROWSER_COOKIE))
        ip, agent = _client(request)
        result = await services.federation.sign_in(identity, client_ip=ip, user_agent=agent)
        spent = Cookie(key=BROWSER_COOKIE, value="", path=COOKIE_PATH, max_age=0, httponly=True, samesite="lax",
                       secure=services.oidc.cookie_secure)
        return Response(content=result, cookies=[spent], headers={"Cache-Control": "no-store"})


@get("/.well-known/jwks.json", tags=["auth"], summary="Public keys that sign access tokens")
async def jwks(services: ServicesDep) -> dict[str, Any]:
    return services.sessions.jwks()


ROUTES = [AuthController, jwks]
