"""Signing keys (ES256): rotation, the published JWKS, and strict access-token verification."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from joserfc.jwt import JWTClaimsRegistry

from core.crypto import TOKEN_SIGNING_KEYS, SecretBox
from core.errors import AuthenticationFailed
from identity.repository import IdentityRepository

ALGORITHM = "ES256"
ACCESS_TOKEN_TYPE = "at+jwt"
MAX_TOKEN_BYTES = 4096
# Header parameters that would let a token choose its own key or add semantics we do not implement.
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "zip", "enc"})


class KeyRing:
    """Keys loaded from the database; refreshed every `reload_s` so a rotation reaches every process."""

    def __init__(self, secrets: SecretBox, repository: IdentityRepository, *, reload_s: float = 30.0) -> None:
        self._secrets = secrets
        self._repo = repository
        self._reload_s = reload_s
        self._loaded_at = float("-inf")
        self._signing: ECKey | None = None
        self._published = KeySet([])
        # Tokens already verified, until they expire: the signature check is the costliest step of a request.
        self._verified: dict[str, dict[str, Any]] = {}

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._loaded_at >= self._reload_s

    async def load(self, conn: asyncpg.Connection, *, force: bool = False) -> None:
        if not force and not self.stale:
            return
        now = datetime.now(UTC)
        rows = await self._repo.signing_keys(conn)
        published: list[Any] = []
        signing: ECKey | None = None
        for row in rows:
            if row["unpublish_at"] is not None and row["unpublish_at"] <= now:
                continue
            published.append(ECKey.import_key(msgspec.json.decode(row["public_jwk"])))
            usable = row["activates_at"] <= now and (row["retired_at"] is None or row["retired_at"] > now)
            if usable and signing is None:  # rows come newest first
                private = self._secrets.open(row["private_jwk_sealed"], column=TOKEN_SIGNING_KEYS, row_id=row["kid"])
                signing = ECKey.import_key(msgspec.json.decode(private))
        self._signing, self._published = signing, KeySet(published)
        self._loaded_at = time.monotonic()
        self._verified.clear()

    def jwks(self) -> dict[str, Any]:
        return dict(self._published.as_dict(private=False))

    def sign(self, claims: dict[str, Any]) -> str:
        if self._signing is None:
            raise RuntimeError("no active signing key: run `vigie keys rotate`")
        return jwt.encode(
            {"alg": ALGORITHM, "typ": ACCESS_TOKEN_TYPE, "kid": self._signing.kid},
            claims,
            KeySet([self._signing]),
            algorithms=[ALGORITHM],
        )

    def verify(self, token: str, *, issuer: str, audience: str) -> dict[str, Any]:
        """Return the claims of a valid access token, or raise AuthenticationFailed. Never trusts the header."""
        cached = self._verified.get(token)
        if cached is not None and cached["exp"] > time.time():
            return cached
        claims = self._verify(token, issuer=issuer, audience=audience)
        if len(self._verified) > 20_000:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _verify(self, token: str, *, issuer: str, audience: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise AuthenticationFailed("malformed token")
        header = _header(token)
        if header.get("alg") != ALGORITHM or header.get("typ") != ACCESS_TOKEN_TYPE:
            raise AuthenticationFailed("token algorithm or type not accepted")
        if _FORBIDDEN_HEADERS & header.keys():
            raise AuthenticationFailed("token header carries key material or critical extensions")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in {k.kid for k in self._published.keys}:
            raise AuthenticationFailed("unknown signing key")
        try:
            decoded = jwt.decode(token, self._published, algorithms=[ALGORITHM])
            JWTClaimsRegistry(
                leeway=5,
                iss={"essential": True, "value": issuer},
                aud={"essential": True, "value": audience},
                sub={"essential": True},
                sid={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise AuthenticationFailed(f"invalid token: {exc.__class__.__name__}") from exc
        return dict(decoded.claims)


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = msgspec.json.decode(raw)
    except (ValueError, msgspec.DecodeError) as exc:
        raise AuthenticationFailed("malformed token header") from exc
    if not isinstance(header, dict):
        raise AuthenticationFailed("malformed token header")
    return header


async def rotate_signing_key(
    conn: asyncpg.Connection,
    secrets: SecretBox,
    repository: IdentityRepository,
    *,
    publish_ahead: timedelta,
    keep_published: timedelta,
) -> str:
    """Publish a new key now, sign with it after `publish_ahead`; older keys retire then and stay published
    for `keep_published` (at least the longest token lifetime) so tokens they signed keep verifying."""
    now = datetime.now(UTC)
    kid = f"{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    key = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"})
    activates = now + publish_ahead
    await repository.retire_keys(conn, retire_at=activates, unpublish_at=activates + keep_published)
    await repository.insert_key(
        conn,
        kid=kid,
        algorithm=ALGORITHM,
        private_sealed=secrets.seal(msgspec.json.encode(key.as_dict(private=True)), column=TOKEN_SIGNING_KEYS,
                                    row_id=kid),
        public_jwk=msgspec.json.encode(key.as_dict(private=False)).decode(),
        activates_at=activates,
    )
    return kid
