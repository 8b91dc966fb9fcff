"""A small, real OIDC provider for tests: discovery, authorize (auto-consent), token with PKCE, JWKS."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar, Request, Response, get, post
from litestar.response import Redirect

from core.embedded import wait_for_port
from core.ports import free_port


@dataclass
class ProviderState:
    issuer: str
    client_id: str = "vigie-test"
    client_secret: str = "s3cret-client"
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "op-1", "alg": "RS256"}))
    next_email: str = ""
    # The subject the next ID token names (None: derived from the e-mail, stable per address).
    next_subject: str | None = None
    # `email_verified` of the next ID token; None leaves the claim out.
    email_verified: bool | None = True
    next_amr: list[str] = field(default_factory=lambda: ["pwd"])
    wrong_nonce: bool = False

    def subject_for(self, email: str) -> str:
        return hashlib.sha256(email.encode()).hexdigest()

    def reset(self) -> None:
        self.next_email, self.next_subject, self.email_verified = "", None, True
        self.next_amr, self.wrong_nonce = ["pwd"], False
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)


def build_provider(state: ProviderState) -> Litestar:
    @get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": state.issuer,
            "authorization_endpoint": f"{state.issuer}/authorize",
            "token_endpoint": f"{state.issuer}/token",
            "jwks_uri": f"{state.issuer}/jwks",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
        }

    @get("/jwks")
    async def jwks() -> dict[str, Any]:
        return dict(KeySet([state.key]).as_dict(private=False))

    @get("/authorize", status_code=302)
    async def authorize(request: Request[Any, Any, Any]) -> Redirect | Response[str]:
        q = request.query_params
        if (
            q.get("client_id") != state.client_id
            or q.get("code_challenge_method") != "S256"
            or not q.get("code_challenge")
            or q.get("response_type") != "code"
        ):
            return Response("bad authorization request", status_code=400)
        code = secrets.token_urlsafe(16)
        state.codes[code] = {
            "challenge": q["code_challenge"],
            "nonce": q.get("nonce"),
            "email": state.next_email,
            "subject": state.next_subject or state.subject_for(state.next_email),
            "email_verified": state.email_verified,
            "redirect_uri": q.get("redirect_uri"),
        }
        return Redirect(path=f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", status_code=302)

    @post("/token", status_code=200)
    async def token(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        form = await request.form()
        grant = state.codes.pop(str(form.get("code")), None)
        if form.get("client_id") != state.client_id or form.get("client_secret") != state.client_secret:
            return Response({"error": "invalid_client"}, status_code=401)
        verifier = str(form.get("code_verifier", ""))
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if grant is None or grant["challenge"] != expected or form.get("redirect_uri") != grant["redirect_uri"]:
            return Response({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": state.issuer,
            "aud": state.client_id,
            "sub": grant["subject"],
            "email": grant["email"],
            **({} if grant["email_verified"] is None else {"email_verified": grant["email_verified"]}),
            "iat": now,
            "exp": now + 60,
            "nonce": "forged" if state.wrong_nonce else grant["nonce"],
            "amr": state.next_amr,
        }
        id_token = jwt.encode({"alg": "RS256", "kid": state.key.kid}, claims, KeySet([state.key]))
        return Response(
            {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 60, "id_token": id_token}
        )

    return Litestar(route_handlers=[discovery, jwks, authorize, token])


class OidcProvider:
    """Serves the provider with uvicorn on loopback in a background thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.state = ProviderState(issuer=f"http://127.0.0.1:{self.port}")
        self._server = uvicorn.Server(
            uvicorn.Config(
                build_provider(self.state), host="127.0.0.1", port=self.port, log_config=None, lifespan="off"
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> OidcProvider:
        self._thread.start()
        wait_for_port("127.0.0.1", self.port, 10)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
