"""The enrolment link in Debian's Chromium: an administrator invites through `python -m api`, the link it answers opens
the console's enrolment page with no session; the person scans the QR code (read back from the screenshot), sets
their own password and first code, then signs in with them. A forced re-enrolment's link replaces both; a used
link, or one cut short, says so."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pyotp
import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Browser, Page, expect

from cli.seed import SeedResult
from core.settings import Settings
from tests.api.conftest import Actor
from tests.api.test_live_stream import ServedApi, served_console
from tests.browser.chromium import artifact, launched_chromium
from tests.console.browser import SERIOUS
from tests.console.platform import AXE

pytestmark = pytest.mark.integration

ADMIN = "admin@valdoise.demo"
PASSWORD, NEW_PASSWORD = "une phrase de passe bien à moi", "une autre phrase, choisie seule"


@pytest.fixture(scope="module")
def served(api_settings: Settings, seeded: SeedResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    # The links it answers open its own console.
    with served_console(api_settings, tmp_path_factory.mktemp("served-api"),
                        lambda url: {"VIGIE_API__PUBLIC_URL": url}) as server:
        yield server


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with launched_chromium() as launched:
        yield launched


def _invite(served: ServedApi, admin: Actor, seeded: SeedResult) -> tuple[dict[str, Any], str]:
    """An operator invited through the served API: the invitation and the enrolment link it answered."""
    body = {
        "email": f"op-{uuid.uuid4().hex[:8]}@valdoise.demo",
        "display_name": "Opératrice invitée",
        "membership": {"tenant_id": str(seeded.tenants["departement"]), "role": "operator"},
        "habilitation": {"agrement_number": "AGR-95-WEB", "enquiry_date": "2025-06-01", "expires_on": "2030-01-01"},
    }
    invited = httpx2.post(f"{served.url}/users", json=body, headers=admin.headers, timeout=15)
    assert invited.status_code == 201, invited.text
    return body, invited.json()["enrolment"]["link"]


async def _violations(page: Page) -> list[dict[str, Any]]:
    await page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(
             v => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(' '))}))""")
    return [v for v in found if v["impact"] in SERIOUS]


async def _scanned_seed(page: Page, name: str) -> str:
    """What an authenticator app would read from the page's QR code: the seed of its otpauth:// URI."""
    path = artifact(name)
    await page.get_by_role("img", name="Code QR du second facteur à scanner").screenshot(path=str(path))
    read = zxingcpp.read_barcodes(Image.open(path))
    assert [r.format for r in read] == [zxingcpp.BarcodeFormat.QRCode], f"no QR code read from {path}"
    uri = urlsplit(read[0].text)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    return parse_qs(uri.query)["secret"][0]


