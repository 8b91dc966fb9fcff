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
    "^/schema",
    r"^/\.well-known/",
    "^/auth/login",
    "^/auth/refresh$",
    # The console's sign-in, its options and federated start, and refresh (the refresh token comes in its cookie);
    # its logout needs the bearer.
    "^/auth/console/(login|refresh|options$|oidc/start$)",
    # The console's static files: the application signs in by itself.
    "^/console(/|$)",
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
        scheme, token = scheme.lower(), token.strip()
        if scheme not in ("bearer", "dpop") or not token:
            raise AuthenticationFailed("a bearer access token is required")
        services = connection.app.state.services
        principal = await services.sessions.resolve(token)
        if principal.key_thumbprint is not None or scheme == "dpop":
            # A token bound to a device key (the phone app's) needs a proof of that key for this very request.
            proofs = [v.decode("latin-1") for k, v in connection.scope["headers"] if k == b"dpop"]
            services.authorization.check_resource_proof(
                principal, scheme=scheme, access_token=token, proof=proofs[0] if len(proofs) == 1 else None,
                method=str(connection.scope.get("method", "GET")), path=connection.scope["path"],
                received_url=str(connection.url),
            )
        bind_context(user_id=str(principal.user_id), role=principal.role.value,
                     tenant_id=str(principal.home_tenant_id), session_id=str(principal.session_id))
        return AuthenticationResult(user=principal, auth=token)
