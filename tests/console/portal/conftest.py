"""Portal fixtures: one platform as `vigie demo` runs it for every admin, mayor and auditor page test of the run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from cli.seed import DEMO_PASSWORD
from core.settings import PROJECT_ROOT
from tests.console.browser import sign_in
from tests.console.conftest import ARTIFACTS
from tests.console.platform import DemoPlatform

SignIn = Callable[[str], Page]

TOTP_STEP_S = 30
# The TOTP step each account last signed in with: a code works once, so a second sign-in waits for the next step.
_steps_used: dict[str, int] = {}


@pytest.fixture(scope="package")
def portal_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPlatform]:
    """Started once for the package: the portal's pages read and edit configuration, so its tests share one platform
    (each names what it creates uniquely and never depends on another test's edits)."""
    if not (PROJECT_ROOT / "console" / "dist" / "index.html").is_file():
        pytest.fail("console/dist is missing: run make console")
    platform = DemoPlatform(tmp_path_factory.mktemp("portal-platform"))
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()


@pytest.fixture
def signed_in(portal_platform: DemoPlatform, browser: Browser) -> Iterator[SignIn]:
    """`signed_in(email)`: a page of a fresh browser context, signed in to the console as that demo account."""
    contexts: list[BrowserContext] = []

    def open_as(email: str) -> Page:
        context = browser.new_context(locale="fr-FR", viewport={"width": 1440, "height": 900})
        contexts.append(context)
        page = context.new_page()
        while int(time.time() // TOTP_STEP_S) <= _steps_used.get(email, -1):
            time.sleep(0.5)
        sign_in(page, portal_platform, email, DEMO_PASSWORD)
        # The code used lies between the step at the start and this one: the next sign-in waits past both.
        _steps_used[email] = int(time.time() // TOTP_STEP_S)
        return page

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture
def portal_artifacts() -> Path:
    """Where the portal's screenshots go (listed in docs/console.md)."""
    folder = ARTIFACTS / "portal"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
