"""Sign-in, second factor, refresh, logout, JWKS and federated sign-in."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, QueryParameter
from litestar.response import Redirect

from api.deps import PrincipalDep, ServicesDep
from core.errors import NotFound
from identity.model import LoginRequest, RefreshRequest, SecondFactorChallenge, TokenPair, TotpLoginRequest


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
    async def oidc_start(self, services: ServicesDep) -> Redirect:
        if services.oidc is None:
            raise NotFound("no external identity provider is configured")
        return Redirect(path=await services.oidc.start(), status_code=302)

    @get("/oidc/callback", summary="Finish a federated sign-in")
    async def oidc_callback(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        code: Annotated[str, QueryParameter(min_length=1, max_length=2048)],
        oidc_state: Annotated[str, QueryParameter(name="state", min_length=1, max_length=256)],
    ) -> TokenPair | SecondFactorChallenge:
        if services.oidc is None:
            raise NotFound("no external identity provider is configured")
        email, amr = await services.oidc.finish(code, oidc_state)
        ip, agent = _client(request)
        return await services.sessions.open_federated_session(email, amr, client_ip=ip, user_agent=agent)


@get("/.well-known/jwks.json", tags=["auth"], summary="Public keys that sign access tokens")
async def jwks(services: ServicesDep) -> dict[str, Any]:
    return services.sessions.jwks()


ROUTES = [AuthController, jwks]
