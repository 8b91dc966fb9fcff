"""Authorization code + PKCE for the officers' phone app: the authorization endpoint and the code exchange."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, QueryParameter

from api.deps import ServicesDep
from identity.authorization import AuthorizationGranted, AuthorizationPrompt, AuthorizationRequest, CodeExchange
from identity.model import TokenPair


def _client(request: Request[Any, Any, Any]) -> tuple[str, str]:
    host = request.client.host if request.client else "unknown"
    return host, request.headers.get("user-agent", "")


class OAuthController(Controller):
    """Public: the caller has no token yet. Bodies are JSON, like everywhere in this API (not form-encoded)."""

    path = "/auth"
    tags = ["auth"]

    @get(
        "/authorize",
        summary="Check an authorization request of a registered client",
        exclude_from_auth=True,
        security=[],
    )
    async def authorize_prompt(
        self,
        services: ServicesDep,
        client_id: Annotated[str, QueryParameter(min_length=3, max_length=64)],
        redirect_uri: Annotated[str, QueryParameter(min_length=1, max_length=500)],
        code_challenge: Annotated[str, QueryParameter(pattern=r"^[A-Za-z0-9_-]{43}$")],
        response_type: Annotated[Literal["code"], QueryParameter()] = "code",
        code_challenge_method: Annotated[Literal["S256"], QueryParameter()] = "S256",
        oauth_state: Annotated[str | None, QueryParameter(name="state", max_length=500)] = None,
    ) -> AuthorizationPrompt:
        return await services.authorization.prompt(client_id, redirect_uri, oauth_state)

    @post(
        "/authorize",
        summary="Sign in and get a one-use authorization code bound to the PKCE challenge",
        status_code=200,
        exclude_from_auth=True,
        security=[],
    )
    async def authorize(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: JSONBody[AuthorizationRequest]
    ) -> AuthorizationGranted:
        ip, _ = _client(request)
        return await services.authorization.authorize(data, client_ip=ip)

    @post(
        "/token",
        summary="Redeem an authorization code with its PKCE verifier",
        status_code=200,
        exclude_from_auth=True,
        security=[],
    )
    async def token(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: JSONBody[CodeExchange]
    ) -> TokenPair:
        ip, agent = _client(request)
        return await services.authorization.exchange(data, client_ip=ip, user_agent=agent)


ROUTES = [OAuthController]
