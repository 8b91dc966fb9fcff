"""A reference client that behaves like the officers' phone app: a device key, sign-in through the platform's page in
the system browser (OAuth 2.0 for native apps, RFC 8252: code + PKCE S256, with authlib's OAuth client), tokens
bound to the device key (DPoP, RFC 9449), then device registration, pushes, fetches and statuses.

The app never sees the password: `SignInPage` plays the person at the system browser, and hands the app only the
address the platform redirects to (the app's registered redirect URI, carrying the code and the state)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import ECKey

CLIENT_ID = "vigie-mobile"
REDIRECT_URI = "fr.vigie.mobile:/oauth2redirect"
STATUSES = ("acknowledged", "en_route", "on_scene", "closed")
_TOKEN_HEADERS = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}

Browser = Callable[[str], Awaitable[str]]


def new_fcm_token() -> str:
    """A token shaped like the ones the Firebase SDK hands an app (instance id, colon, APA91 blob)."""
    return f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(105)}"


def new_device_key() -> ECKey:
    """The phone's key pair, made once at first launch; a real phone keeps it in its keystore, never exportable."""
    return ECKey.generate_key("P-256")


def dpop_proof(key: ECKey, *, method: str, url: str, access_token: str | None = None) -> str:
    """A DPoP proof (RFC 9449 §4.2) of the device key for one request; with `access_token`, bound to it (`ath`)."""
    claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method.upper(),
                              "htu": url.split("?", 1)[0].split("#", 1)[0], "iat": int(time.time())}
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


class SignInRefused(RuntimeError):
    """The platform's page refused the sign-in (it says why) or the authorization came back with an error."""


