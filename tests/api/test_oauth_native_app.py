"""OAuth 2.0 for native apps (RFC 8252) as the phone does it, with authlib's OAuth client playing the app: the
platform's sign-in page, a 302 to the app's redirect URI, the form-encoded token endpoint (RFC 6749 §5.2 errors),
PKCE S256 required, and tokens bound to the phone's key (DPoP, RFC 9449)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx2
import pyotp
import pytest
from authlib.integrations.httpx_client import OAuthError
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import ECKey
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import DEMO_PASSWORD, SeedResult
from mobile_push.reference_client import (
    CLIENT_ID,
    REDIRECT_URI,
    ReferenceClient,
    SignInPage,
    SignInRefused,
    dpop_proof,
)
from tests.litestar_transport import TestClientTransport

pytestmark = pytest.mark.integration
BASE = "http://testserver.local"
TOKEN_URL = f"{BASE}/auth/token"
PM, OPERATOR = "pm@marines.demo", "operateur2@valdoise.demo"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def phone(client: AsyncTestClient[Litestar]) -> AsyncIterator[ReferenceClient]:
    """The app, talking to the API in process through the test client."""
    async with httpx2.AsyncClient() as unused_fcm:
        created = ReferenceClient.connect(BASE, unused_fcm, transport=TestClientTransport(client))
        yield created
        await created.aclose()


async def signed_in(phone: ReferenceClient, email: str = PM, **page: Any) -> dict[str, Any]:
    async with phone.browser() as browser:
        return await phone.sign_in(SignInPage(browser, email, DEMO_PASSWORD, **page))


def authorize_params(verifier: str = "v" * 64, **changes: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": "s-1",
            "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256", **changes}


async def code_for(client: AsyncTestClient[Litestar], verifier: str = "v" * 64, email: str = PM) -> str:
    """A code through the page, by hand: hidden fields plus the credentials, then the 302."""
    form = {**authorize_params(verifier), "email": email, "password": DEMO_PASSWORD}
    response = await client.post("/auth/authorize", data=form, headers=FORM, follow_redirects=False)
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


async def test_phone_signs_in_with_a_standard_oauth_client_through_the_platform_page(
    phone: ReferenceClient, department_pool: asyncpg.Pool
) -> None:
    """Item 18: authorization URL, the platform's page, the 302 to the app, the code exchange and a refresh, all with
    authlib's OAuth client; the tokens are DPoP-bound and the app never held the password."""
    tokens = await signed_in(phone)
    assert tokens["token_type"] == "DPoP"
    assert tokens["role"] == "officer"
    me = await phone.api.get("/me", headers=phone.auth("GET", "/me"))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == PM
    session = await department_pool.fetchrow(
        "SELECT amr, client_id, dpop_jkt FROM auth_sessions WHERE id = $1::uuid", tokens["session_id"])
    assert session is not None
    assert list(session["amr"]) == ["pwd", "pop"]
    assert session["client_id"] == CLIENT_ID
    assert session["dpop_jkt"] == phone.key.thumbprint()

    first_refresh = tokens["refresh_token"]
    refreshed = await phone.refresh()
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["refresh_token"] != first_refresh
    assert (await phone.api.get("/me", headers=phone.auth("GET", "/me"))).status_code == 200


async def test_sign_in_page_is_a_french_page_with_a_strict_policy(client: AsyncTestClient[Litestar]) -> None:
    """Item 18: the platform serves its own sign-in page: HTML, French, no external asset, no script, CSP."""
    page = await client.get("/auth/authorize", params=authorize_params())
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in page.text
    assert 'name="password"' in page.text
    assert 'type="hidden" name="code_challenge"' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text
    assert "src=" not in page.text
    assert "http" not in page.text.split("</head>")[1]