async def _code_after(seed: str, spent_at: float) -> str:
    """A code of the step after the one spent at `spent_at` (a step's code works once), waiting for it if need be."""
    totp = pyotp.TOTP(seed)
    wait = (int(spent_at // totp.interval) + 1) * totp.interval - time.time()
    if wait > 0:
        await asyncio.sleep(wait + 0.2)
    return totp.now()


async def _open(page: Page, link: str) -> None:
    """A fresh load, as from an e-mail: the console is one document, a link differing only in its fragment would
    not reload it."""
    await page.goto("about:blank")
    await page.goto(link)


async def _enrol_on_the_page(page: Page, link: str, password: str, shot: str) -> tuple[str, float]:
    """Open the link, check what it shows, set the password and the first code; returns the seed and when its
    code was given."""
    await _open(page, link)
    await expect(page.get_by_role("img", name="Code QR du second facteur à scanner")).to_be_visible(timeout=15_000)
    assert "jeton" not in page.url  # taken off the address bar, so not in the history either
    seed = await _scanned_seed(page, f"{shot}-qr.png")
    shown = (await page.locator("code.secret").inner_text()).replace(" ", "")
    assert shown == seed  # the key typed by hand is the one the QR code carries
    assert await _violations(page) == []
    await page.screenshot(path=str(artifact(f"{shot}.png")), full_page=True)
    await page.get_by_label("Mot de passe", exact=True).fill(password)
    await page.get_by_label("Confirmation du mot de passe").fill(password)
    code = page.get_by_label("Code à six chiffres de votre application d\u2019authentification")
    await code.fill(pyotp.TOTP(seed).now())
    given_at = time.time()
    await page.get_by_role("button", name="Enregistrer mes identifiants").click()
    await expect(page.get_by_role("heading", name="Vos identifiants sont enregistrés")).to_be_visible()
    return seed, given_at


async def _sign_in(page: Page, served: ServedApi, email: str, password: str, code: str) -> None:
    await page.goto(f"{served.url}/console/")
    await page.get_by_label("Adresse électronique").fill(email)
    await page.get_by_label("Mot de passe").fill(password)
    await page.get_by_role("button", name="Se connecter").click()
    await page.locator("#code").fill(code)
    await page.get_by_role("button", name="Valider").click()


async def test_an_invited_operator_enrols_in_the_console_then_signs_in_with_their_own_credentials(
    served: ServedApi, browser: Browser, actors: dict[str, Actor], seeded: SeedResult,
) -> None:
    body, link = _invite(served, actors[ADMIN], seeded)
    assert link.startswith(f"{served.url}/console/#/inscription?jeton=")

    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    try:
        await _open(page, link)
        heading = page.get_by_role("heading", name="Activer votre accès à Vigie")
        await expect(heading).to_be_visible(timeout=15_000)
        await expect(page.locator("dl.facts")).to_contain_text(body["email"])
        await expect(page.locator("dl.facts")).to_contain_text("opérateur")
        # Refused on the page before anything is sent, then by the API (its problem shown on the field): the link
        # is not spent by either.
        await page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
        await page.get_by_label("Confirmation du mot de passe").fill(PASSWORD + " ")
        await page.get_by_role("button", name="Enregistrer mes identifiants").click()
        await expect(page.get_by_text("Les deux mots de passe diffèrent.")).to_be_visible()
        await page.get_by_label("Mot de passe", exact=True).fill("court")
        await page.get_by_label("Confirmation du mot de passe").fill("court")
        await page.get_by_role("button", name="Enregistrer mes identifiants").click()
        await expect(page.locator("#password-error")).to_contain_text("at least 12 characters")
        await page.screenshot(path=str(artifact("enrolment-refused-password.png")), full_page=True)

        seed, given_at = await _enrol_on_the_page(page, link, PASSWORD, "enrolment-invitation")
        await page.screenshot(path=str(artifact("enrolment-done.png")), full_page=True)
        await page.get_by_role("link", name="Se connecter à la console").click()
        await _sign_in(page, served, body["email"], PASSWORD, await _code_after(seed, given_at))
        await expect(page.get_by_role("navigation", name="Navigation principale")).to_be_visible(timeout=15_000)

        # The link worked once.
        await _open(page, link)
        await expect(page.get_by_role("alert")).to_contain_text("Ce lien n\u2019est plus valable")
        await page.screenshot(path=str(artifact("enrolment-used-link.png")), full_page=True)
    finally:
        await context.close()


async def test_a_forced_reenrolment_replaces_both_factors_through_the_console(
    served: ServedApi, browser: Browser, actors: dict[str, Actor], seeded: SeedResult,
) -> None:
    admin = actors[ADMIN].headers
    body, first_link = _invite(served, actors[ADMIN], seeded)
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    try:
        first_seed, _ = await _enrol_on_the_page(page, first_link, PASSWORD, "enrolment-first")
        users = httpx2.get(f"{served.url}/users", params={"limit": 200}, headers=admin, timeout=15).json()["items"]
        user = next(u for u in users if u["email"] == body["email"])
        forced = httpx2.post(f"{served.url}/users/{user['id']}/reenrolment", headers=admin, timeout=15)
        assert forced.status_code in (200, 201), forced.text
        link = forced.json()["enrolment"]["link"]

        await _open(page, link)
        await expect(page.get_by_role("heading", name="Renouveler vos identifiants Vigie")).to_be_visible(
            timeout=15_000)
        seed, given_at = await _enrol_on_the_page(page, link, NEW_PASSWORD, "enrolment-reenrolment")
        assert seed != first_seed

        code = await _code_after(seed, given_at)
        # The old password no longer opens the account; the new one with the new seed's code does.
        await page.goto(f"{served.url}/console/")
        await page.get_by_label("Adresse électronique").fill(body["email"])
        await page.get_by_label("Mot de passe").fill(PASSWORD)
        await page.get_by_role("button", name="Se connecter").click()
        await expect(page.get_by_role("alert")).to_be_visible()
        await expect(page.locator("#code")).to_have_count(0)
        await _sign_in(page, served, body["email"], NEW_PASSWORD, code)
        await expect(page.get_by_role("navigation", name="Navigation principale")).to_be_visible(timeout=15_000)
    finally:
        await context.close()


async def test_a_link_cut_short_says_so(served: ServedApi, browser: Browser) -> None:
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    try:
        await page.goto(f"{served.url}/console/#/inscription")
        await expect(page.get_by_role("alert")).to_contain_text("Ce lien est incomplet")
        await _open(page, f"{served.url}/console/#/inscription?jeton={'x' * 43}")
        await expect(page.get_by_role("alert")).to_contain_text("Ce lien n\u2019est plus valable")
    finally:
        await context.close()
