"""Proof of possession of a device key (DPoP, RFC 9449): verifies a client's proof JWT and names its key.

Where Vigie checks proofs, and why there: a DPoP-bound client (the officers' phone app) proves its key at the token
endpoint for every grant. The code exchange binds the new session to that key (its RFC 7638 thumbprint is stored
with the session); a refresh is refused unless the proof is signed by the same key, so a refresh token copied off
the phone is useless without the private key, which never leaves it. Access tokens of such a session carry
`cnf.jkt`, and the API accepts them only as `Authorization: DPoP …` with a fresh proof bound to that token (`ath`),
the request's method and URL: a stolen access token is useless too. Replayed proofs (same key and `jti`) are refused
within the proof's lifetime by each API process; across processes the window is bounded by `iat` (±60 s), the
short access-token lifetime and, at the token endpoint, the single use of codes and refresh tokens.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from core.errors import AuthenticationFailed

PROOF_TYPE = "dpop+jwt"
# The one algorithm of the platform's own tokens; a phone's keystore (Android Keystore, Secure Enclave) has P-256.
ALGORITHMS = ("ES256",)
MAX_PROOF_BYTES = 2048
WINDOW_S = 60
_FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "x5c", "crit", "zip", "enc"})


class InvalidProof(AuthenticationFailed):
    """The DPoP proof is missing, malformed, not for this request, stale or replayed (`invalid_dpop_proof`)."""


@dataclass(frozen=True)
class Proof:
    thumbprint: str
    jti: str


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def access_token_hash(access_token: str) -> str:
    """The `ath` claim: base64url SHA-256 of the access token (RFC 9449 §4.2)."""
    return b64url(hashlib.sha256(access_token.encode()).digest())


def normalise_url(url: str) -> str:
    """Scheme and host in lower case, default port dropped, query and fragment ignored (RFC 9449 §4.3)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def _segment(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0]
    try:
        decoded = msgspec.json.decode(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, msgspec.DecodeError) as exc:
        raise InvalidProof("malformed DPoP proof header") from exc
    if not isinstance(decoded, dict):
        raise InvalidProof("malformed DPoP proof header")
    return decoded


def public_key(header: dict[str, Any]) -> ECKey:
    """The proof's own public key: a bare P-256 key, never a private one, never a reference to fetch."""
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
        raise InvalidProof("the DPoP proof must carry a public P-256 key in `jwk`")
    try:
        key = ECKey.import_key({k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y")})
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidProof("the DPoP proof's key is not a valid P-256 public key") from exc
    if key.is_private:
        raise InvalidProof("the DPoP proof carries a private key")
    return key


class ProofVerifier:
    """Checks proofs and remembers the `jti`s it accepted until they are too old to be accepted again."""

    def __init__(self, *, window_s: int = WINDOW_S, clock: Callable[[], float] = time.time) -> None:
        self._window = window_s
        self._clock = clock
        self._seen: dict[str, float] = {}
        # The token endpoint runs authlib's synchronous grants in worker threads.
        self._lock = threading.Lock()

    def verify(
        self, proof: str | None, *, method: str, urls: Iterable[str], access_token: str | None = None
    ) -> Proof:
        """Verify one proof for this request; `urls` are the URLs the request may have been sent to (the public
        URL and the one the server received). With `access_token`, the proof must name it (`ath`)."""
        if not proof:
            raise InvalidProof("a DPoP proof is required")
        if len(proof) > MAX_PROOF_BYTES or proof.count(".") != 2:
            raise InvalidProof("malformed DPoP proof")
        header = _segment(proof)
        if header.get("typ") != PROOF_TYPE or header.get("alg") not in ALGORITHMS:
            raise InvalidProof("the DPoP proof must be a dpop+jwt signed with ES256")
        if _FORBIDDEN_HEADERS & header.keys():
            raise InvalidProof("the DPoP proof names its key other than by `jwk`")
        key = public_key(header)
        try:
            claims = dict(jwt.decode(proof, key, algorithms=list(ALGORITHMS)).claims)
        except (JoseError, ValueError) as exc:
            raise InvalidProof(f"invalid DPoP proof signature: {exc.__class__.__name__}") from exc
        jti, htm, htu, iat = claims.get("jti"), claims.get("htm"), claims.get("htu"), claims.get("iat")
        if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
            raise InvalidProof("the DPoP proof needs a unique `jti`")
        if htm != method.upper():
            raise InvalidProof("the DPoP proof was made for another HTTP method")
        if not isinstance(htu, str) or normalise_url(htu) not in {normalise_url(u) for u in urls}:
            raise InvalidProof("the DPoP proof was made for another URL")
        now = self._clock()
        if not isinstance(iat, int | float) or isinstance(iat, bool) or abs(now - iat) > self._window:
            raise InvalidProof("the DPoP proof is too old or from the future")
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise InvalidProof("the DPoP proof was made for another access token")
        thumbprint = key.thumbprint()
        self._remember(f"{thumbprint}:{jti}", now)
        return Proof(thumbprint=thumbprint, jti=jti)

    def _remember(self, seen_key: str, now: float) -> None:
        with self._lock:
            expiry = self._seen.get(seen_key)
            if expiry is not None and expiry > now:
                raise InvalidProof("this DPoP proof was already used")
            if len(self._seen) > 100_000:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            # A proof is acceptable up to `window` after its iat, which may itself be `window` ahead of us.
            self._seen[seen_key] = now + 2 * self._window

