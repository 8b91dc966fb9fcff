"""Authorization code + PKCE (RFC 6749 §4.1, RFC 7636 S256) for first-party public clients such as the phone app."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from core.db import Database
from core.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from core.tenancy import SECOND_FACTOR_ROLES, Role
from identity.model import Email, LoginRequest, Password, TokenPair
from identity.repository import IdentityRepository
from identity.sessions import SessionService

CODE_TTL = timedelta(seconds=60)
ClientId = Annotated[str, msgspec.Meta(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]+$")]
RedirectUri = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is always 43 characters.
CodeChallenge = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{43}$")]
# RFC 7636 §4.1: 43 to 128 unreserved characters.
CodeVerifier = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._~-]{43,128}$")]
State = Annotated[str, msgspec.Meta(max_length=500)]


class AuthorizationRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The app's sign-in step: the client's parameters plus the officer's credentials (a JSON form post)."""

    response_type: Literal["code"] = "code"
    client_id: ClientId
    redirect_uri: RedirectUri
    code_challenge: CodeChallenge
    # Only S256: `plain` would hand the verifier to anyone who sees the authorization request.
    code_challenge_method: Literal["S256"] = "S256"
    state: State | None = None
    email: Email
    password: Password
    membership_id: uuid.UUID | None = None


class AuthorizationPrompt(msgspec.Struct, frozen=True, kw_only=True):
    """GET /auth/authorize: the request is acceptable; post credentials with the same parameters to continue."""

    client_id: str
    client_name: str
    redirect_uri: str
    state: str | None
    sign_in: str = "POST /auth/authorize with these parameters plus email and password"


class AuthorizationGranted(msgspec.Struct, frozen=True, kw_only=True):
    """Where the app's browser goes next: the redirect URI with the one-use code and the state."""

    redirect_to: str
    code: str
    state: str | None


class CodeExchange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST /auth/token, grant_type=authorization_code (JSON, as every body of this API)."""

    grant_type: Literal["authorization_code"]
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    redirect_uri: RedirectUri
    client_id: ClientId
    code_verifier: CodeVerifier


def _digest(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def redirect_allowed(requested: str, registered: list[str]) -> bool:
    """Exact match, except that a loopback redirect may use any port (RFC 8252 §7.3)."""
    if requested in registered:
        return True
    parts = urlsplit(requested)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "[::1]", "::1") or parts.query or parts.fragment:
        return False
    portless = urlunsplit((parts.scheme, parts.hostname, parts.path, "", ""))
    return portless in registered


class AuthorizationService:
    """Issues one-use codes after a password sign-in and redeems them for the same tokens as /auth/login."""

    def __init__(self, db: Database, sessions: SessionService, repository: IdentityRepository | None = None) -> None:
        self._db = db
        self._sessions = sessions
        self._repo = repository or IdentityRepository()

    async def check_client(self, client_id: str, redirect_uri: str) -> str:
        """The client's name; an unknown client or an unregistered redirect is refused here, never redirected to."""
        async with self._db.anonymous() as conn:
            client = await self._repo.oauth_client(conn, client_id)
        if client is None:
            raise InvalidInput("unknown client_id", field="client_id")
        if not redirect_allowed(redirect_uri, list(client["redirect_uris"])):
            raise InvalidInput("redirect_uri is not registered for this client", field="redirect_uri")
        return str(client["name"])

    async def prompt(self, client_id: str, redirect_uri: str, state: str | None) -> AuthorizationPrompt:
        name = await self.check_client(client_id, redirect_uri)
        return AuthorizationPrompt(client_id=client_id, client_name=name, redirect_uri=redirect_uri, state=state)

    async def authorize(self, request: AuthorizationRequest, *, client_ip: str) -> AuthorizationGranted:
        await self.check_client(request.client_id, request.redirect_uri)
        account, membership = await self._sessions.authenticate(
            LoginRequest(email=request.email, password=request.password, membership_id=request.membership_id),
            client_ip=client_ip,
        )
        if Role(membership.role) in SECOND_FACTOR_ROLES:
            # The phone app is for the forces; roles that need a second factor sign in at /auth/login.
            raise PermissionDenied("this role signs in with a second factor at /auth/login, not through the app")
        code = secrets.token_urlsafe(32)
        async with self._db.anonymous() as conn:
            await self._repo.insert_authorization_code(
                conn,
                {
                    "code_hash": _digest(code),
                    "client_id": request.client_id,
                    "redirect_uri": request.redirect_uri,
                    "code_challenge": request.code_challenge,
                    "user_id": account.id,
                    "membership_id": membership.id,
                    "expires_at": datetime.now(UTC) + CODE_TTL,
                },
            )
        query = {"code": code, **({"state": request.state} if request.state is not None else {})}
        separator = "&" if urlsplit(request.redirect_uri).query else "?"
        return AuthorizationGranted(
            redirect_to=f"{request.redirect_uri}{separator}{urlencode(query)}", code=code, state=request.state
        )

    async def exchange(self, request: CodeExchange, *, client_ip: str, user_agent: str) -> TokenPair:
        """One try per code: a wrong verifier burns it too, so a stolen code cannot be brute-forced."""
        async with self._db.anonymous() as conn:
            row = await self._repo.take_authorization_code(conn, _digest(request.code))
            if row is not None and row["used_at"] is None:
                await self._repo.use_authorization_code(conn, row["code_hash"])
        if row is None or row["used_at"] is not None or row["expires_at"] < datetime.now(UTC):
            raise AuthenticationFailed("unknown, used or expired authorization code")
        if row["client_id"] != request.client_id or row["redirect_uri"] != request.redirect_uri:
            raise AuthenticationFailed("the code was issued to another client or redirect URI")
        if not secrets.compare_digest(create_s256_code_challenge(request.code_verifier), row["code_challenge"]):
            raise AuthenticationFailed("code_verifier does not match the code_challenge")
        return await self._sessions.open_session_for(
            row["user_id"], row["membership_id"], amr=["pwd"], client_ip=client_ip, user_agent=user_agent
        )
