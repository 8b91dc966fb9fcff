"""OIDC relying party (authorization code + PKCE) for an external IdP such as ProConnect or Keycloak."""

from __future__ import annotations

import secrets
import time
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
from core.errors import AuthenticationFailed, Unavailable
from core.settings import OidcSettings
from identity.repository import IdentityRepository

FLOW_TTL = timedelta(minutes=10)
ID_TOKEN_ALGORITHMS = ["RS256", "ES256", "PS256"]


class OidcClient:
    """Starts sign-ins at the IdP and turns a callback into a verified email and authentication methods."""

    def __init__(self, settings: OidcSettings, db: Database, repository: IdentityRepository | None = None) -> None:
        self._settings = settings
        self._db = db
        self._repo = repository or IdentityRepository()
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

    async def start(self) -> str:
        """The IdP authorization URL; state, nonce and PKCE verifier are kept server-side, used once."""
        metadata = await self._discover()
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        async with self._db.anonymous() as conn:
            await self._repo.insert_oidc_flow(conn, state, nonce, verifier, datetime.now(UTC) + FLOW_TTL)
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
        return str(url)

    async def finish(self, code: str, state: str) -> tuple[str, list[str]]:
        """Exchange the code, verify the ID token (signature, issuer, audience, nonce, expiry); return email, amr."""
        async with self._db.anonymous() as conn:
            flow = await self._repo.take_oidc_flow(conn, state)
        if flow is None:
            raise AuthenticationFailed("unknown, replayed or expired sign-in state")
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
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is False:
            raise AuthenticationFailed("the identity provider gave no verified email")
        amr = claims.get("amr")
        return email, [str(a) for a in amr] if isinstance(amr, list) else []

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
