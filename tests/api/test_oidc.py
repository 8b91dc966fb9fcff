"""Federated sign-in (authorization code + PKCE) against a real local OIDC provider: identities linked by (issuer,
subject) by a department admin, verified e-mail required, the IdP's `amr` trusted only where the department says so,
state bound to the starting browser, /auth/oidc/start throttled, and the account's own state checked."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx2
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pydantic import SecretStr

from api.app import create_app
from api.console_session import CONSOLE_OIDC_COOKIE, REFRESH_COOKIE, REFRESH_PATH
from cli.seed import SeedResult
from core.settings import AuthSettings, OidcSettings, Settings
from identity.oidc import BROWSER_COOKIE
from tests.api.conftest import Actor
from tests.oidc_provider import OidcProvider

pytestmark = pytest.mark.integration
CONSOLE = {"X-Vigie-Console": "1"}
REDIRECT = "http://testserver.local/auth/oidc/callback"
ADMIN, OFFICER, OPERATOR = "admin@valdoise.demo", "policier@cergy.demo", "operateur2@valdoise.demo"


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[OidcProvider]:
    with OidcProvider() as running:
        yield running


def _oidc(provider: OidcProvider, **changes: object) -> OidcSettings:
    return OidcSettings(
        issuer=provider.state.issuer,
        client_id=provider.state.client_id,
        client_secret=SecretStr(provider.state.client_secret),
        redirect_uri=REDIRECT,
        **changes,
    )


@pytest.fixture(scope="module")
async def federated(
    api_settings: Settings, seeded: SeedResult, provider: OidcProvider
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(api_settings.model_copy(update={"oidc": _oidc(provider)}))) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh_provider(provider: OidcProvider) -> None:
    provider.state.reset()


async def _user_id(pool: asyncpg.Pool, email: str) -> uuid.UUID:
    return uuid.UUID(str(await pool.fetchval("SELECT id FROM users WHERE email = $1", email)))


async def _link(
    client: AsyncTestClient[Litestar], admin: Actor, user_id: uuid.UUID, issuer: str, subject: str
) -> None:
    response = await client.post(f"/users/{user_id}/external-identities", headers=admin.headers,
                                 json={"issuer": issuer, "subject": subject})
    assert response.status_code in (201, 409), response.text


async def _through_provider(client: AsyncTestClient[Litestar], start_path: str = "/auth/oidc/start") -> dict[str, str]:
    start = await client.get(start_path, follow_redirects=False)
    assert start.status_code == 302, start.text
    assert BROWSER_COOKIE in start.headers.get("set-cookie", "")
    assert "httponly" in start.headers["set-cookie"].lower()
    assert "samesite=lax" in start.headers["set-cookie"].lower()
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


@pytest.fixture(scope="module")
async def linked_officer(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, actors: dict[str, Actor],
    department_pool: asyncpg.Pool,
) -> str:
    """The officer's subject at the IdP, linked by the department admin."""
    subject = provider.state.subject_for(OFFICER)
    await _link(federated, actors[ADMIN], await _user_id(department_pool, OFFICER), provider.state.issuer, subject)
    return subject


async def test_officer_signs_in_through_the_identity_provider(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, linked_officer: str
) -> None:
    provider.state.next_email, provider.state.next_amr = OFFICER, ["pwd"]
    params = await _through_provider(federated)
    response = await federated.get("/auth/oidc/callback", params=params)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    me = await federated.get("/me", headers={"authorization": f"Bearer {token}"})
    assert me.json()["email"] == OFFICER
    replay = await federated.get("/auth/oidc/callback", params=params)
    assert replay.status_code == 401  # state and code are single use


async def test_oidc_requires_a_verified_email(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, linked_officer: str
) -> None:
    """Item 8: `email_verified` must be exactly true; a missing claim is not a verification."""
    provider.state.next_email = OFFICER
    for verified in (None, False):
        provider.state.email_verified = verified
        response = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
        assert response.status_code == 401, (verified, response.text)
        assert "verified email" in response.json()["detail"]


