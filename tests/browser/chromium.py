"""Debian's Chromium under Playwright (no downloaded browser), the HLS player the pages load, and where screenshots
are kept as test artifacts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from core.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--autoplay-policy=no-user-gesture-required"]
HLS_JS = PROJECT_ROOT / "console" / "node_modules" / "hls.js" / "dist" / "hls.min.js"
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts" / "browser"


def hls_js() -> str:
    """hls.js as the console locks it (console/package-lock.json; `make console` installs it)."""
    if not HLS_JS.exists():
        raise AssertionError(f"{HLS_JS} is missing: run make console")
    return HLS_JS.read_text()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


@asynccontextmanager
async def launched_chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, for a module's async browser tests."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
