"""`python -m api`: serve the HTTP API with uvicorn."""

from __future__ import annotations

import uvicorn

from api.app import create_app, serve_metrics
from core.logging import configure_logging
from core.settings import get_settings

# On SIGTERM, requests in flight get this long to finish; endless responses (the live alarm queue over SSE) are
# then cut, otherwise one open browser tab would hold the process until it is killed. Browsers reconnect.
SHUTDOWN_GRACE_S = 5


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    serve_metrics(settings.api.metrics_address)
    uvicorn.run(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        # The app resolves the client behind trusted proxies itself (api/proxies.py, settings.api.trusted_proxies),
        # the same under any server and in tests; uvicorn's own rewrite (on by default for 127.0.0.1) would be a
        # second, differently configured source of truth.
        proxy_headers=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )


if __name__ == "__main__":
    main()
