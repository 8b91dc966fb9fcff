"""The console end to end in Debian's Chromium against the running platform: an operator signs in with the second
factor, an alert raised by the simulated footage appears without a reload, is claimed, verified and dispatched, and
the officer's phone (the reference client) acknowledges it on screen; forms show the API's problems next to their
fields; every page passes axe-core with no serious or critical violation; screenshots kept as artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from cli.seed import DEMO_PASSWORD
from tests.console.browser import accessibility_violations, sign_in
from tests.console.platform import DemoPlatform

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
OPERATOR, SUPERVISOR = "operateur1@valdoise.demo", "superviseur@valdoise.demo"
RESPONDED = ("acknowledged", "en_route", "on_scene", "closed")


def _new_page(browser: Browser, security_errors: list[str]) -> Page:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="fr-FR")
    page = context.new_page()

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            security_errors.append(message.text)

    page.on("console", watch)
    return page


def _accessible(page: Page, name: str, artifacts: Path) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    violations = accessibility_violations(page)
    assert not violations, f"{name}: {violations}"


def test_operator_works_a_live_alert_to_the_officers_acknowledgement(
    demo_platform: DemoPlatform, browser: Browser, artifacts: Path
) -> None:
    security_errors: list[str] = []
    page = _new_page(browser, security_errors)

    # Bad input: the API's problem shows next to the field it names.
    page.goto(f"{demo_platform.api_url}/console/")
    _accessible(page, "01-sign-in", artifacts)
    page.get_by_label("Adresse électronique").fill("pas-une-adresse")
    page.get_by_label("Mot de passe").fill("x")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("#email-error")).to_be_visible()
    expect(page.get_by_label("Adresse électronique")).to_have_attribute("aria-invalid", "true")
    _accessible(page, "02-sign-in-problem", artifacts)

    sign_in(page, demo_platform, OPERATOR, DEMO_PASSWORD)
    # Nothing of the session is kept where a script could read it later.
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert "vigie_console_refresh" not in page.evaluate("document.cookie")
    expect(page.locator("[data-stream='live']")).to_be_visible(timeout=20_000)
    page.evaluate("window.__sameDocument = true")
    present = page.eval_on_selector_all(".queue-item", "items => items.map(i => i.dataset.alertId)")

    # An alert raised by the simulated footage appears without a reload.
    page.wait_for_function(
        "known => [...document.querySelectorAll('.queue-item')].some(i => !known.includes(i.dataset.alertId))",
        arg=present, timeout=240_000)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    fresh = page.eval_on_selector_all(
        ".queue-item", "(items, known) => items.map(i => i.dataset.alertId).filter(id => !known.includes(id))", present)
    alert_id = fresh[0]
    page.locator(f"#alert-{alert_id}").click()
    panel = page.locator(f"article[data-alert-id='{alert_id}']")
    expect(panel).to_be_visible()
    _accessible(page, "03-queue", artifacts)

    # Claim with the keyboard shortcut, verify (a missing motive is shown on its field), dispatch.
    page.locator("body").press("c")
    expect(panel).to_have_attribute("data-state", "claimed", timeout=15_000)
    page.locator("body").press("v")
    page.get_by_role("button", name="Enregistrer la vérification").click()
    expect(page.locator("#verify-motive-error")).to_be_visible()
    _accessible(page, "04-verify-problem", artifacts)
    page.locator("#verify-motive").fill("levée de doute, essai de bout en bout")
    page.get_by_role("button", name="Enregistrer la vérification").click()
    expect(panel).to_have_attribute("data-state", "verified", timeout=15_000)
    page.locator("body").press("d")
    expect(page.locator("input[name='force_ids']").first).to_be_visible(timeout=15_000)
    _accessible(page, "05-dispatch", artifacts)
    page.get_by_role("button", name="Envoyer", exact=True).click()
    expect(panel).to_have_attribute("data-state", "dispatched", timeout=15_000)

    # The officer's phone acknowledges; the operator sees it without doing anything.
    page.wait_for_function(
        "states => [...document.querySelectorAll('[data-dispatch-status]')].some(r => "
        "states.includes(r.dataset.dispatchStatus))", arg=list(RESPONDED), timeout=120_000)
    _accessible(page, "06-acknowledged", artifacts)

    page.get_by_role("link", name="Main courante").click()
    expect(page.get_by_role("heading", name="Main courante", level=1)).to_be_visible()
    expect(page.locator("table.data tbody tr").first).to_be_visible(timeout=15_000)
    _accessible(page, "07-logbook", artifacts)
    page.get_by_role("button", name="Ajouter", exact=True).click()
    expect(page.locator("#logbook-text-error")).to_be_visible()

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_role("button", name="Se connecter")).to_be_visible()
    assert not security_errors, security_errors


def test_supervisor_view(demo_platform: DemoPlatform, browser: Browser, artifacts: Path) -> None:
    security_errors: list[str] = []
    page = _new_page(browser, security_errors)
    sign_in(page, demo_platform, SUPERVISOR, DEMO_PASSWORD)
    page.get_by_role("link", name="Supervision").click()
    expect(page.get_by_role("heading", name="Précision par règle (30 jours)")).to_be_visible()
    expect(page.get_by_role("heading", name="Charge des opérateurs")).to_be_visible()
    _accessible(page, "08-supervisor", artifacts)
    # A reload keeps the session through the refresh cookie alone.
    page.reload()
    expect(page.get_by_role("navigation", name="Navigation principale")).to_be_visible(timeout=15_000)
    assert not security_errors, security_errors