async def test_oidc_links_accounts_by_issuer_and_subject_not_by_email(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, actors: dict[str, Actor],
    department_pool: asyncpg.Pool, linked_officer: str,
) -> None:
    """Item 8: an identity naming a local account's e-mail opens nothing unless its subject was linked; linking and
    unlinking are a department admin's, journaled."""
    provider.state.next_email, provider.state.next_subject = OFFICER, "someone-else-at-the-idp"
    refused = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
    assert refused.status_code == 401
    assert "no account is linked" in refused.json()["detail"]

    user_id = await _user_id(department_pool, OFFICER)
    body = {"issuer": provider.state.issuer, "subject": "someone-else-at-the-idp"}
    mayor = await federated.post(f"/users/{user_id}/external-identities", headers=actors["maire@cergy.demo"].headers,
                                 json=body)
    assert mayor.status_code == 403
    linked = await federated.post(f"/users/{user_id}/external-identities", headers=actors[ADMIN].headers, json=body)
    assert linked.status_code == 201, linked.text
    twice = await federated.post(f"/users/{user_id}/external-identities", headers=actors[ADMIN].headers, json=body)
    assert twice.status_code == 409
    listed = await federated.get(f"/users/{user_id}/external-identities", headers=actors[ADMIN].headers)
    assert {i["subject"] for i in listed.json()} >= {"someone-else-at-the-idp", linked_officer}
    opened = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
    assert opened.status_code == 200, opened.text

    unlinked = await federated.delete(f"/users/{user_id}/external-identities", headers=actors[ADMIN].headers,
                                      params=body)
    assert unlinked.status_code == 204
    again = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
    assert again.status_code == 401
    journaled = await department_pool.fetch(
        "SELECT action FROM access_journal WHERE target_id = $1 AND action LIKE 'user.external_identity.%'",
        str(user_id),
    )
    assert {r["action"] for r in journaled} >= {"user.external_identity.link", "user.external_identity.unlink"}


async def test_idp_amr_skips_the_second_factor_only_where_the_department_trusts_it(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, actors: dict[str, Actor],
    department_pool: asyncpg.Pool,
) -> None:
    """Item 8: an operator whose IdP says `mfa` still gets Vigie's second factor until the department trusts the IdP."""
    await _link(federated, actors[ADMIN], await _user_id(department_pool, OPERATOR), provider.state.issuer,
                provider.state.subject_for(OPERATOR))
    provider.state.next_email, provider.state.next_amr = OPERATOR, ["pwd", "mfa"]
    untrusted = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
    assert untrusted.status_code == 200
    assert untrusted.json()["status"] == "second_factor_required"

    assert (await federated.put("/department/federation", headers=actors[OPERATOR].headers,
                                json={"trust_idp_mfa": True})).status_code == 403
    admin = actors[ADMIN].headers
    changed = await federated.put("/department/federation", headers=admin, json={"trust_idp_mfa": True})
    assert changed.status_code == 200, changed.text
    try:
        trusted = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
        assert trusted.status_code == 200
        assert "access_token" in trusted.json()
        provider.state.next_amr = ["pwd"]  # trusted, but the IdP did not use a second factor this time
        single = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
        assert single.json()["status"] == "second_factor_required"
    finally:
        assert (await federated.put("/department/federation", headers=admin,
                                    json={"trust_idp_mfa": False})).status_code == 200
    assert (await federated.get("/department/federation", headers=admin)).json() == {"trust_idp_mfa": False}
    assert await department_pool.fetchval(
        "SELECT count(*) FROM access_journal WHERE action = 'department.federation'") >= 2


async def test_oidc_state_is_bound_to_the_browser_that_started(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, linked_officer: str
) -> None:
    """Item 8: a callback in another browser (no cookie, or another flow's) neither finishes nor burns the flow."""
    provider.state.next_email = OFFICER
    params = await _through_provider(federated)
    secret = federated.cookies.get(BROWSER_COOKIE)
    assert secret
    federated.cookies.clear()
    assert (await federated.get("/auth/oidc/callback", params=params)).status_code == 401
    federated.cookies.set(BROWSER_COOKIE, "another-browsers-secret", domain="testserver.local", path="/auth/oidc/")
    assert (await federated.get("/auth/oidc/callback", params=params)).status_code == 401
    federated.cookies.clear()
    federated.cookies.set(BROWSER_COOKIE, secret, domain="testserver.local", path="/auth/oidc/")
    finished = await federated.get("/auth/oidc/callback", params=params)
    assert finished.status_code == 200, finished.text