async def test_authorization_errors_redirect_only_to_a_registered_uri(client: AsyncTestClient[Litestar]) -> None:
    """Item 18: an unknown client or an unregistered redirect gets an error page, never a redirect; other errors go
    back to the app with `error` and the state; PKCE S256 is mandatory."""
    for bad in ({"client_id": "nobody"}, {"redirect_uri": "https://evil.test/cb"}):
        page = await client.get("/auth/authorize", params=authorize_params(**bad), follow_redirects=False)
        assert page.status_code == 400, bad
        assert "location" not in page.headers
    for bad in ({"code_challenge": ""}, {"code_challenge_method": "plain"}, {"response_type": "token"}):
        params = {k: v for k, v in authorize_params(**bad).items() if v}
        response = await client.get("/auth/authorize", params=params, follow_redirects=False)
        assert response.status_code == 302, (bad, response.text)
        back = parse_qs(urlsplit(response.headers["location"]).query)
        assert response.headers["location"].startswith(REDIRECT_URI)
        assert back["state"] == ["s-1"]
        assert back["error"][0] in ("invalid_request", "unsupported_response_type")
    # A loopback redirect may use any port (RFC 8252 §7.3).
    loopback = await client.get("/auth/authorize", params=authorize_params(
        redirect_uri="http://127.0.0.1:53123/oauth2redirect"))
    assert loopback.status_code == 200


async def test_wrong_password_on_the_page_issues_no_code(phone: ReferenceClient) -> None:
    async with phone.browser() as browser:
        with pytest.raises(SignInRefused, match="incorrect"):
            await phone.sign_in(SignInPage(browser, PM, "wrong-password!"))


async def test_roles_with_a_second_factor_give_their_code_on_the_page(
    phone: ReferenceClient, seeded: SeedResult
) -> None:
    """Item 18: the role rules hold on the page: an operator needs the second factor there too."""
    async with phone.browser() as browser:
        with pytest.raises(SignInRefused, match="second factor"):
            await phone.sign_in(SignInPage(browser, OPERATOR, DEMO_PASSWORD))
    secret = next(u.totp_secret for u in seeded.users if u.email == OPERATOR)
    assert secret is not None
    totp = pyotp.TOTP(secret)
    for attempt in range(3):
        # Other suites may have spent this step's code (each works once): then the next step's is used.
        if attempt:
            await asyncio.sleep(totp.interval - time.time() % totp.interval + 0.5)
        try:
            tokens = await signed_in(phone, OPERATOR, second_factor=lambda: totp.at(time.time() + totp.interval))
            break
        except SignInRefused:
            continue
    else:
        raise AssertionError("the second factor was refused at three successive steps")
    assert tokens["role"] == "operator"


