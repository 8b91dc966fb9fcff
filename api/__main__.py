"""`python -m api`: serve the HTTP API with uvicorn."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from core.logging import configure_logging
from core.settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        proxy_headers=bool(settings.api.trusted_proxies),
        forwarded_allow_ips=",".join(settings.api.trusted_proxies) or None,
    )


if __name__ == "__main__":
    main()