async def test_oidc_start_is_throttled_and_abandoned_flows_are_pruned(
    api_settings: Settings, provider: OidcProvider, department_pool: asyncpg.Pool
) -> None:
    """Item 8: starts count against the address's sign-in budget, flows in flight are capped, expired ones pruned."""
    await department_pool.execute(
        "INSERT INTO oidc_flows (state, nonce, code_verifier, browser_hash, expires_at) VALUES ($1, 'n', 'v', $2, $3)",
        "abandoned-flow", b"x", datetime.now(UTC) - timedelta(minutes=1),
    )
    pending = int(await department_pool.fetchval(
        "SELECT count(*) FROM oidc_flows WHERE used_at IS NULL AND expires_at > now()"))
    settings = api_settings.model_copy(update={
        "oidc": _oidc(provider, max_pending_flows=pending + 2),
        "auth": AuthSettings(access_ttl_s=3600, login_rate_per_ip_per_minute=10_000),
    })
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/auth/oidc/start", follow_redirects=False)).status_code == 302
        assert await department_pool.fetchval("SELECT count(*) FROM oidc_flows WHERE state = 'abandoned-flow'") == 0
        assert (await client.get("/auth/oidc/start", follow_redirects=False)).status_code == 302
        full = await client.get("/auth/oidc/start", follow_redirects=False)
        assert full.status_code == 429
        assert full.headers["retry-after"]

    tight = api_settings.model_copy(update={
        "oidc": _oidc(provider), "auth": AuthSettings(access_ttl_s=3600, login_rate_per_ip_per_minute=3),
    })
    async with AsyncTestClient(app=create_app(tight)) as client:
        statuses = [(await client.get("/auth/oidc/start", follow_redirects=False)).status_code for _ in range(8)]
    assert 429 in statuses, statuses


async def test_locked_disabled_or_unhabilitated_accounts_are_refused_over_oidc(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, actors: dict[str, Actor],
    department_pool: asyncpg.Pool, api_settings: Settings,
) -> None:
    """Item 8: the account's own state applies to a federated sign-in as to a password one."""
    user_id = await _user_id(department_pool, OPERATOR)
    await _link(federated, actors[ADMIN], user_id, provider.state.issuer, provider.state.subject_for(OPERATOR))
    provider.state.next_email = OPERATOR
    before = await department_pool.fetchrow(
        "SELECT failed_attempts, habilitation_expires_on, status FROM users WHERE id = $1", user_id)
    assert before is not None
    try:
        await department_pool.execute("UPDATE users SET failed_attempts = $2 WHERE id = $1", user_id,
                                      api_settings.auth.max_consecutive_failures)
        locked = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
        assert locked.status_code == 429, locked.text
        await department_pool.execute("UPDATE users SET failed_attempts = 0, habilitation_expires_on = $2 "
                                      "WHERE id = $1", user_id, datetime.now(UTC).date() - timedelta(days=1))
        expired = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
        assert expired.status_code == 403, expired.text
        await department_pool.execute("UPDATE users SET habilitation_expires_on = NULL WHERE id = $1", user_id)
        unhabilitated = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
        assert unhabilitated.status_code == 403
        await department_pool.execute("UPDATE users SET habilitation_expires_on = $2, status = 'disabled' "
                                      "WHERE id = $1", user_id, before["habilitation_expires_on"])
        disabled = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
        assert disabled.status_code == 401
    finally:
        await department_pool.execute(
            "UPDATE users SET failed_attempts = $2, habilitation_expires_on = $3, status = $4 WHERE id = $1",
            user_id, before["failed_attempts"], before["habilitation_expires_on"], before["status"],
        )


async def test_unknown_identity_and_forged_nonce_are_refused(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, linked_officer: str
) -> None:
    provider.state.next_email = "stranger@elsewhere.test"
    assert (await federated.get("/auth/oidc/callback", params=await _through_provider(federated))).status_code == 401
    provider.state.next_email, provider.state.wrong_nonce = OFFICER, True
    response = await federated.get("/auth/oidc/callback", params=await _through_provider(federated))
    assert response.status_code == 401
    assert "ID token" in response.json()["detail"]


async def test_a_code_without_its_pkce_verifier_is_refused(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, linked_officer: str
) -> None:
    provider.state.next_email = OFFICER
    params = await _through_provider(federated)
    other = await _through_provider(federated)  # a second flow: its state carries another verifier
    response = await federated.get("/auth/oidc/callback", params={"code": params["code"], "state": other["state"]})
    assert response.status_code == 401


