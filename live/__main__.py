"""`python -m live`: the live-video gateway (litestar WebSocket under uvicorn) on VIGIE_LIVE_HOST:VIGIE_LIVE_PORT."""

from __future__ import annotations

import asyncio
import os
import socket

import uvicorn

from core.crypto import SecretBox
from core.db import open_database
from core.logging import configure_logging
from core.metrics import serve_metrics
from core.settings import get_settings
from live.gateway import create_gateway
from live.hub import ViewerHub
from live.service import LiveService
from live.settings import LiveSettings
from live.tickets import TicketSigner

# On SIGTERM, viewers are told the gateway is going (close 1001) and their viewings' ends recorded within this.
SHUTDOWN_GRACE_S = 3


async def main() -> None:
    settings, live = get_settings(), LiveSettings()
    configure_logging(settings.log_level)
    # The runtime role only: every query runs in the tenant a ticket names (row-level security).
    db = await open_database(settings.database.app_dsn, app_pool_size=(1, live.db_pool_max))
    service = LiveService(db=db, signer=TicketSigner(live.ticket_key.get_secret_value()), settings=live,
                          secrets=SecretBox(settings.data_key.get_secret_value()))
    gateway_id, hub = f"{socket.gethostname()}:{os.getpid()}", ViewerHub(live)
    serve_metrics(live.metrics_address, process="live", registry=hub.registry)
    app = create_gateway(service, hub, live, gateway_id)
    # No permessage-deflate: browsers offer it on every socket, and compressing video that is already compressed,
    # once per viewer, was most of the gateway's CPU for nothing.
    server = uvicorn.Server(uvicorn.Config(app, host=live.host, port=live.port, log_config=None,
                                           timeout_graceful_shutdown=SHUTDOWN_GRACE_S, ws_per_message_deflate=False))
    try:
        await server.serve()
    finally:
        await db.close()


if __name__ == "__main__":
    asyncio.run(main())