async def test_token_endpoint_answers_rfc6749_errors(client: AsyncTestClient[Litestar]) -> None:
    """Item 18: form-encoded only; `unsupported_grant_type`, `invalid_request`, `invalid_grant`, `invalid_client`,
    `invalid_dpop_proof` as RFC 6749 §5.2 JSON; a wrong verifier burns the code; a replayed code revokes the session
    its first use opened."""
    key = ECKey.generate_key("P-256")

    def proof() -> dict[str, str]:
        return {**FORM, "dpop": dpop_proof(key, method="POST", url=TOKEN_URL)}

    async def token(data: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        response = await client.post("/auth/token", data=data, headers=headers or proof())
        assert response.headers["content-type"].startswith("application/json"), response.text
        assert response.headers["cache-control"] == "no-store"
        return response.status_code, response.json()

    as_json = await client.post("/auth/token", json={"grant_type": "authorization_code"})
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    status, body = await token({"grant_type": "password", "client_id": CLIENT_ID, "username": PM, "password": "x"})
    assert (status, body["error"]) == (400, "unsupported_grant_type")  # the app never handles the password
    exchange = {"grant_type": "authorization_code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI}
    status, body = await token({**exchange, "code": await code_for(client)})
    assert (status, body["error"]) == (400, "invalid_request")  # no code_verifier
    status, body = await token({**exchange, "client_id": "nobody", "code": "x", "code_verifier": "v" * 64})
    assert body["error"] == "invalid_client"
    status, body = await token({**exchange, "code": "never-issued", "code_verifier": "v" * 64})
    assert (status, body["error"]) == (400, "invalid_grant")

    code = await code_for(client)
    status, body = await token({**exchange, "code": code, "code_verifier": "w" * 64})
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = await token({**exchange, "code": code, "code_verifier": "v" * 64})
    assert (status, body["error"]) == (400, "invalid_grant")  # the failed try burned it

    code = await code_for(client)
    status, body = await token({**exchange, "code": code, "code_verifier": "v" * 64}, headers=FORM)
    assert (status, body["error"]) == (400, "invalid_dpop_proof")  # the phone's client must prove its key
    code = await code_for(client)
    status, first = await token({**exchange, "code": code, "code_verifier": "v" * 64})
    assert status == 200, first
    status, body = await token({**exchange, "code": code, "code_verifier": "v" * 64})
    assert (status, body["error"]) == (400, "invalid_grant")
    me = await client.get("/me", headers={"authorization": f"DPoP {first['access_token']}",
                                          "dpop": dpop_proof(key, method="GET", url=f"{BASE}/me",
                                                             access_token=first["access_token"])})
    assert me.status_code == 401  # the replay revoked the session the code had opened


async def test_stolen_refresh_token_is_useless_without_the_device_key(
    phone: ReferenceClient, client: AsyncTestClient[Litestar]
) -> None:
    """Item 14 (phones): a refresh token copied off the phone fails without its key, with another key, and at the
    JSON refresh route; none of these attempts spends it, so the phone itself refreshes afterwards."""
    tokens = await signed_in(phone)
    stolen = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": tokens["refresh_token"]}
    without = await client.post("/auth/token", data=stolen, headers=FORM)
    assert (without.status_code, without.json()["error"]) == (400, "invalid_dpop_proof")
    thief = ECKey.generate_key("P-256")
    other = await client.post("/auth/token", data=stolen,
                              headers={**FORM, "dpop": dpop_proof(thief, method="POST", url=TOKEN_URL)})
    assert (other.status_code, other.json()["error"]) == (400, "invalid_grant")
    legacy = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert legacy.status_code == 401
    with pytest.raises(OAuthError):
        await phone.oauth.refresh_token(TOKEN_URL, refresh_token=tokens["refresh_token"],
                                        headers={**FORM, "DPoP": dpop_proof(thief, method="POST", url=TOKEN_URL)})
    assert (await phone.refresh())["access_token"]


async def test_dpop_bound_access_token_needs_a_fresh_proof_of_the_key(
    phone: ReferenceClient, client: AsyncTestClient[Litestar]
) -> None:
    """Item 14 (phones): the access token alone opens nothing; each request needs a proof of the phone's key made
    for it (method, URL, this token), used once."""
    token = (await signed_in(phone))["access_token"]
    thief = ECKey.generate_key("P-256")
    url = f"{BASE}/me"
    good = phone.auth("GET", "/me")
    attempts = {
        "as a bearer token": {"authorization": f"Bearer {token}"},
        "no proof": {"authorization": f"DPoP {token}"},
        "another key": {"authorization": f"DPoP {token}",
                        "dpop": dpop_proof(thief, method="GET", url=url, access_token=token)},
        "another URL": {"authorization": f"DPoP {token}",
                        "dpop": dpop_proof(phone.key, method="GET", url=f"{BASE}/cameras", access_token=token)},
        "another method": {"authorization": f"DPoP {token}",
                           "dpop": dpop_proof(phone.key, method="POST", url=url, access_token=token)},
        "no token hash": {"authorization": f"DPoP {token}", "dpop": dpop_proof(phone.key, method="GET", url=url)},
    }
    for name, headers in attempts.items():
        response = await client.get("/me", headers=headers)
        assert response.status_code == 401, (name, response.text)
    assert (await client.get("/me", headers=good)).status_code == 200
    assert (await client.get("/me", headers=good)).status_code == 401  # the same proof twice
