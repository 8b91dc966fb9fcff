"""Authlib's authorization server on Vigie's stores: the authorization code grant with mandatory PKCE S256 and the
refresh grant for registered native apps (RFC 8252), with the DPoP key binding of DPoP-bound clients (RFC 9449).

Authlib's server API is synchronous; the service runs it in a worker thread (`run_in_thread`), and the few callbacks
that need the database (`query_client`, the code and refresh lookups, issuing tokens) hop back to the event loop that
started the thread (`NativeAppServer.call`). The HTTP layer hands it a framework-free `HttpRequest` and gets an
`HttpResponse` back, so nothing here knows litestar.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Coroutine, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    AuthorizationServer,
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Request,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc7636 import CodeChallenge

from core.errors import AuthenticationFailed
from identity.dpop import InvalidProof, Proof, ProofVerifier
from identity.model import TokenPair

if TYPE_CHECKING:
    from identity.authorization import AuthorizationService

T = TypeVar("T")
# The event loop of the request being served; worker threads inherit the context (asyncio.to_thread copies it).
_EVENT_LOOP: ContextVar[asyncio.AbstractEventLoop] = ContextVar("oauth_event_loop")
S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_PARAMETER_LIMITS = {"client_id": 64, "redirect_uri": 500, "state": 500, "code": 200, "refresh_token": 200,
                     "code_verifier": 128, "code_challenge": 43, "scope": 200}


@dataclass(frozen=True)
class HttpRequest:
    """A request as the HTTP layer saw it: `path` of the endpoint, parameters of the query and of the form body."""

    method: str
    path: str
    received_url: str
    headers: Mapping[str, str]
    query: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] = ()
    client_ip: str = "unknown"
    user_agent: str = ""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: dict[str, Any] | str
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


@dataclass(frozen=True)
class SignedIn:
    """Who the sign-in page authenticated and how; the code carries it to the token endpoint."""

    user_id: uuid.UUID
    membership_id: uuid.UUID
    amr: tuple[str, ...]


def redirect_allowed(requested: str, registered: tuple[str, ...]) -> bool:
    """Exact match (a private-use scheme such as `fr.vigie.mobile:/oauth2redirect`), except that a loopback redirect
    may use any port (RFC 8252 §7.3, §8.3: 127.0.0.1 or [::1], never `localhost`)."""
    if requested in registered:
        return True
    try:
        parts = urlsplit(requested)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1") or parts.query or parts.fragment:
        return False
    host = "[::1]" if parts.hostname == "::1" else parts.hostname
    return urlunsplit((parts.scheme, host, parts.path, "", "")) in registered


@dataclass(frozen=True)
class NativeClient(ClientMixin):  # type: ignore[misc]
    """A registered public client: no secret (PKCE instead), its exact redirect URIs, and whether its tokens are
    bound to a device key."""

    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    dpop_bound: bool

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # a native app names its redirect in every request

    def get_allowed_scope(self, scope: str | None) -> str:
        return ""  # access follows the account's role, not scopes

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_allowed(redirect_uri, self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class IssuedCode:
    """An authorization code as its (single) redemption found it."""

    code_hash: bytes
    client_id: str
    redirect_uri: str
    code_challenge: str
    code_challenge_method: str
    signed_in: SignedIn

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return ""


@dataclass(frozen=True)
class RefreshCredential:
    """A refresh token's session: the client it was issued to and the key it is bound to (None: a bearer one)."""

    token: str
    session_id: uuid.UUID
    client_id: str | None
    key_thumbprint: str | None

    def check_client(self, client: NativeClient) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return ""


class InvalidDpopProofError(OAuth2Error):  # type: ignore[misc]
    error = "invalid_dpop_proof"


def ascii_description(text: str) -> str:
    """RFC 6749 §5.2 allows only printable ASCII without `"` and `\\` in error_description."""
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')[:300]


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: tuple[tuple[str, str], ...]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class VigieRequest(OAuth2Request):  # type: ignore[misc]
    """Parameters come from the query of a GET and from the form body of a POST, never both (RFC 6749 §3.1, §3.2)."""

    def __init__(self, http: HttpRequest, public_url: str) -> None:
        super().__init__(http.method, public_url.rstrip("/") + http.path, headers=http.headers)
        self.http = http
        self.public_url = public_url.rstrip("/") + http.path
        self.payload = _Payload(http.form if http.method == "POST" else http.query)
        self.proof: Proof | None = None
        for name, values in self.payload.datalist.items():
            limit = _PARAMETER_LIMITS.get(name, 2000)
            if any(len(v) > limit or "\x00" in v for v in values):
                raise InvalidRequestError(f"'{name}' is too long or malformed")

    @property
    def args(self) -> dict[str, str]:
        return dict(self.http.query)

    @property
    def form(self) -> dict[str, str]:
        return dict(self.http.form)


def _server(grant: Any) -> NativeAppServer:
    server = grant.server
    assert isinstance(server, NativeAppServer)
    return server


def _request(grant: Any) -> VigieRequest:
    request = grant.request
    assert isinstance(request, VigieRequest)
    return request


class S256Challenge(CodeChallenge):  # type: ignore[misc]
    """PKCE is mandatory and only S256: `plain` would hand the verifier to whoever sees the authorization request."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str | None) -> None:
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if not challenge:
            raise InvalidRequestError("Missing 'code_challenge': PKCE (S256) is required")
        if method != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        if not S256_CHALLENGE.match(challenge):
            raise InvalidRequestError("Invalid 'code_challenge'")
        super().validate_code_challenge(grant, redirect_uri)


class _ProofBound:
    """Client authentication for public clients, plus the DPoP proof of DPoP-bound clients, checked before the
    code or the refresh token is looked at."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def authenticate_token_endpoint_client(self) -> NativeClient:
        client: NativeClient = super().authenticate_token_endpoint_client()  # type: ignore[misc]
        _server(self).check_proof(_request(self), client)
        return client


