"""Sign-in, second factor, refresh, logout, JWKS and federated sign-in."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody, QueryParameter
from litestar.response import Redirect

from api.console_session import CONSOLE_HOME, CONSOLE_OIDC_COOKIE, refresh_cookie
from api.deps import PrincipalDep, ServicesDep
from api.services import Services
from core.errors import NotFound, VigieError
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
        return await start_federated_flow(request, services, for_console=False)

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
        spent = [_flow_cookie(name, "", services, max_age=0) for name in (BROWSER_COOKIE, CONSOLE_OIDC_COOKIE)]
        if request.cookies.get(CONSOLE_OIDC_COOKIE) == "1":
            return await _finish_for_console(request, services, code, oidc_state, spent)
        identity = await services.oidc.finish(code, oidc_state, request.cookies.get(BROWSER_COOKIE))
        ip, agent = _client(request)
        result = await services.federation.sign_in(identity, client_ip=ip, user_agent=agent)
        return Response(content=result, cookies=spent, headers={"Cache-Control": "no-store"})


def _flow_cookie(name: str, value: str, services: Services, *, max_age: int) -> Cookie:
    assert services.oidc is not None
    return Cookie(key=name, value=value, path=COOKIE_PATH, max_age=max_age, httponly=True, samesite="lax",
                  secure=services.oidc.cookie_secure)


async def start_federated_flow(request: Request[Any, Any, Any], services: Services, *, for_console: bool) -> Redirect:
    if services.oidc is None:
        raise NotFound("no external identity provider is configured")
    ip, _ = _client(request)
    flow = await services.oidc.start(client_ip=ip)
    ttl = int(FLOW_TTL.total_seconds())
    # The callback must come back to the browser that started: it holds the flow's secret in this cookie.
    cookies = [_flow_cookie(BROWSER_COOKIE, flow.browser_secret, services, max_age=ttl)]
    if for_console:
        cookies.append(_flow_cookie(CONSOLE_OIDC_COOKIE, "1", services, max_age=ttl))
    return Redirect(path=flow.authorization_url, status_code=302, cookies=cookies)


async def _finish_for_console(request: Request[Any, Any, Any], services: Services, code: str, oidc_state: str,
                              spent: list[Cookie]) -> Response[Any]:
    """The console's way back: a redirect to the console carrying the refresh cookie, or the second factor's
    challenge, or the refusal's reason, in the hash (never sent to a server, so never in a log)."""
    assert services.oidc is not None
    try:
        identity = await services.oidc.finish(code, oidc_state, request.cookies.get(BROWSER_COOKIE))
        ip, agent = _client(request)
        result = await services.federation.sign_in(identity, client_ip=ip, user_agent=agent)
    except VigieError as refused:
        return Redirect(path=f"{CONSOLE_HOME}#/?{urlencode({'refus': refused.detail})}", status_code=303,
                        cookies=spent, headers={"Cache-Control": "no-store"})
    if isinstance(result, SecondFactorChallenge):
        return Redirect(path=f"{CONSOLE_HOME}#/?{urlencode({'second-factor': result.challenge})}", status_code=303,
                        cookies=spent, headers={"Cache-Control": "no-store"})
    session = refresh_cookie(result.refresh_token, services.settings.auth.refresh_ttl_s)
    return Redirect(path=CONSOLE_HOME, status_code=303, cookies=[*spent, session],
                    headers={"Cache-Control": "no-store"})


@get("/.well-known/jwks.json", tags=["auth"], summary="Public keys that sign access tokens")
async def jwks(services: ServicesDep) -> dict[str, Any]:
    return services.sessions.jwks()


ROUTES = [AuthController, jwks]
