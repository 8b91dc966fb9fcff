"""Forged-token corpus: every variant must be refused with 401, whatever route it is presented to."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
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

from cli.seed import SeedResult
from core.crypto import SecretBox
from core.settings import Settings
from identity.keys import KeyRing
from identity.repository import IdentityRepository
from mobile_push.reference_client import CLIENT_ID, REDIRECT_URI, dpop_proof
from tests.api.conftest import Actor, sign_in
from tests.api.test_oauth_native_app import BASE, FORM, TOKEN_URL, code_for

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
        for path in ("/me", "/cameras", f"/tenants/{victim.home_tenant}", "/invitations"):
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


async def test_token_endpoint_abuse_corpus(client: AsyncTestClient[Litestar]) -> None:
    """The token endpoint (RFC 6749 §5.2 JSON errors, never a token, never a 5xx) and DPoP proofs (RFC 9449): every
    malformed request and forged proof is refused; the proof is checked before the code is looked up, so none of
    the forged proofs spends the code, which the genuine proof then redeems."""
    device = ECKey.generate_key("P-256")
    thief = ECKey.generate_key("P-256")
    code = await code_for(client)
    exchange = {"grant_type": "authorization_code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
                "code": code, "code_verifier": "v" * 64}
    now = int(time.time())
    claims = {"jti": uuid.uuid4().hex, "htm": "POST", "htu": TOKEN_URL, "iat": now}
    public = device.as_dict(private=False)

    def signed(header: dict[str, Any], body: dict[str, Any], key: Any = device, alg: str = "ES256") -> str:
        return jwt.encode({"alg": alg, "typ": "dpop+jwt", **header}, body, key, algorithms=[alg])

    def hs256() -> str:
        header = {"alg": "HS256", "typ": "dpop+jwt", "jwk": public}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        return f"{signing_input}.{_b64(hmac.new(b'k', signing_input.encode(), hashlib.sha256).digest())}"

    forged_proofs: dict[str, Callable[[], str]] = {
        "alg none": lambda: _unsigned({"alg": "none", "typ": "dpop+jwt", "jwk": public}, claims),
        "HS256": hs256,
        "private key in jwk": lambda: signed({"jwk": device.as_dict(private=True)}, claims),
        "no jwk": lambda: signed({}, claims),
        "jku instead of jwk": lambda: signed({"jwk": public, "jku": "https://attacker.example/jwks"}, claims),
        "RSA key": lambda: jwt.encode({"alg": "RS256", "typ": "dpop+jwt",
                                       "jwk": RSAKey.generate_key(2048).as_dict(private=False)},
                                      claims, RSAKey.generate_key(2048), algorithms=["RS256"]),
        "signed by another key": lambda: signed({"jwk": public}, claims, thief),
        "typ JWT": lambda: jwt.encode({"alg": "ES256", "typ": "JWT", "jwk": public}, claims, device,
                                      algorithms=["ES256"]),
        "for GET": lambda: signed({"jwk": public}, {**claims, "htm": "GET"}),
        "for another URL": lambda: signed({"jwk": public}, {**claims, "htu": "https://other.example/auth/token"}),
        "an hour old": lambda: signed({"jwk": public}, {**claims, "iat": now - 3600}),
        "from the future": lambda: signed({"jwk": public}, {**claims, "iat": now + 3600}),
        "no jti": lambda: signed({"jwk": public}, {k: v for k, v in claims.items() if k != "jti"}),
        "oversized": lambda: signed({"jwk": public}, {**claims, "padding": "x" * 3000}),
        "not a JWT": lambda: "not-a-proof",
    }
    for name, make in forged_proofs.items():
        response = await client.post("/auth/token", data=exchange, headers={**FORM, "dpop": make()})
        assert response.status_code == 400, (name, response.text)
        assert response.json()["error"] == "invalid_dpop_proof", (name, response.text)

    malformed: dict[str, dict[str, str]] = {
        "no grant_type": {"client_id": CLIENT_ID, "code": "x"},
        "password grant": {"grant_type": "password", "client_id": CLIENT_ID, "username": "a", "password": "b"},
        "client credentials": {"grant_type": "client_credentials", "client_id": CLIENT_ID},
        "jwt bearer": {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x"},
        "secret for a public client": {**exchange, "client_secret": "guess"},
        "unknown client": {**exchange, "client_id": "nobody"},
        "NUL in client_id": {**exchange, "client_id": "vigie-mobile\x00"},
        "oversized code": {**exchange, "code": "c" * 10_000},
        "refresh token never issued": {"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                       "refresh_token": "r" * 43},
    }
    for name, form in malformed.items():
        headers = {**FORM, "dpop": dpop_proof(device, method="POST", url=TOKEN_URL)}
        response = await client.post("/auth/token", data=form, headers=headers)
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        assert response.json()["error"] in (
            "invalid_request", "unsupported_grant_type", "invalid_client", "invalid_grant"), (name, response.text)
    as_json = await client.post("/auth/token", json=exchange)
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    assert (await client.get("/auth/token")).status_code == 405

    redeemed = await client.post("/auth/token", data=exchange,
                                 headers={**FORM, "dpop": dpop_proof(device, method="POST", url=TOKEN_URL)})
    assert redeemed.status_code == 200, redeemed.text
    token = redeemed.json()["access_token"]
    # A bearer session's refresh token is not the phone client's to refresh.
    bearer = await sign_in(client, "gendarme@marines.demo")
    stolen = await client.post(
        "/auth/token", headers={**FORM, "dpop": dpop_proof(device, method="POST", url=TOKEN_URL)},
        data={"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": bearer["refresh_token"]},
    )
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    # The DPoP-bound access token: refused as a bearer token and with any forged proof.
    me = f"{BASE}/me"
    for name, headers in {
        "bearer": {"authorization": f"Bearer {token}"},
        "alg none": {"authorization": f"DPoP {token}",
                     "dpop": _unsigned({"alg": "none", "typ": "dpop+jwt", "jwk": public},
                                       {**claims, "htm": "GET", "htu": me})},
        "thief's proof": {"authorization": f"DPoP {token}",
                          "dpop": dpop_proof(thief, method="GET", url=me, access_token=token)},
        "proof for the token endpoint": {"authorization": f"DPoP {token}",
                                         "dpop": dpop_proof(device, method="POST", url=TOKEN_URL)},
    }.items():
        assert (await client.get("/me", headers=headers)).status_code == 401, name
    assert (await client.get("/me", headers={"authorization": f"DPoP {token}", "dpop": dpop_proof(
        device, method="GET", url=me, access_token=token)})).status_code == 200


async def test_forged_enrolment_tokens_are_all_refused(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, department_pool: asyncpg.Pool
) -> None:
    """An enrolment link's token (GET/POST /auth/enrolment) is its only credential: any other value, a used, expired
    or revoked one, an access token, are refused alike (401 problem+json), and the token is no bearer token."""
    admin = actors["admin@valdoise.demo"]

    async def invite() -> dict[str, Any]:
        body = {
            "email": f"forged-{uuid.uuid4().hex[:8]}@valdoise.demo",
            "display_name": "x",
            "membership": {"tenant_id": str(seeded.tenants["marines"]), "role": "officer",
                           "force_id": str(seeded.forces["pm_marines"])},
        }
        response = await client.post("/users", json=body, headers=admin.headers)
        assert response.status_code == 201, response.text
        issued: dict[str, Any] = response.json()
        return issued

    live, used, expired_issued, revoked_issued = [await invite() for _ in range(4)]
    live_token, used_token = live["enrolment"]["token"], used["enrolment"]["token"]
    done = await client.post("/auth/enrolment", json={"password": "a passphrase of mine"},
                             headers={"x-enrolment-token": used_token})
    assert done.status_code == 200, done.text
    async with department_pool.acquire() as conn:
        await conn.execute("UPDATE enrolments SET expires_at = now() WHERE invitation_id = $1",
                           uuid.UUID(expired_issued["invitation"]["id"]))
    assert (await client.delete(f"/invitations/{revoked_issued['invitation']['id']}",
                                headers=admin.headers)).status_code == 204
    flipped = live_token[:-1] + ("A" if live_token[-1] != "A" else "B")
    corpus = {
        "random": secrets.token_urlsafe(32),
        "one character changed": flipped,
        "truncated": live_token[:30],
        "used": used_token,
        "expired": expired_issued["enrolment"]["token"],
        "revoked with its invitation": revoked_issued["enrolment"]["token"],
        "sql-like": "x_OR_1_1_--" + "x" * 20,
    }
    for name, token in corpus.items():
        headers = {"x-enrolment-token": token}
        for response in (
            await client.get("/auth/enrolment", headers=headers),
            await client.post("/auth/enrolment", json={"password": "a passphrase of mine"}, headers=headers),
        ):
            assert response.status_code == 401, (name, response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    # An access token is no enrolment token (its characters are not even allowed), and the reverse.
    assert (await client.get("/auth/enrolment", headers={"x-enrolment-token": admin.token})).status_code == 400
    assert (await client.get("/auth/enrolment")).status_code == 400
    assert (await client.get("/me", headers={"authorization": f"Bearer {live_token}"})).status_code == 401
    assert (await client.get("/auth/enrolment", headers={"x-enrolment-token": live_token})).status_code == 200
