"""Forged-token corpus: every variant must be refused with 401, whatever route it is presented to."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.crypto import SecretBox
from core.settings import Settings
from identity.keys import KeyRing
from identity.repository import IdentityRepository
from tests.api.conftest import Actor, sign_in

pytestmark = pytest.mark.integration


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)])


@pytest.fixture(scope="module")
async def ring(api_settings: Settings, department_pool: asyncpg.Pool) -> KeyRing:
    keys = KeyRing(SecretBox(api_settings.data_key.get_secret_value()), IdentityRepository())
    async with department_pool.acquire() as conn:
        await keys.load(conn, force=True)  # type: ignore[arg-type]
    return keys


async def test_forged_tokens_are_all_refused(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], api_settings: Settings, ring: KeyRing
) -> None:
    victim = actors["policier@cergy.demo"]
    good = jwt.decode(victim.token, KeySet.import_key_set(ring.jwks())).claims  # type: ignore[arg-type]
    real_kid = ring.jwks()["keys"][0]["kid"]
    now = int(time.time())
    attacker = ECKey.generate_key("P-256", parameters={"kid": real_kid, "alg": "ES256"})
    attacker_rsa = RSAKey.generate_key(2048, parameters={"kid": real_kid, "alg": "RS256"})
    public_pem = json.dumps(ring.jwks()["keys"][0]).encode()

    def signed(**changes: Any) -> str:
        return ring.sign({**good, **changes})

    def hs256_with_public_key() -> str:
        header = {"alg": "HS256", "typ": "at+jwt", "kid": real_kid}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(good).encode())}"
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    def with_header(extra: dict[str, Any], key: Any = attacker, alg: str = "ES256") -> str:
        return jwt.encode({"alg": alg, "typ": "at+jwt", "kid": real_kid, **extra}, good, key, algorithms=[alg])

    def tampered() -> str:
        head, _, signature = victim.token.split(".")
        return f"{head}.{_b64(json.dumps({**good, 'sub': str(uuid.uuid4())}).encode())}.{signature}"

    corpus: dict[str, Callable[[], str]] = {
        "alg none": lambda: _unsigned({"alg": "none", "typ": "at+jwt", "kid": real_kid}, good),
        "alg none uppercase": lambda: _unsigned({"alg": "NONE", "typ": "at+jwt", "kid": real_kid}, good),
        "HS256 signed with the public key": hs256_with_public_key,
        "RS256 with the real kid": lambda: with_header({}, attacker_rsa, "RS256"),
        "embedded jwk of the attacker": lambda: with_header({"jwk": attacker.as_dict(private=False)}),
        "jku to the attacker": lambda: with_header({"jku": "https://attacker.example/jwks.json"}),
        "x5u to the attacker": lambda: with_header({"x5u": "https://attacker.example/cert.pem"}),
        "attacker key, real kid": lambda: with_header({}),
        "unknown kid": lambda: jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "nope"}, good, attacker),
        "kid path traversal": lambda: jwt.encode(
            {"alg": "ES256", "typ": "at+jwt", "kid": "../../../etc/passwd"}, good, attacker
        ),
        "kid sql injection": lambda: jwt.encode(
            {"alg": "ES256", "typ": "at+jwt", "kid": "' OR 1=1 --"}, good, attacker
        ),
        "expired": lambda: signed(exp=now - 60, iat=now - 3600, nbf=now - 3600),
        "not yet valid": lambda: signed(nbf=now + 3600),
        "wrong audience": lambda: signed(aud="another-api"),
        "wrong issuer": lambda: signed(iss="https://attacker.example"),
        "no session id": lambda: ring.sign({k: v for k, v in good.items() if k != "sid"}),
        "session that never existed": lambda: signed(sid=str(uuid.uuid4())),
        "payload altered after signing": tampered,
        "typ of an ID token": lambda: _retyped(ring, good),
        "oversized": lambda: signed(padding="x" * 5000),
        "not a JWT": lambda: "definitely-not-a-token",
        "two segments": lambda: ".".join(victim.token.split(".")[:2]),
    }
    refused = []
    for name, make in corpus.items():
        token = make()
        for path in ("/me", "/cameras", f"/tenants/{victim.home_tenant}"):
            response = await client.get(path, headers={"authorization": f"Bearer {token}"})
            assert response.status_code == 401, (name, path, response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        refused.append(name)
    assert len(refused) == len(corpus) >= 20


def _retyped(ring: KeyRing, claims: dict[str, Any]) -> str:
    """A correctly signed token whose type says it is not an access token."""
    token = ring.sign(claims)
    head, payload, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    header["typ"] = "JWT"
    return f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"


async def test_token_of_a_revoked_session_is_refused(client: AsyncTestClient[Litestar]) -> None:
    body = await sign_in(client, "gendarme@marines.demo")
    headers = {"authorization": f"Bearer {body['access_token']}"}
    assert (await client.get("/me", headers=headers)).status_code == 200
    assert (await client.post("/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/me", headers=headers)).status_code == 401
    refreshed = await client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 401


async def test_missing_token_is_401_with_a_problem(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/cameras")
    assert response.status_code == 401
    assert response.json()["type"].endswith("/unauthenticated")
