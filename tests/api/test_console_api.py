"""The console on the API's origin: its files under /console/ with strict headers, the OpenAPI page without a CDN, and
the cookie sign-in (refresh token HttpOnly, Secure, SameSite=Strict, scoped to the refresh path; never in a body)."""

from __future__ import annotations

import uuid
from http.cookies import SimpleCookie

from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.console_session import REFRESH_COOKIE, REFRESH_PATH
from api.routes.console import CONSOLE_DIST, media_origin
from cli.seed import DEMO_PASSWORD, SeedResult
from core.objectstore_settings import ObjectStoreSettings
from tests.api.conftest import Actor

CONSOLE = {"X-Vigie-Console": "1"}


def _refresh_cookie(response_headers: list[str]) -> dict[str, str]:
    """The attributes of the refresh cookie a response sets (lower-cased names, plus the value under '=')."""
    for header in response_headers:
        if header.startswith(f"{REFRESH_COOKIE}="):
            morsel = SimpleCookie(header)[REFRESH_COOKIE]
            attributes = {"=": morsel.value}
            for part in header.split(";")[1:]:
                name, _, value = part.strip().partition("=")
                attributes[name.lower()] = value
            return attributes
    raise AssertionError(f"no {REFRESH_COOKIE} cookie in {response_headers}")


def _no_second_factor(seeded: SeedResult) -> str:
    return next(u.email for u in seeded.users if u.totp_secret is None)


