"""Request ids on every request and response, bound to the logs, and request timings; JSON-only request bodies."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Gauge, Histogram

from core.logging import bind_context, clear_context

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


REQUEST_SECONDS = Histogram(
    "vigie_api_request_duration_seconds", "Time to answer a request, by route and status",
    ["method", "route", "status"], buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
IN_PROGRESS = Gauge("vigie_api_requests_in_progress", "Requests being answered")


class RequestContextMiddleware:
    """Per request: keeps a caller's X-Request-ID when well-formed (otherwise makes one), echoes it in the response
    and binds it to the logs, and times the request by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # One histogram child per (method, route, status): labels() resolves names on every call otherwise.
        self._timers: dict[tuple[str, str, int], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _VALID_ID.match(incoming) else secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        clear_context()
        bind_context(request_id=request_id, path=scope["path"])
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            IN_PROGRESS.dec()
            key = (scope["method"], scope.get("path_template", "unmatched"), status)
            timer = self._timers.get(key)
            if timer is None:
                timer = self._timers[key] = REQUEST_SECONDS.labels(*key)
            timer.observe(time.perf_counter() - started)


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
