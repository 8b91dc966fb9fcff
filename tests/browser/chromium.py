"""Debian's Chromium under Playwright (no downloaded browser), the HLS player the pages load, and where screenshots
are kept as test artifacts."""

from __future__ import annotations

from pathlib import Path

from core.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--autoplay-policy=no-user-gesture-required"]
HLS_JS = PROJECT_ROOT / "tests" / "browser" / "node_modules" / "hls.js" / "dist" / "hls.min.js"
ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts" / "browser"


def hls_js() -> str:
    """hls.js as installed from tests/browser's lockfile (`npm ci --prefix tests/browser`, run by `make test`)."""
    if not HLS_JS.exists():
        raise AssertionError(f"{HLS_JS} is missing: run `npm ci --prefix tests/browser` (make test does)")
    return HLS_JS.read_text()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
