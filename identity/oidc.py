"""OIDC relying party (authorization code + PKCE) for an external IdP such as ProConnect or Keycloak: starts sign-ins
bound to the browser that asked, and turns a callback into a verified (issuer, subject) identity."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import msgspec
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from core.db import Database
from core.errors import AuthenticationFailed, RateLimited, Unavailable
from core.settings import OidcSettings
from identity.federation_repository import FederationRepository
from identity.throttle import SigninThrottle

FLOW_TTL = timedelta(minutes=10)
ID_TOKEN_ALGORITHMS = ["RS256", "ES256", "PS256"]
# The browser's half of a flow: an HttpOnly cookie scoped to the OIDC routes (SameSite=Lax: the IdP's redirect back
# to the callback is a cross-site top-level navigation, which a Strict cookie would not follow).
BROWSER_COOKIE = "vigie_oidc_flow"
COOKIE_PATH = "/auth/oidc/"
_AMR_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class StartedFlow:
    authorization_url: str
    browser_secret: str


@dataclass(frozen=True)
class FederatedIdentity:
    """What a verified ID token says: who (issuer, subject), their verified e-mail and how the IdP authenticated."""

    issuer: str
    subject: str
    email: str
    amr: tuple[str, ...]


def browser_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class OidcClient:
    """Starts sign-ins at the IdP and turns a callback into a verified email and authentication methods."""

    def __init__(
        self,
        settings: OidcSettings,
        db: Database,
        throttle: SigninThrottle,
        repository: FederationRepository | None = None,
    ) -> None:
        self._settings = settings
        self._db = db
        self._throttle = throttle
        self._repo = repository or FederationRepository()
        self._metadata: dict[str, Any] | None = None
        self._jwks: KeySet | None = None
        self._jwks_loaded_at = 0.0

    async def _discover(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self._settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            self._metadata = await self._get_json(url)
            if self._metadata.get("issuer") != self._settings.issuer:
                raise Unavailable("the IdP's discovery document names another issuer")
        return self._metadata

    async def _keys(self, *, refresh: bool = False) -> KeySet:
        if self._jwks is None or refresh or time.monotonic() - self._jwks_loaded_at > 3600:
            metadata = await self._discover()
            self._jwks = KeySet.import_key_set(await self._get_json(metadata["jwks_uri"]))  # type: ignore[arg-type]
            self._jwks_loaded_at = time.monotonic()
        return self._jwks

    @staticmethod
    async def _get_json(url: str) -> dict[str, Any]:
        try:
            async with httpx2.AsyncClient(timeout=10) as client:
                response = await client.get(url)
                response.raise_for_status()
                data = response.json()
        except (httpx2.HTTPError, ValueError) as exc:
            raise Unavailable(f"identity provider unreachable: {exc}") from exc
        if not isinstance(data, dict):
            raise Unavailable("identity provider returned an unexpected document")
        return data

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self._settings.client_id,
            client_secret=self._settings.client_secret.get_secret_value(),
            scope=self._settings.scope,
            redirect_uri=self._settings.redirect_uri,
            token_endpoint_auth_method="client_secret_post",
            code_challenge_method="S256",
            leeway=self._settings.leeway_s,
        )

    @property
    def issuer(self) -> str:
        return self._settings.issuer

    @property
    def cookie_secure(self) -> bool:
        """The cookie travels over TLS only when the callback itself is served over TLS."""
        return self._settings.redirect_uri.startswith("https://")

    async def start(self, *, client_ip: str) -> StartedFlow:
        """The IdP authorization URL, and the secret the starting browser keeps in its cookie. State, nonce and PKCE
        verifier stay server-side, used once; a start counts against the address's sign-in budget, and the flows in
        flight are capped (and pruned once expired) so that nobody can fill the table."""
        await self._throttle.admit(client_ip)
        metadata = await self._discover()
        state, nonce, verifier, secret = (secrets.token_urlsafe(32) for _ in range(4))
        now = datetime.now(UTC)
        async with self._db.anonymous() as conn:
            await self._repo.prune_flows(conn, now)
            if await self._repo.pending_flows(conn) >= self._settings.max_pending_flows:
                raise RateLimited("too many federated sign-ins in flight; retry in a few minutes", retry_after_s=60)
            await self._repo.insert_flow(
                conn, state=state, nonce=nonce, verifier=verifier, browser_hash=browser_hash(secret),
                expires_at=now + FLOW_TTL,
            )
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
        return StartedFlow(authorization_url=str(url), browser_secret=secret)

    async def finish(self, code: str, state: str, browser_secret: str | None) -> FederatedIdentity:
        """Exchange the code and verify the ID token (signature, issuer, audience, nonce, expiry) for a flow this
        browser started; the identity must come with a verified e-mail."""
        if not browser_secret:
            raise AuthenticationFailed("this browser did not start this sign-in (no sign-in cookie)")
        async with self._db.anonymous() as conn:
            flow = await self._repo.take_flow(conn, state, browser_hash(browser_secret))
        if flow is None:
            raise AuthenticationFailed("unknown, replayed or expired sign-in state, or another browser's")
        metadata = await self._discover()
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=flow["code_verifier"],
                )
        except Exception as exc:  # authlib raises OAuthError and transport errors alike
            raise AuthenticationFailed(f"the identity provider refused the code: {exc}") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise AuthenticationFailed("the identity provider returned no ID token")
        claims = await self._verify_id_token(id_token, flow["nonce"])
        subject, email = claims.get("sub"), claims.get("email")
        if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
            raise AuthenticationFailed("the ID token names no subject")
        # Only an explicit `true`: a missing claim says nothing about the address.
        if not isinstance(email, str) or claims.get("email_verified") is not True:
            raise AuthenticationFailed("the identity provider gave no verified email")
        amr = claims.get("amr")
        listed = amr if isinstance(amr, list) else []
        methods = tuple(a for a in listed if isinstance(a, str) and _AMR_VALUE.match(a))[:10]
        return FederatedIdentity(issuer=self._settings.issuer, subject=subject, email=email, amr=methods)

    async def _verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        for refresh in (False, True):  # one retry with fresh keys: the IdP may have rotated
            try:
                decoded = jwt.decode(id_token, await self._keys(refresh=refresh), algorithms=ID_TOKEN_ALGORITHMS)
            except JoseError as exc:
                if refresh:
                    raise AuthenticationFailed(f"invalid ID token: {exc.__class__.__name__}") from exc
                continue
            try:
                JWTClaimsRegistry(
                    leeway=self._settings.leeway_s,
                    iss={"essential": True, "value": self._settings.issuer},
                    aud={"essential": True, "value": self._settings.client_id},
                    nonce={"essential": True, "value": nonce},
                    exp={"essential": True},
                    iat={"essential": True},
                ).validate(decoded.claims)
            except JoseError as exc:
                raise AuthenticationFailed(f"invalid ID token: {exc.__class__.__name__}") from exc
            return dict(msgspec.json.decode(msgspec.json.encode(decoded.claims)))
        raise AuthenticationFailed("invalid ID token")
