"""The one map from errors to RFC 9457 problem+json responses; nothing else in the API formats errors.

A server-side failure never tells the client what failed inside: unexpected exceptions, database errors, 5xx raised
by the framework and dependency failures that carry their cause's text answer a fixed detail with the request id,
and the full text goes to the log under that id."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    LegalRuleViolation,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    VigieError,
)
from core.logging import get_logger, redact_credentials

log = get_logger(__name__)
PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[VigieError], int, str]] = [
    (NotFound, 404, "not-found"),
    (LegalRuleViolation, 422, "legal-rule"),
    (InvalidInput, 422, "invalid-input"),
    (Conflict, 409, "conflict"),
    (AuthenticationFailed, 401, "unauthenticated"),
    (PermissionDenied, 403, "forbidden"),
    (RateLimited, 429, "rate-limited"),
    (Unavailable, 503, "unavailable"),
]
_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(
    request: Request[Any, Any, Any],
    status: int,
    kind: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": f"https://vigie.local/problems/{kind}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        # Whatever a message quotes (a camera URL refused, a DSN), credentials never leave in it.
        "detail": redact_credentials(detail),
        "instance": request.url.path,
    }
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _request_id(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))


def _internal(exc: BaseException) -> bool:
    """A dependency failure raised on top of a driver's or a library's exception (a socket, the database, the object
    store, an HTTP client): its message repeats what that exception said (a host, a path, an error text), for the log
    and not the client. One raised on top of another of the platform's errors was written for the caller."""
    return any(c is not None and not isinstance(c, VigieError) for c in (exc.__cause__, exc.__context__))


def handle_domain_error(request: Request[Any, Any, Any], exc: VigieError) -> Response[dict[str, Any]]:
    if isinstance(exc, Unavailable) and _internal(exc):
        log.warning("api.dependency_unavailable", path=request.url.path, error=exc.detail)
        return problem(request, 503, "unavailable", "a service this request needs does not answer; retry later "
                       f"(request id {_request_id(request)})")
    for error_type, status, kind in _STATUS:
        if isinstance(exc, error_type):
            headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
            if status == 401:
                headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            return problem(
                request,
                status,
                kind,
                exc.detail,
                headers=headers,
                field=getattr(exc, "field", None),
                reference=getattr(exc, "reference", None),
            )
    return problem(request, 400, "bad-request", exc.detail)


_FIELD_IN_MESSAGE = re.compile(r"at `\$\.?([^`]*)`")


def handle_validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    """msgspec and parameter validation: name the offending field."""
    errors: list[dict[str, Any]] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            message = str(item.get("message", ""))
            key = item.get("key")
            match = _FIELD_IN_MESSAGE.search(message)
            field = str(key) if key and key != "body" else (match.group(1) if match else None)
            errors.append({"field": field, "message": message, "source": item.get("source")})
    detail = errors[0]["message"] if errors else (exc.detail or "invalid request")
    field = errors[0]["field"] if errors else None
    if "JSON is malformed" in detail or "malformed" in detail.lower():
        field = field or "body"
    return problem(request, 400, "validation", detail, field=field, errors=errors or None)


def handle_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500:
        # Raised by the framework on a server-side failure: its detail may name internals.
        return handle_unexpected(request, exc)
    headers = dict(exc.headers or {})
    field = "body" if status in (400, 413, 415) else None
    return problem(
        request,
        status,
        _TITLES.get(status, "error").lower().replace(" ", "-"),
        exc.detail,
        headers=headers or None,
        field=field,
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Bugs, database errors, anything unforeseen: a fixed detail and the request id; the exception is logged."""
    log.error("api.unexpected_error", path=request.url.path, exc_info=exc)
    return problem(request, HTTP_500_INTERNAL_SERVER_ERROR, "internal", "an unexpected error occurred; it was logged "
                   f"under request id {_request_id(request)}")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    VigieError: handle_domain_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}