class _Form(HTMLParser):
    """The sign-in page's form: its action, its fields, and the error it shows, if any."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self.inputs: set[str] = set()
        self.error = ""
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = named.get("action", "")
        elif tag == "input" and named.get("name"):
            if named.get("type") == "hidden":
                self.hidden[named["name"]] = named.get("value", "")
            else:
                self.inputs.add(named["name"])
        elif tag == "p" and "error" in named.get("class", "").split():
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error += data


@dataclass
class SignInPage:
    """The person at the system browser: opens the platform's page, types the email and the password, then the
    second-factor code if the page asks for one, and lets the browser go where the platform redirects."""

    browser: httpx2.AsyncClient
    email: str
    password: str
    second_factor: Callable[[], str] | None = None

    async def __call__(self, authorization_url: str) -> str:
        response = await self.browser.get(authorization_url)
        for _ in range(3):
            if response.status_code in (302, 303):
                return str(response.headers["location"])
            form = _Form()
            form.feed(response.text)
            if form.error or form.action is None:
                raise SignInRefused(f"{response.status_code}: {(form.error or response.text).strip()[:300]}")
            if "password" in form.inputs:
                fields = {**form.hidden, "email": self.email, "password": self.password}
            elif "code" in form.inputs and self.second_factor is not None:
                fields = {**form.hidden, "code": self.second_factor()}
            else:
                raise SignInRefused("the page asks for a second factor and none was given")
            response = await self.browser.post(urljoin(str(response.url), form.action), data=fields)
        raise SignInRefused("the sign-in did not finish")


@dataclass
class ReferenceClient:
    """`api` talks to the Vigie API, `oauth` (authlib) to its token endpoint, `fcm` to the local FCM endpoint whose
    inbox plays the phone's FCM SDK. Every API call carries the access token with a fresh DPoP proof of `key`."""

    api: httpx2.AsyncClient
    oauth: AsyncOAuth2Client
    fcm: httpx2.AsyncClient
    platform: str = "android"
    transport: httpx2.AsyncBaseTransport | None = None
    key: ECKey = field(default_factory=new_device_key)
    tokens: dict[str, Any] = field(default_factory=dict)
    device_id: uuid.UUID | None = None
    fcm_token: str = field(default_factory=new_fcm_token)

    @classmethod
    def connect(
        cls, base_url: str, fcm: httpx2.AsyncClient, *, transport: httpx2.AsyncBaseTransport | None = None,
        platform: str = "android",
    ) -> ReferenceClient:
        """`transport` lets the tests talk to the application in process."""
        api = httpx2.AsyncClient(base_url=base_url, transport=transport, timeout=30)
        oauth = AsyncOAuth2Client(
            client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, code_challenge_method="S256",
            token_endpoint_auth_method="none", base_url=base_url, transport=transport, timeout=30,
        )
        return cls(api=api, oauth=oauth, fcm=fcm, platform=platform, transport=transport)

    def browser(self) -> httpx2.AsyncClient:
        """A client playing the system browser (its own cookies; it reaches the platform like the app does)."""
        return httpx2.AsyncClient(base_url=str(self.api.base_url), transport=self.transport, timeout=30)

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.oauth.aclose()

    @property
    def base_url(self) -> str:
        return str(self.api.base_url).rstrip("/")

    @property
    def access_token(self) -> str:
        token = self.tokens.get("access_token")
        assert isinstance(token, str), "sign in first"
        return token

    def auth(self, method: str, path: str) -> dict[str, str]:
        """The headers of one API request: the DPoP-bound token and a proof made for this method and URL."""
        url = self.base_url + path.split("?", 1)[0]
        return {"authorization": f"DPoP {self.access_token}",
                "dpop": dpop_proof(self.key, method=method, url=url, access_token=self.access_token)}

    def _token_headers(self) -> dict[str, str]:
        return {**_TOKEN_HEADERS, "DPoP": dpop_proof(self.key, method="POST", url=f"{self.base_url}/auth/token")}

    async def sign_in(self, browser: Browser) -> dict[str, Any]:
        """Authorization code + PKCE through the platform's page: the app makes the request, the browser does the
        sign-in, the app redeems the code it was redirected with (checking the state) with a proof of its key."""
        verifier = secrets.token_urlsafe(48)
        url, state = self.oauth.create_authorization_url(f"{self.base_url}/auth/authorize", code_verifier=verifier)
        redirected = await browser(url)
        if not redirected.startswith(REDIRECT_URI):
            raise SignInRefused(f"the platform redirected elsewhere than the app: {redirected[:200]}")
        query = parse_qs(urlsplit(redirected).query)
        if "error" in query:
            raise SignInRefused(f"authorization refused: {query['error'][0]} {query.get('error_description', [''])[0]}")
        token = await self.oauth.fetch_token(
            f"{self.base_url}/auth/token", authorization_response=redirected, code_verifier=verifier, state=state,
            headers=self._token_headers(),
        )
        self.tokens = dict(token)
        return self.tokens

    async def refresh(self) -> dict[str, Any]:
        """A new access token (and refresh token) with a proof of the device key; the old refresh token is spent."""
        token = await self.oauth.refresh_token(
            f"{self.base_url}/auth/token", refresh_token=self.tokens["refresh_token"], headers=self._token_headers()
        )
        self.tokens = dict(token)
        return self.tokens

    async def _json(self, response: httpx2.Response) -> Any:
        if response.status_code >= 400:
            raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code} "
                               f"{response.text}")
        return response.json() if response.content else None

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self._json(await self.api.request(method, path, headers=self.auth(method, path), **kwargs))

    async def register(self) -> uuid.UUID:
        device = await self._call("POST", "/devices", json={
            "fcm_token": self.fcm_token, "platform": self.platform, "app_version": "ref-1.0"})
        self.device_id = uuid.UUID(device["id"])
        return self.device_id

    async def heartbeat(self) -> dict[str, Any]:
        return dict(await self._call("POST", f"/devices/{self.device_id}/heartbeat"))

    async def remove(self) -> None:
        await self._call("DELETE", f"/devices/{self.device_id}")

    async def receive(self, wait_s: float = 10.0) -> list[dict[str, Any]]:
        """What FCM delivered to this phone since the last call (long poll)."""
        response = await self.fcm.get(f"/inbox/{self.fcm_token}", params={"wait_s": wait_s}, timeout=wait_s + 5)
        return list(await self._json(response))

    async def fetch(self, alert_id: str) -> list[dict[str, Any]]:
        """The push carried only the alert id: everything else comes from the authenticated API (journaled)."""
        return list(await self._call("GET", "/mobile/dispatches", params={"alert_id": alert_id}))

    async def report(self, dispatch_id: str, status: str, outcome: str | None = None) -> dict[str, Any]:
        """`outcome` (with `closed` only): arrest_in_flagrante_delicto, people_found, nobody_found, false_alarm."""
        body: dict[str, Any] = {"status": status, "device_id": str(self.device_id)}
        if outcome is not None:
            body["outcome"] = outcome
        return dict(await self._call("POST", f"/mobile/dispatches/{dispatch_id}/status", json=body))

    async def handle_pushes(self, *, wait_s: float, acknowledge: bool) -> list[dict[str, Any]]:
        """Receive, post the receipt at once, fetch the alert, then acknowledge: what the app does on a push."""
        handled = []
        for message in await self.receive(wait_s):
            alert_id = message["message"]["data"]["alert_id"]
            for dispatch in await self.fetch(alert_id):
                if dispatch["my_status"] is None:
                    await self.report(dispatch["dispatch_id"], "delivered")
                if acknowledge and dispatch["my_status"] in (None, "delivered"):
                    await self.report(dispatch["dispatch_id"], "acknowledged")
                handled.append(dispatch)
        return handled


async def _run(args: argparse.Namespace) -> None:
    async with httpx2.AsyncClient(base_url=args.fcm) as fcm:
        client = ReferenceClient.connect(args.api, fcm, platform=args.platform)
        try:
            async with client.browser() as browser:
                await client.sign_in(SignInPage(browser, args.email, args.password))
            device = await client.register()
            print(f"signed in as {args.email}, device {device} registered; waiting for pushes", flush=True)  # noqa: T201
            while True:
                for dispatch in await client.handle_pushes(wait_s=20, acknowledge=args.acknowledge):
                    print(  # noqa: T201 - this CLI reports on stdout
                        f"dispatch {dispatch['dispatch_id']} alert {dispatch['alert_id']} at {dispatch['site_name']} "
                        f"({dispatch['camera_name']}) urgency {dispatch['urgency']}"
                        f"{' — acknowledged' if args.acknowledge else ' — delivered'}")
                if client.oauth.token.is_expired(leeway=60):
                    await client.refresh()
                await client.heartbeat()
        finally:
            await client.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Behave like an officer's phone app against a Vigie API")
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--fcm", default="http://127.0.0.1:9099", help="the local FCM endpoint")
    parser.add_argument("--email", default="pm@marines.demo")
    parser.add_argument("--password", required=True, help="typed into the platform's sign-in page, never the app")
    parser.add_argument("--platform", choices=("android", "ios"), default="android")
    parser.add_argument("--acknowledge", action="store_true", help="acknowledge every dispatch received")
    asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
