"""The operator console's built files (console/dist) under /console/, on the API's origin, with strict headers."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import Response
from litestar.static_files import create_static_files_router

from api.map_settings import MapSettings
from core.objectstore_settings import ObjectStoreSettings
from live.settings import LiveSettings

CONSOLE_DIST = Path(__file__).resolve().parents[2] / "console" / "dist"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def media_origin(store: ObjectStoreSettings) -> str:
    """Where browsers fetch signed media links (clips, playback): the API's /media for the filesystem store, the
    S3 endpoint browsers reach otherwise."""
    if store.backend == "fs":
        return _origin(store.presign_base_url)
    return f"{'https' if store.secure else 'http'}://{store.public_endpoint or store.endpoint}"


def content_security_policy(live_url: str, media_url_origin: str = "", tile_origin: str = "") -> str:
    """Scripts and styles from the console's own files only (no inline, no eval); the API on the same origin; the
    live gateway's socket; video from the signed media links' origin and from MediaSource blobs; the sites map's
    tiles from the configured tile server only."""
    live = _origin(live_url)
    media = f" {media_url_origin}" if media_url_origin else ""
    tiles = f" {tile_origin}" if tile_origin and tile_origin != media_url_origin else ""
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' blob: data:{media}{tiles}",
        f"media-src 'self' blob:{media}",
        "font-src 'self'",
        # blob: the playback page hands hls.js the API's playlist as a blob the page made itself.
        f"connect-src 'self' blob:{' ' + live if live else ''}",
        "worker-src 'self' blob:",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ])


def security_headers(live_url: str, media_url_origin: str = "", tile_origin: str = "") -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(live_url, media_url_origin, tile_origin),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    }


@cache
def _headers() -> dict[str, str]:
    # Read at the first response, not at import: `vigie demo` settles the media links' base before serving.
    return security_headers(LiveSettings().public_url, media_origin(ObjectStoreSettings()), MapSettings().tile_origin)


async def _add_headers(response: Response[Any]) -> Response[Any]:
    for name, value in _headers().items():
        response.headers[name] = value
    # index.html names the hashed bundles: it must never be cached, while the bundles themselves may be.
    response.headers.setdefault("Cache-Control", "no-cache")
    return response


def _routes() -> list[Any]:
    if not CONSOLE_DIST.is_dir():
        # Not built (make console): the API still serves; /console answers 404 like any unknown path.
        return []
    static = create_static_files_router(path="/console", directories=[CONSOLE_DIST], html_mode=True,
                                        name="console", after_request=_add_headers, include_in_schema=False)
    return [static]


ROUTES = _routes()