def _console_refresh_cookie(response_headers: list[str]) -> str:
    for header in response_headers:
        if header.startswith(f"{REFRESH_COOKIE}="):
            lowered = header.lower()
            assert "httponly" in lowered
            assert "samesite=strict" in lowered
            assert "secure" in lowered
            assert f"path={REFRESH_PATH}" in lowered
            return SimpleCookie(header)[REFRESH_COOKIE].value
    raise AssertionError(f"no {REFRESH_COOKIE} cookie in {response_headers}")


async def test_the_console_offers_the_provider_only_when_one_is_configured(
    federated: AsyncTestClient[Litestar], client: AsyncTestClient[Litestar],
) -> None:
    assert (await federated.get("/auth/console/options")).json() == {"oidc": True}
    assert (await client.get("/auth/console/options")).json() == {"oidc": False}
    refused = await client.get("/auth/console/oidc/start", follow_redirects=False)
    assert refused.status_code == 404
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_a_console_sign_in_through_the_provider_comes_back_with_the_refresh_cookie(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, linked_officer: str,
) -> None:
    """The console's flow shares the registered callback: a cookie set at its start makes the callback answer with a
    redirect to the console and the console's refresh cookie (HttpOnly, Strict, refresh path), never tokens in JSON."""
    provider.state.next_email, provider.state.next_amr = OFFICER, ["pwd"]
    params = await _through_provider(federated, "/auth/console/oidc/start")
    assert federated.cookies.get(CONSOLE_OIDC_COOKIE) == "1"
    back = await federated.get("/auth/oidc/callback", params=params, follow_redirects=False)
    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/console/"
    assert "access_token" not in back.text
    token = _console_refresh_cookie(back.headers.get_list("set-cookie"))
    # Both flow cookies are spent: a later app sign-in in this browser gets JSON again.
    spent = [h.lower() for h in back.headers.get_list("set-cookie") if h.startswith(f"{CONSOLE_OIDC_COOKIE}=")]
    assert len(spent) == 1
    assert "max-age=0" in spent[0]
    session = await federated.post("/auth/console/refresh", headers={**CONSOLE, "cookie": f"{REFRESH_COOKIE}={token}"})
    assert session.status_code == 200, session.text
    me = await federated.get("/me", headers={"authorization": f"Bearer {session.json()['access_token']}"})
    assert me.json()["email"] == OFFICER


async def test_a_console_sign_in_needing_the_second_factor_or_refused_says_so_in_the_hash(
    federated: AsyncTestClient[Litestar], provider: OidcProvider, actors: dict[str, Actor],
    department_pool: asyncpg.Pool,
) -> None:
    await _link(federated, actors[ADMIN], await _user_id(department_pool, OPERATOR), provider.state.issuer,
                provider.state.subject_for(OPERATOR))
    provider.state.next_email, provider.state.next_amr = OPERATOR, ["pwd"]
    params = await _through_provider(federated, "/auth/console/oidc/start")
    challenged = await federated.get("/auth/oidc/callback", params=params, follow_redirects=False)
    assert challenged.status_code == 303
    location = urlsplit(challenged.headers["location"])
    assert (location.path, location.fragment.split("?")[0]) == ("/console/", "/")
    challenge = parse_qs(location.fragment.split("?", 1)[1])["second-factor"][0]
    assert not any(h.startswith(f"{REFRESH_COOKIE}=") for h in challenged.headers.get_list("set-cookie"))
    # The challenge is the one the console's TOTP step takes (a wrong code is refused on it, not as unknown).
    wrong = await federated.post("/auth/console/login/totp", headers=CONSOLE,
                                 json={"challenge": challenge, "code": "000000"})
    assert wrong.status_code == 401, wrong.text

    provider.state.next_email = "personne@inconnu.example"
    params = await _through_provider(federated, "/auth/console/oidc/start")
    refused = await federated.get("/auth/oidc/callback", params=params, follow_redirects=False)
    assert refused.status_code == 303
    fragment = urlsplit(refused.headers["location"]).fragment
    assert parse_qs(fragment.split("?", 1)[1])["refus"][0]
    assert not any(h.startswith(f"{REFRESH_COOKIE}=") for h in refused.headers.get_list("set-cookie"))
