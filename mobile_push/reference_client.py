"""A reference client that behaves like the officers' phone app: PKCE sign-in, device, pushes, fetch, statuses."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx2
from authlib.oauth2.rfc7636 import create_s256_code_challenge

CLIENT_ID = "vigie-mobile"
REDIRECT_URI = "fr.vigie.mobile:/oauth2redirect"
STATUSES = ("acknowledged", "en_route", "on_scene", "closed")


def new_fcm_token() -> str:
    """A token shaped like the ones the Firebase SDK hands an app (instance id, colon, APA91 blob)."""
    return f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(105)}"


class _Url(Protocol):
    @property
    def path(self) -> str: ...


class _Request(Protocol):
    method: str

    @property
    def url(self) -> _Url: ...


class HttpResponse(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def request(self) -> _Request: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


class HttpClient(Protocol):
    """What the reference client needs of an HTTP client: httpx2's, or litestar's test client in the tests."""

    async def get(
        self, url: str, *, params: Any = ..., headers: Any = ...,
        timeout: Any = ...,  # noqa: ASYNC109 - the signature of the HTTP clients it stands for
    ) -> HttpResponse: ...
    async def post(self, url: str, *, json: Any = ..., headers: Any = ...) -> HttpResponse: ...
    async def delete(self, url: str, *, headers: Any = ...) -> HttpResponse: ...


@dataclass
class ReferenceClient:
    """`api` talks to the Vigie API; `fcm` to the local FCM endpoint, whose inbox plays the phone's FCM SDK."""

    api: HttpClient
    fcm: HttpClient
    platform: str = "android"
    access_token: str | None = None
    device_id: uuid.UUID | None = None
    fcm_token: str = field(default_factory=new_fcm_token)

    @property
    def _auth(self) -> dict[str, str]:
        assert self.access_token is not None, "sign in first"
        return {"authorization": f"Bearer {self.access_token}"}

    async def _json(self, response: HttpResponse) -> Any:
        if response.status_code >= 400:
            raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code} "
                               f"{response.text}")
        return response.json() if response.content else None

    async def sign_in(self, email: str, password: str) -> dict[str, Any]:
        """Authorization code + PKCE, as a native app does it (RFC 8252): challenge, sign-in, code, exchange."""
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(16)
        params = {
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": state,
            "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
        }
        await self._json(await self.api.get("/auth/authorize", params=params))
        granted = await self._json(
            await self.api.post("/auth/authorize", json={**params, "email": email, "password": password})
        )
        query = parse_qs(urlsplit(granted["redirect_to"]).query)
        if query.get("state") != [state]:
            raise RuntimeError("the authorization server returned another state")
        tokens = await self._json(await self.api.post("/auth/token", json={
            "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID, "code_verifier": verifier,
        }))
        self.access_token = tokens["access_token"]
        return dict(tokens)

    async def register(self) -> uuid.UUID:
        device = await self._json(await self.api.post(
            "/devices", json={"fcm_token": self.fcm_token, "platform": self.platform, "app_version": "ref-1.0"},
            headers=self._auth,
        ))
        self.device_id = uuid.UUID(device["id"])
        return self.device_id

    async def heartbeat(self) -> dict[str, Any]:
        return dict(await self._json(await self.api.post(f"/devices/{self.device_id}/heartbeat", headers=self._auth)))

    async def remove(self) -> None:
        await self._json(await self.api.delete(f"/devices/{self.device_id}", headers=self._auth))

    async def receive(self, wait_s: float = 10.0) -> list[dict[str, Any]]:
        """What FCM delivered to this phone since the last call (long poll)."""
        response = await self.fcm.get(f"/inbox/{self.fcm_token}", params={"wait_s": wait_s}, timeout=wait_s + 5)
        return list(await self._json(response))

    async def fetch(self, alert_id: str) -> list[dict[str, Any]]:
        """The push carried only the alert id: everything else comes from the authenticated API (journaled)."""
        return list(await self._json(
            await self.api.get("/mobile/dispatches", params={"alert_id": alert_id}, headers=self._auth)
        ))

    async def report(self, dispatch_id: str, status: str, outcome: str | None = None) -> dict[str, Any]:
        """`outcome` (with `closed` only): arrest_in_flagrante_delicto, people_found, nobody_found, false_alarm."""
        body: dict[str, Any] = {"status": status, "device_id": str(self.device_id)}
        if outcome is not None:
            body["outcome"] = outcome
        return dict(await self._json(
            await self.api.post(f"/mobile/dispatches/{dispatch_id}/status", json=body, headers=self._auth)
        ))

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
    async with httpx2.AsyncClient(base_url=args.api, timeout=30) as api, httpx2.AsyncClient(base_url=args.fcm) as fcm:
        client = ReferenceClient(api, fcm, platform=args.platform)
        await client.sign_in(args.email, args.password)
        device = await client.register()
        print(f"signed in as {args.email}, device {device} registered; waiting for pushes", flush=True)  # noqa: T201
        while True:
            for dispatch in await client.handle_pushes(wait_s=20, acknowledge=args.acknowledge):
                print(  # noqa: T201 - this CLI reports on stdout
                    f"dispatch {dispatch['dispatch_id']} alert {dispatch['alert_id']} at {dispatch['site_name']} "
                      f"({dispatch['camera_name']}) urgency {dispatch['urgency']}"
                      f"{' — acknowledged' if args.acknowledge else ' — delivered'}")
            await client.heartbeat()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Behave like an officer's phone app against a Vigie API")
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--fcm", default="http://127.0.0.1:9099", help="the local FCM endpoint")
    parser.add_argument("--email", default="pm@marines.demo")
    parser.add_argument("--password", required=True)
    parser.add_argument("--platform", choices=("android", "ios"), default="android")
    parser.add_argument("--acknowledge", action="store_true", help="acknowledge every dispatch received")
    asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