async def test_console_files_are_served_with_strict_headers(client: AsyncTestClient[Litestar]) -> None:
    assert (CONSOLE_DIST / "index.html").is_file(), "console/dist is missing: run make console"
    page = await client.get("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert "unsafe-inline" not in csp
    # Clips and playback come as signed links of the object store: the page may play them from there only.
    assert f"media-src 'self' blob: {media_origin(ObjectStoreSettings())}" in csp
    assert "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    # No inline script or style in the built page: the CSP would block it.
    assert "<script>" not in page.text
    assert "style=" not in page.text
    bundle = next((CONSOLE_DIST / "assets").glob("index-*.js"))
    script = await client.get(f"/console/assets/{bundle.name}")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/console/assets/none.js")).status_code == 404


async def test_openapi_page_loads_its_assets_from_the_api(client: AsyncTestClient[Litestar]) -> None:
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    assert "https://" not in page.text.split("<body>")[0], "the OpenAPI page's head must not reach a CDN"
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js", "favicon-32x32.png"):
        assert f"/console/vendor/swagger-ui/{asset}" in page.text
        assert (await client.get(f"/console/vendor/swagger-ui/{asset}")).status_code == 200
    assert (await client.get("/schema/openapi.json")).status_code == 200


async def test_console_sign_in_keeps_the_refresh_token_in_a_strict_cookie(
    client: AsyncTestClient[Litestar], seeded: SeedResult
) -> None:
    email = _no_second_factor(seeded)
    refused = await client.post("/auth/console/login", json={"email": email, "password": DEMO_PASSWORD})
    assert refused.status_code == 422
    assert refused.json()["field"] == "x-vigie-console"

    login = await client.post("/auth/console/login", json={"email": email, "password": DEMO_PASSWORD},
                              headers=CONSOLE)
    assert login.status_code == 200, login.text
    body = login.json()
    assert "refresh_token" not in body
    assert body["access_token"]
    assert login.headers["cache-control"] == "no-store"
    cookie = _refresh_cookie(login.headers.get_list("set-cookie"))
    assert cookie["path"] == REFRESH_PATH
    assert "httponly" in cookie
    assert "secure" in cookie
    assert cookie["samesite"].lower() == "strict"
    assert len(cookie["="]) >= 10
    me = await client.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200

    # Without the cookie, or without the console header, no refresh.
    assert (await client.post(REFRESH_PATH, headers=CONSOLE)).status_code == 401
    carried = {**CONSOLE, "Cookie": f"{REFRESH_COOKIE}={cookie['=']}"}
    assert (await client.post(REFRESH_PATH, headers={"Cookie": carried["Cookie"]})).status_code == 422

    refreshed = await client.post(REFRESH_PATH, headers=carried)
    assert refreshed.status_code == 200, refreshed.text
    assert "refresh_token" not in refreshed.json()
    rotated = _refresh_cookie(refreshed.headers.get_list("set-cookie"))
    assert rotated["="] != cookie["="]

    # Each refresh token works once; a replay ends the whole session (the rotated cookie dies with it).
    assert (await client.post(REFRESH_PATH, headers=carried)).status_code == 401
    again = {**CONSOLE, "Cookie": f"{REFRESH_COOKIE}={rotated['=']}"}
    assert (await client.post(REFRESH_PATH, headers=again)).status_code == 401


async def test_console_logout_ends_the_session_and_drops_the_cookie(
    client: AsyncTestClient[Litestar], seeded: SeedResult
) -> None:
    email = _no_second_factor(seeded)
    login = await client.post("/auth/console/login", json={"email": email, "password": DEMO_PASSWORD},
                              headers=CONSOLE)
    token = login.json()["access_token"]
    cookie = _refresh_cookie(login.headers.get_list("set-cookie"))
    logout = await client.post("/auth/console/logout", headers={"Authorization": f"Bearer {token}"})
    assert logout.status_code == 204
    dropped = _refresh_cookie(logout.headers.get_list("set-cookie"))
    assert dropped["max-age"] == "0"
    assert dropped["path"] == REFRESH_PATH
    assert (await client.get("/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    carried = {**CONSOLE, "Cookie": f"{REFRESH_COOKIE}={cookie['=']}"}
    assert (await client.post(REFRESH_PATH, headers=carried)).status_code == 401


async def test_json_sign_in_for_apps_still_returns_the_refresh_token(
    client: AsyncTestClient[Litestar], seeded: SeedResult
) -> None:
    login = await client.post("/auth/login", json={"email": _no_second_factor(seeded), "password": DEMO_PASSWORD})
    assert login.status_code == 200
    assert login.json()["refresh_token"]
    assert not [h for h in login.headers.get_list("set-cookie") if h.startswith(REFRESH_COOKIE)]


async def test_logbook_search_matches_words_literally_over_the_period(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor]
) -> None:
    operator = next(a for a in actors.values() if a.role == "operator")
    unique = uuid.uuid4().hex[:8]
    for text in (f"Patrouille {unique} rue Pasteur", f"Taux {unique} 100% atteint", f"Taux {unique} 1000 atteint"):
        created = await client.post("/logbook", json={"text": text}, headers=operator.headers)
        assert created.status_code == 201, created.text

    async def found(search: str) -> list[str]:
        page = await client.get("/logbook", params={"search": search, "hours": 1, "limit": 100},
                                headers=operator.headers)
        assert page.status_code == 200, page.text
        return sorted(e["text"] for e in page.json()["items"])

    assert len(await found(unique)) == 3
    assert await found(f"{unique} rue PASTEUR") == [f"Patrouille {unique} rue Pasteur"]
    # % and _ are letters here, not wildcards.
    assert await found(f"{unique} 100%") == [f"Taux {unique} 100% atteint"]
    assert await found(f"{unique} 1_0") == []
    assert await found("logbook.entry") != []
    too_long = await client.get("/logbook", params={"search": "x" * 201}, headers=operator.headers)
    assert too_long.status_code == 400
    assert too_long.json()["field"] == "search"


async def test_the_logbook_lists_the_newest_line_first_and_pages_on_in_time_order(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor]
) -> None:
    operator = next(a for a in actors.values() if a.role == "operator")
    unique = uuid.uuid4().hex[:8]
    written = [f"Ronde {unique} n° {n}" for n in range(6)]
    for text in written:
        created = await client.post("/logbook", json={"text": text}, headers=operator.headers)
        assert created.status_code == 201, created.text

    read: list[str] = []
    cursor: str | None = None
    while True:
        params = {"search": unique, "hours": 1, "limit": 4, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/logbook", params=params, headers=operator.headers)
        assert page.status_code == 200, page.text
        read += [e["text"] for e in page.json()["items"]]
        if not (cursor := page.json()["next_cursor"]):
            break
    assert read == written[::-1]


def test_media_origin_follows_the_object_store() -> None:
    assert media_origin(ObjectStoreSettings(presign_base_url="https://csu.example/media")) == "https://csu.example"
    s3 = ObjectStoreSettings(backend="s3", endpoint="minio.internal:9000", public_endpoint="media.csu.example")
    assert media_origin(s3) == "https://media.csu.example"
