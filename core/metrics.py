"""The Prometheus listener every process serves its metrics on: its own address, never a public port."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from core.logging import get_logger

log = get_logger(__name__)


def parse_address(address: str) -> tuple[str, int]:
    """("host", port) of "host:port", "[v6]:port" or ":port" (loopback); ValueError for anything else."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"metrics address {address!r} is not host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


def serve_metrics(address: str, *, process: str, registry: CollectorRegistry = REGISTRY) -> tuple[str, int] | None:
    """Serve /metrics of `registry` on `address` ("host:port"; port 0 takes a free one) in a daemon thread. Empty:
    not served. A port already taken is logged and the process keeps running: its work matters more than its
    metrics. Returns where it listens."""
    if not address:
        return None
    host, port = parse_address(address)
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("metrics.unavailable", process=process, address=address, error=str(exc))
        return None
    bound = server.server_address
    log.info("metrics.listening", process=process, host=bound[0], port=bound[1])
    return str(bound[0]), int(bound[1])
