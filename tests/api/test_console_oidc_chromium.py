"""The console's identity-provider button in Debian's Chromium: `python -m api` configured with a real local OIDC
provider; the button leads there and back through the registered callback, the console asks for Vigie's second
factor and signs in; the refresh cookie keeps the session over a reload. Without a provider there is no button."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pyotp
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from playwright.async_api import Browser, expect

from cli.seed import SeedResult
from core.settings import Settings
from tests.api.conftest import Actor
from tests.api.test_live_stream import ServedApi, served_console
from tests.browser.chromium import artifact, launched_chromium
from tests.oidc_provider import OidcProvider

pytestmark = pytest.mark.integration

ADMIN, OPERATOR = "admin@valdoise.demo", "operateur2@valdoise.demo"
# The console's French uses the typographic apostrophe (U+2019).
BUTTON = "Se connecter avec le fournisseur d\u2019identit\u00e9 (ProConnect)"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with OidcProvider() as running:
        yield running


@pytest.fixture(scope="module")
def served(api_settings: Settings, seeded: SeedResult, provider: OidcProvider,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    def identity_provider(url: str) -> dict[str, str]:
        return {"VIGIE_OIDC__ISSUER": provider.state.issuer, "VIGIE_OIDC__CLIENT_ID": provider.state.client_id,
                "VIGIE_OIDC__CLIENT_SECRET": provider.state.client_secret,
                "VIGIE_OIDC__REDIRECT_URI": f"{url}/auth/oidc/callback"}

    with served_console(api_settings, tmp_path_factory.mktemp("served-api"), identity_provider) as server:
        yield server


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with launched_chromium() as launched:
        yield launched


async def test_the_operator_signs_in_to_the_console_through_the_identity_provider(
    served: ServedApi, provider: OidcProvider, browser: Browser, client: AsyncTestClient[Litestar],
    actors: dict[str, Actor], seeded: SeedResult, department_pool: asyncpg.Pool,
) -> None:
    operator_id = await department_pool.fetchval("SELECT id FROM users WHERE email = $1", OPERATOR)
    linked = await client.post(f"/users/{operator_id}/external-identities", headers=actors[ADMIN].headers,
                               json={"issuer": provider.state.issuer, "subject": provider.state.subject_for(OPERATOR)})
    assert linked.status_code in (201, 409), linked.text
    provider.state.reset()
    provider.state.next_email, provider.state.next_amr = OPERATOR, ["pwd"]
    secret = next(u.totp_secret for u in seeded.users if u.email == OPERATOR)
    assert secret is not None

    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    try:
        await page.goto(f"{served.url}/console/")
        await page.get_by_role("link", name=BUTTON).click()
        # There and back: the provider consents at once, the callback sends the browser to the console's TOTP step.
        code = page.locator("#code")
        await expect(code).to_be_visible(timeout=15_000)
        await expect(page).not_to_have_url(re.compile("second-factor"))  # read once, then gone from the address bar
        await page.screenshot(path=str(artifact("console-oidc-second-factor.png")), full_page=True)
        navigation = page.get_by_role("navigation", name="Navigation principale")
        # A code works once and no earlier step's code after it: earlier suites of the run may have spent this step
        # or the next (they sign in with either), so the code is typed once the clock is past the last spent step.
        totp = pyotp.TOTP(secret)
        spent = await department_pool.fetchval("SELECT totp_last_step FROM users WHERE email = $1", OPERATOR)
        if spent is not None and (wait := (spent + 1) * totp.interval - time.time()) > 0:
            await asyncio.sleep(wait + 0.2)  # into the first step after the spent one
        await code.fill(totp.now())
        await page.get_by_role("button", name="Valider").click()
        await expect(navigation).to_be_visible()
        # The refresh cookie the console got keeps the session over a reload (the access token was in memory only).
        await page.reload()
        await expect(navigation).to_be_visible(timeout=15_000)
        assert await page.evaluate("document.cookie") == ""  # nothing readable by script
    finally:
        await context.close()


async def test_a_refused_identity_is_explained_on_the_sign_in_page(
    served: ServedApi, provider: OidcProvider, browser: Browser,
) -> None:
    provider.state.reset()
    provider.state.next_email = "inconnu@ailleurs.example"
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    try:
        await page.goto(f"{served.url}/console/")
        await page.get_by_role("link", name=BUTTON).click()
        refusal = page.get_by_role("alert")
        await expect(refusal).to_contain_text(
            "Le fournisseur d\u2019identit\u00e9 n\u2019a pas permis la connexion", timeout=15_000)
        await expect(page.get_by_label("Adresse électronique")).to_be_visible()
        await page.screenshot(path=str(artifact("console-oidc-refused.png")), full_page=True)
    finally:
        await context.close()
