"""What the console's browser tests and benchmark do in a page: sign in, check accessibility, wait for alerts."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.console.platform import AXE, DemoPlatform

SERIOUS = ("serious", "critical")


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (injected through the debugging protocol,
    which the page's CSP does not govern)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(
             v => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(' '))}))""")
    return [v for v in found if v["impact"] in SERIOUS]


def sign_in(page: Page, platform: DemoPlatform, email: str, password: str) -> None:
    """Password, then the second factor (the account's current code, as its authenticator app would show it)."""
    page.goto(f"{platform.api_url}/console/")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    code = page.locator("#code")
    expect(code).to_be_visible()
    code.fill(platform.totp(email))
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_role("navigation", name="Navigation principale")).to_be_visible(timeout=15_000)
