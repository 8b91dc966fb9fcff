"""Console fixtures: the platform as `vigie demo` runs it, the officers' reference phones, Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from core.settings import PROJECT_ROOT
from tests.console.platform import CHROMIUM, DemoPlatform

ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts" / "console"


@pytest.fixture(scope="module")
def demo_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPlatform]:
    if not (PROJECT_ROOT / "console" / "dist" / "index.html").is_file():
        pytest.fail("console/dist is missing: run make console")
    platform = DemoPlatform(tmp_path_factory.mktemp("console-platform"))
    platform.start()
    platform.start_phones()
    try:
        yield platform
    finally:
        platform.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            # French, as the operators' browsers are: date and month inputs then read dd/mm/yyyy.
            args=["--disable-background-networking", "--disable-component-update", "--disable-sync", "--lang=fr-FR"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
