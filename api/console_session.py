"""The console's session on the wire: the access token in the body, the refresh token in an HttpOnly cookie."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.datastructures import Cookie

from core.errors import InvalidInput
from identity.model import TokenPair

REFRESH_COOKIE = "vigie_console_refresh"
# The browser sends the cookie to this path only: no other request, and no other page of the origin, carries it.
REFRESH_PATH = "/auth/console/refresh"
# A custom header makes a cross-site refresh a CORS preflight the API never allows (SameSite=Strict is the first
# line; this is the second, for browsers or proxies that get SameSite wrong).
CONSOLE_HEADER = "x-vigie-console"
# Set beside the federated flow's own cookie when the console starts it: the shared callback then answers the console
# with its refresh cookie and a redirect, instead of the tokens in JSON that an app reads.
CONSOLE_OIDC_COOKIE = "vigie_oidc_console"
# Where the callback sends the browser back: the console's sign-in reads these parameters of the hash.
CONSOLE_HOME = "/console/"


class ConsoleSession(msgspec.Struct, frozen=True, kw_only=True):
    """A signed-in console: the access token for memory, never the refresh token (it is in the cookie)."""

    access_token: str
    expires_in: int
    session_id: uuid.UUID
    role: str
    tenant_id: uuid.UUID
    token_type: str = "Bearer"


def require_console(request: Request[Any, Any, Any]) -> None:
    if request.headers.get(CONSOLE_HEADER) != "1":
        raise InvalidInput("console requests carry the X-Vigie-Console: 1 header", field=CONSOLE_HEADER)


def refresh_cookie(value: str, max_age: int) -> Cookie:
    # Secure even on http://127.0.0.1: browsers treat localhost as a secure context and keep the cookie.
    return Cookie(key=REFRESH_COOKIE, value=value, path=REFRESH_PATH, max_age=max_age, httponly=True, secure=True,
                  samesite="strict")


def signed_in(pair: TokenPair, refresh_ttl_s: int) -> Response[ConsoleSession]:
    session = ConsoleSession(access_token=pair.access_token, expires_in=pair.expires_in, session_id=pair.session_id,
                             role=pair.role, tenant_id=pair.tenant_id, token_type=pair.token_type)
    return Response(content=session, cookies=[refresh_cookie(pair.refresh_token, refresh_ttl_s)],
                    headers={"Cache-Control": "no-store"})