class CodeGrant(_ProofBound, AuthorizationCodeGrant):  # type: ignore[misc]
    def save_authorization_code(self, code: str, request: VigieRequest) -> None:
        signed_in = request.user
        assert isinstance(signed_in, SignedIn)
        data = request.payload.data
        _server(self).call(
            _server(self).service.save_code,
            code, request.client.client_id, request.payload.redirect_uri, data["code_challenge"], signed_in,
        )

    def query_authorization_code(self, code: str, client: NativeClient) -> IssuedCode | None:
        return _server(self).call(_server(self).service.take_code, code, client.client_id)

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        """Nothing left to do: the lookup already used the code up."""

    def authenticate_user(self, authorization_code: IssuedCode) -> SignedIn:
        return authorization_code.signed_in

    def generate_token(self, user: SignedIn | None = None, **_: Any) -> dict[str, Any]:
        request = _request(self)
        assert user is not None
        code = request.authorization_code
        assert isinstance(code, IssuedCode)
        server = _server(self)
        try:
            pair = server.call(server.service.open_session, user, code, request.proof, request.http)
        except AuthenticationFailed as exc:
            raise InvalidGrantError(ascii_description(exc.detail)) from exc
        return token_response(pair)


class RefreshGrant(_ProofBound, RefreshTokenGrant):  # type: ignore[misc]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        server = _server(self)
        credential = server.call(server.service.refresh_binding, refresh_token)
        if credential is None:
            return None
        proof = _request(self).proof
        if credential.key_thumbprint is not None and (proof is None or proof.thumbprint != credential.key_thumbprint):
            # Refused before the token is used: a copy of it without the device key cannot even burn it.
            raise InvalidGrantError("the refresh token is bound to another key")
        return credential

    def authenticate_user(self, refresh_token: RefreshCredential) -> RefreshCredential:
        return refresh_token

    def issue_token(self, user: RefreshCredential, refresh_token: RefreshCredential) -> dict[str, Any]:
        server = _server(self)
        proof = _request(self).proof
        try:
            pair = server.call(server.service.refresh, refresh_token.token, None if proof is None else proof.thumbprint)
        except AuthenticationFailed as exc:
            raise InvalidGrantError(ascii_description(exc.detail)) from exc
        return token_response(pair)

    def revoke_old_credential(self, refresh_token: RefreshCredential) -> None:
        """Nothing left to do: the rotation marked the old token used (a second use revokes the session)."""


def token_response(pair: TokenPair) -> dict[str, Any]:
    """RFC 6749 §5.1, plus what the app shows (its role and tenant) and the session it may end at /auth/logout."""
    return {
        "access_token": pair.access_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
        "session_id": str(pair.session_id),
        "role": pair.role,
        "tenant_id": str(pair.tenant_id),
    }


class NativeAppServer(AuthorizationServer):  # type: ignore[misc]
    """The framework integration authlib asks for: requests in, responses out, and the client registry."""

    def __init__(self, service: AuthorizationService, proofs: ProofVerifier, public_url: str) -> None:
        super().__init__(scopes_supported=None)
        self.service = service
        self.proofs = proofs
        self.public_url = public_url
        self.register_grant(CodeGrant, [S256Challenge(required=True)])
        self.register_grant(RefreshGrant)

    @staticmethod
    def call(function: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run one of the service's coroutines on the event loop that started this worker thread, and wait."""
        return asyncio.run_coroutine_threadsafe(function(*args), _EVENT_LOOP.get()).result()

    def query_client(self, client_id: str | None) -> NativeClient | None:
        if not client_id or not CLIENT_ID.match(client_id):
            return None
        return self.call(self.service.client, client_id)

    def save_token(self, token: dict[str, Any], request: VigieRequest) -> None:
        """Nothing to do: the session and its refresh token were written when the token was issued."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No listeners: what matters (a session opened) is journaled by the session service."""

    def create_oauth2_request(self, request: HttpRequest | VigieRequest) -> VigieRequest:
        return request if isinstance(request, VigieRequest) else VigieRequest(request, self.public_url)

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoint: the token endpoint is form-encoded (RFC 6749 §4.1.3)")

    def handle_response(self, status: int, body: Any, headers: Any) -> HttpResponse:
        return HttpResponse(status=status, body=body if isinstance(body, dict | str) else dict(body),
                            headers=list(headers))

    def check_proof(self, request: VigieRequest, client: NativeClient) -> None:
        """Verify the request's DPoP proof, if any; a DPoP-bound client must send one."""
        header = request.http.headers.get("dpop")
        if header is None:
            if client.dpop_bound:
                raise InvalidDpopProofError("this client must send a DPoP proof")
            return
        try:
            request.proof = self.proofs.verify(
                header, method=request.http.method, urls=(request.public_url, request.http.received_url)
            )
        except InvalidProof as exc:
            raise InvalidDpopProofError(ascii_description(exc.detail)) from exc


async def run_in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a synchronous entry point of authlib's server off the event loop; its callbacks come back to this loop."""
    _EVENT_LOOP.set(asyncio.get_running_loop())
    return await asyncio.to_thread(function, *args)
