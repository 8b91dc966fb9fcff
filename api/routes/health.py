"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from api.deps import ServicesDep


@get("/healthz", tags=["health"], summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", tags=["health"], summary="Postgres and NATS answer")
async def readyz(services: ServicesDep) -> Response[dict[str, Any]]:
    checks: dict[str, str] = {}
    try:
        await services.db.ping()
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"down: {exc.__class__.__name__}"
    checks["nats"] = "ok" if services.bus is not None and services.bus.connected else "down"
    ready = all(v == "ok" for v in checks.values())
    return Response({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)


ROUTES = [healthz, readyz]
