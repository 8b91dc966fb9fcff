"""The caller's address behind trusted reverse proxies: X-Forwarded-For is believed only from a peer inside the
configured networks, and only as far back as the chain of trusted proxies goes."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from an X-Forwarded-For element: bare, `v4:port`, `[v6]` or `[v6]:port`; None when malformed."""
    text = value.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Sequence[Network]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in networks)


def client_address(peer: str, forwarded_for: Iterable[str], networks: Sequence[Network]) -> str:
    """The client's address. A peer outside the trusted networks is the client, whatever it claims. From a trusted
    peer, X-Forwarded-For (every header, in order) is walked right to left: each proxy appends the address it saw,
    so the rightmost address that is not a trusted proxy is the client; what lies to its left was written by that
    client and is not believed. A malformed element ends the walk at the last address a trusted proxy vouched for."""
    current = _address(peer)
    if current is None or not _trusted(current, networks):
        return peer
    chain = [item for header in forwarded_for for item in header.split(",") if item.strip()]
    for element in reversed(chain):
        hop = _address(element)
        if hop is None:
            break
        current = hop
        if not _trusted(hop, networks):
            break
    return str(current)


class TrustedProxyMiddleware:
    """Sets the ASGI scope's client to the resolved address (and the scheme to X-Forwarded-Proto from a trusted peer),
    so every consumer of `request.client` — sign-in throttling, sessions, logs — sees the real client. Without trusted
    networks it does nothing."""

    def __init__(self, app: ASGIApp, networks: Sequence[Network] = ()) -> None:
        self.app = app
        self.networks = tuple(networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if self.networks and scope["type"] in (ScopeType.HTTP, ScopeType.WEBSOCKET) and client:
            headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
            forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
            resolved = client_address(client[0], forwarded, self.networks)
            if resolved != client[0]:
                scope["client"] = (resolved, 0)
                proto = next((v.decode("latin-1").strip() for k, v in headers if k == b"x-forwarded-proto"), "")
                if proto in ("http", "https") and scope["type"] == ScopeType.HTTP:
                    scope["scheme"] = proto
        await self.app(scope, receive, send)


def client_host(request: Request[Any, Any, Any]) -> str:
    """The caller's address as resolved by TrustedProxyMiddleware."""
    return request.client.host if request.client else "unknown"
