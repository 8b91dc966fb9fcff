"""Request ids on every request and response, bound to the logs; JSON-only request bodies."""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core.logging import bind_context, clear_context

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Keeps a caller's X-Request-ID when well-formed, otherwise makes one; echoes it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        clear_context()
        bind_context(request_id=request_id, path=scope["path"])

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


# \u0000 preceded by an even number of backslashes: an escaped NUL, not the literal text "\\u0000".
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)


async def require_json_body(request: Request[Any, Any, Any]) -> None:
    """Refuse a body that is not JSON before anything parses it, and NUL characters anywhere (Postgres text
    cannot hold them, and no legitimate value contains one)."""
    if "\x00" in request.url.path or any("\x00" in k or "\x00" in v for k, v in request.query_params.items()):
        raise HTTPException(status_code=400, detail="NUL characters are not accepted in the URL")
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    length = request.headers.get("content-length")
    has_body = (length is not None and length != "0") or "transfer-encoding" in request.headers
    if not has_body:
        return
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(
            status_code=415, detail=f"request bodies must be application/json, not {media_type or 'unspecified'}"
        )
    if _JSON_NUL.search(await request.body()):
        raise HTTPException(status_code=400, detail="NUL characters are not accepted in JSON strings")
