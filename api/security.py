"""Bearer-token authentication: the principal (and its tenant scope) comes from the verified token only."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from core.errors import AuthenticationFailed
from core.logging import bind_context

PUBLIC_PATHS = [
    "^/healthz$",
    "^/readyz$",
    "^/metrics",
    "^/schema",
    r"^/\.well-known/",
    "^/auth/login",
    "^/auth/refresh$",
    "^/auth/oidc/",
    # Signed short-lived links: the signature authorises, issued only after a journaled request.
    "^/media/",
    "^/evidence/signing-key$",
]


class BearerAuthentication(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        # The raw header list, not connection.headers: building the parsed mapping costs more than the lookup.
        header = next((v.decode("latin-1") for k, v in connection.scope["headers"] if k == b"authorization"), "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("a bearer access token is required")
        services = connection.app.state.services
        principal = await services.sessions.resolve(token.strip())
        bind_context(user_id=str(principal.user_id), role=principal.role.value,
                     tenant_id=str(principal.home_tenant_id), session_id=str(principal.session_id))
        return AuthenticationResult(user=principal, auth=token)
