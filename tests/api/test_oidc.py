"""Federated sign-in (authorization code + PKCE) against a real local OIDC provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pydantic import SecretStr

from api.app import create_app
from cli.seed import SeedResult
from core.settings import OidcSettings, Settings
from tests.oidc_provider import OidcProvider

pytestmark = pytest.mark.integration
REDIRECT = "http://testserver.local/auth/oidc/callback"


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[OidcProvider]:
    with OidcProvider() as running:
        yield running


@pytest.fixture(scope="module")
async def federated(
    api_settings: Settings, seeded: SeedResult, provider: OidcProvider
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    oidc = OidcSettings(
        issuer=provider.state.issuer,
        client_id=provider.state.client_id,
        client_secret=SecretStr(provider.state.client_secret),
        redirect_uri=REDIRECT,
    )
    async with AsyncTestClient(app=create_app(api_settings.model_copy(update={"oidc": oidc}))) as client:
        yield client


async def _through_provider(client: AsyncTestClient[Litestar]) -> dict[str, str]:
    start = await client.get("/auth/oidc/start", follow_redirects=False)
    assert start.status_code == 302
    authorize_url = start.headers["location"]
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"]
    assert query["state"]
    async with httpx2.AsyncClient() as browser:
        consent = await browser.get(authorize_url, follow_redirects=False)
    assert consent.status_code == 302, consent.text
    callback = parse_qs(urlsplit(consent.headers["location"]).query)
    return {"code": callback["code"][0], "state": callback["state"][0]}


async def test_officer_signs_in_through_the_identity_provider(
    federated: AsyncTestClient[Litestar], provider: OidcProvider
) -> None:
    provider.state.next_email, provider.state.next_amr = "policier@cergy.demo", ["pwd"]
    params = await _through_provider(federated)
    response = await federated.get("/auth/oidc/callback", params=params)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    me = await federated.get("/me", headers={"authorization": f"Bearer {token}"})
    assert me.json()["email"] == "policier@cergy.demo"
    replay = await federated.get("/auth/oidc/callback", params=params)
    assert replay.status_code == 401  # state and code are single use


async def test_operator_without_idp_mfa_still_needs_the_second_factor(
    federated: AsyncTestClient[Litestar], provider: OidcProvider
) -> None:
    provider.state.next_email, provider.state.next_amr = "operateur2@valdoise.demo", ["pwd"]
    response = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
    assert response.status_code == 200
    assert response.json()["status"] == "second_factor_required"


async def test_unknown_identity_and_forged_nonce_are_refused(
    federated: AsyncTestClient[Litestar], provider: OidcProvider
) -> None:
    provider.state.next_email = "stranger@elsewhere.test"
    assert (await federated.get("/auth/oidc/callback", params=await _through_provider(federated))).status_code == 401
    provider.state.next_email, provider.state.wrong_nonce = "policier@cergy.demo", True
    try:
        response = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
    finally:
        provider.state.wrong_nonce = False
    assert response.status_code == 401
    assert "ID token" in response.json()["detail"]


async def test_a_code_without_its_pkce_verifier_is_refused(
    federated: AsyncTestClient[Litestar], provider: OidcProvider
) -> None:
    provider.state.next_email = "policier@cergy.demo"
    params = await _through_provider(federated)
    other = await _through_provider(federated)  # a second flow: its state carries another verifier
    response = await federated.get("/auth/oidc/callback", params={"code": params["code"], "state": other["state"]})
    assert response.status_code == 401
