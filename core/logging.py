"""Structured JSON logs; request id, principal and tenant travel in context variables; credentials never reach them."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# The userinfo of any URL (`scheme://user:password@host`), wherever it appears in a text: ffmpeg and libav name the
# URL they failed to open in the middle of their messages, exceptions carry it in their text, DSNs carry passwords.
# Greedy up to the last "@" before the host, so a password holding a raw "@" is hidden whole.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,15}://)[^\s/'\"<>@]*(?:@[^\s/'\"<>@]*)*@")
REDACTED = "***"


def redact_credentials(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by ***."""
    if "://" not in text:
        return text
    return _USERINFO.sub(rf"\1{REDACTED}@", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact_credentials(value)
    if isinstance(value, Mapping):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    if isinstance(value, BaseException):
        return redact_credentials(repr(value))
    return value


def scrub_credentials(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """structlog processor: credentials in URLs are redacted in every value of the line, nested ones included."""
    return {key: _scrub(value) for key, value in event_dict.items()}


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Route stdlib and structlog records through one JSON renderer on stderr."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, scrub_credentials, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                scrub_credentials,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def bind_context(**values: object) -> None:
    """Attach values (request_id, user_id, tenant scope) to every log line of this task."""
    structlog.contextvars.bind_contextvars(**values)


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
