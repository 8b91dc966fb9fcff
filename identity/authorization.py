"""OAuth 2.0 for native apps (RFC 8252): the steps of the platform's sign-in page, the token endpoint and the checks
of DPoP-bound access tokens. The officers' phone app never sees a password: the person types it into the platform's
page (in the system browser), which answers with a 302 to the app's registered redirect URI carrying a one-use code;
the app redeems it with its PKCE verifier and a DPoP proof of its device key (see identity.dpop)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from authlib.oauth2.rfc6749 import OAuth2Error

from core.db import Database
from core.errors import AuthenticationFailed, InvalidInput, PermissionDenied, VigieError
from core.tenancy import SECOND_FACTOR_ROLES, Principal, Role
from identity.dpop import InvalidProof, Proof, ProofVerifier
from identity.model import LoginRequest, TokenPair
from identity.oauth_repository import OAuthRepository
from identity.oauth_server import (
    HttpRequest,
    HttpResponse,
    IssuedCode,
    NativeAppServer,
    NativeClient,
    RefreshCredential,
    SignedIn,
    VigieRequest,
    run_in_thread,
)
from identity.sessions import SessionService

CODE_TTL = timedelta(seconds=60)
# What the sign-in page carries from one step to the next (hidden fields), exactly as the app sent it.
AUTHORIZATION_PARAMETERS = (
    "response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope",
)


class InvalidAuthorizationRequest(VigieError):
    """An authorization request that cannot be answered with a redirect (unknown client, unregistered redirect URI):
    the page shows the error instead, never redirecting to an address nobody registered."""


@dataclass(frozen=True)
class Consent:
    client_name: str
    parameters: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SecondFactorNeeded:
    """The password was right and the role needs a second factor: the page asks for the code next."""

    consent: Consent
    challenge: str


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


class AuthorizationService:
    """Runs authlib's server (identity.oauth_server) and gives its grants the stores they need."""

    def __init__(
        self,
        db: Database,
        sessions: SessionService,
        *,
        public_url: str,
        proofs: ProofVerifier | None = None,
        repository: OAuthRepository | None = None,
    ) -> None:
        self._db = db
        self._sessions = sessions
        self._repo = repository or OAuthRepository()
        self.proofs = proofs or ProofVerifier()
        self.public_url = public_url.rstrip("/")
        self.server = NativeAppServer(self, self.proofs, self.public_url)

    # --- the sign-in page
    async def consent(self, http: HttpRequest) -> Consent | HttpResponse:
        """Validate an authorization request: a Consent to show the page, a redirect carrying the error to the
        app (RFC 6749 §4.1.2.1), or InvalidAuthorizationRequest when the redirect URI cannot be trusted."""
        outcome = await run_in_thread(self._consent, http)
        if isinstance(outcome, HttpResponse):
            return outcome
        client = outcome.client
        assert isinstance(client, NativeClient)
        data = outcome.payload.data
        return Consent(
            client_name=client.name,
            parameters=tuple((k, data[k]) for k in AUTHORIZATION_PARAMETERS if data.get(k) is not None),
        )

    def _grant(self, http: HttpRequest) -> Any:
        """Authlib's grant for a valid request; else the redirect carrying the error, or the error to show."""
        try:
            return self.server.get_consent_grant(self.server.create_oauth2_request(http))
        except OAuth2Error as error:
            if error.redirect_uri:
                return self.server.handle_response(*error())
            raise InvalidAuthorizationRequest(error.description or error.error) from None

    def _consent(self, http: HttpRequest) -> VigieRequest | HttpResponse:
        grant = self._grant(http)
        if isinstance(grant, HttpResponse):
            return grant
        result: VigieRequest = grant.request
        return result

    async def sign_in(self, http: HttpRequest, consent: Consent) -> HttpResponse | SecondFactorNeeded:
        """The page's form, for a request `consent` accepted: email and password, then the second-factor code for
        roles that need one. Success is a 302 to the app's redirect URI with the code and the state (the request
        is validated again by authlib before the code is issued); a refusal raises, and the page shows it."""
        form = dict(http.form)
        if "challenge" in form:
            await self._sessions.throttle.admit(http.client_ip)
            account, membership_id = await self._sessions.verify_second_factor(form["challenge"], form.get("code", ""))
            amr: tuple[str, ...] = ("pwd", "otp")
        else:
            try:
                login = msgspec.convert(
                    {"email": form.get("email", ""), "password": form.get("password", "")}, LoginRequest
                )
            except msgspec.ValidationError as exc:
                raise InvalidInput("enter an email address and a password", field="email") from exc
            account, membership = await self._sessions.authenticate(login, client_ip=http.client_ip)
            if Role(membership.role) in SECOND_FACTOR_ROLES:
                if account.totp_secret_sealed is None:
                    raise PermissionDenied("this role requires a second factor and none is enrolled")
                challenge = await self._sessions.open_challenge(account, membership.id)
                return SecondFactorNeeded(consent, challenge.challenge)
            membership_id, amr = membership.id, ("pwd",)
        signed_in = SignedIn(user_id=account.id, membership_id=membership_id, amr=amr)
        return await run_in_thread(self._authorize, http, signed_in)

    def _authorize(self, http: HttpRequest, signed_in: SignedIn) -> HttpResponse:
        grant = self._grant(http)
        if isinstance(grant, HttpResponse):
            return grant
        response: HttpResponse = self.server.create_authorization_response(
            grant.request, grant_user=signed_in, grant=grant
        )
        return response

    # --- the token endpoint
    async def token(self, http: HttpRequest) -> HttpResponse:
        return await run_in_thread(self._token, http)

    def _token(self, http: HttpRequest) -> HttpResponse:
        try:
            request = self.server.create_oauth2_request(http)
        except OAuth2Error as error:
            return self.server.handle_response(*error())
        response: HttpResponse = self.server.create_token_response(request)
        return response

    # --- what the grants ask of the stores (called on the event loop from authlib's worker thread)
    async def client(self, client_id: str) -> NativeClient | None:
        async with self._db.anonymous(readonly=True) as conn:
            row = await self._repo.client(conn, client_id)
        if row is None:
            return None
        return NativeClient(
            client_id=row["client_id"], name=row["name"], redirect_uris=tuple(row["redirect_uris"]),
            dpop_bound=row["dpop_bound"],
        )

    async def save_code(
        self, code: str, client_id: str, redirect_uri: str, challenge: str, signed_in: SignedIn
    ) -> None:
        now = datetime.now(UTC)
        async with self._db.anonymous() as conn:
            await self._repo.insert_code(conn, {
                "code_hash": _digest(code), "client_id": client_id, "redirect_uri": redirect_uri,
                "code_challenge": challenge, "code_challenge_method": "S256", "user_id": signed_in.user_id,
                "membership_id": signed_in.membership_id, "amr": list(signed_in.amr), "expires_at": now + CODE_TTL,
            })
            # Codes live a minute; an hour later nobody needs to see one again, used or not.
            await self._repo.prune_codes(conn, now - timedelta(hours=1))

    async def take_code(self, code: str, client_id: str) -> IssuedCode | None:
        """The code, once; a second presentation also revokes the session the first one opened (RFC 6749 §4.1.2)."""
        async with self._db.anonymous() as conn:
            row = await self._repo.take_code(conn, _digest(code))
            if row is not None and row["used_before"] is not None and row["session_id"] is not None:
                await self._repo.revoke_session(conn, row["session_id"], "authorization code replayed")
        if row is not None and row["used_before"] is not None and row["session_id"] is not None:
            self._sessions.principals.invalidate(row["session_id"])
        if row is None or row["used_before"] is not None or row["expires_at"] < datetime.now(UTC):
            return None
        if row["client_id"] != client_id:
            return None
        return IssuedCode(
            code_hash=_digest(code), client_id=row["client_id"], redirect_uri=row["redirect_uri"],
            code_challenge=row["code_challenge"], code_challenge_method=row["code_challenge_method"],
            signed_in=SignedIn(user_id=row["user_id"], membership_id=row["membership_id"], amr=tuple(row["amr"])),
        )

    async def open_session(
        self, signed_in: SignedIn, code: IssuedCode, proof: Proof | None, http: HttpRequest
    ) -> TokenPair:
        """The session of a redeemed code; with a DPoP proof, bound to its key ("pop" joins the methods)."""
        amr = [*signed_in.amr, *(["pop"] if proof is not None else [])]
        pair = await self._sessions.open_session_for(
            signed_in.user_id, signed_in.membership_id, amr=amr, client_ip=http.client_ip,
            user_agent=http.user_agent, key_thumbprint=None if proof is None else proof.thumbprint,
            client_id=code.client_id,
        )
        async with self._db.anonymous() as conn:
            await self._repo.note_code_session(conn, code.code_hash, pair.session_id)
        return pair

    async def refresh_binding(self, refresh_token: str) -> RefreshCredential | None:
        async with self._db.anonymous(readonly=True) as conn:
            row = await self._repo.refresh_binding(conn, _digest(refresh_token))
        if row is None:
            return None
        return RefreshCredential(
            token=refresh_token, session_id=row["session_id"], client_id=row["client_id"],
            key_thumbprint=row["dpop_jkt"],
        )

    async def refresh(self, refresh_token: str, key_thumbprint: str | None) -> TokenPair:
        return await self._sessions.refresh(refresh_token, key_thumbprint=key_thumbprint)

    # --- requests to the API with a DPoP-bound access token
    def check_resource_proof(
        self,
        principal: Principal,
        *,
        scheme: str,
        access_token: str,
        proof: str | None,
        method: str,
        path: str,
        received_url: str,
    ) -> None:
        """A token bound to a key is accepted only as `DPoP <token>` with a proof of that key made for this
        request and this token; a bearer token is not accepted under the DPoP scheme."""
        bound = principal.key_thumbprint
        if scheme == "dpop" and bound is None:
            raise AuthenticationFailed("this access token is not bound to a key: send it as a Bearer token")
        if bound is None:
            return
        if scheme != "dpop":
            raise AuthenticationFailed("this access token is bound to a device key: send it with a DPoP proof")
        try:
            checked = self.proofs.verify(
                proof, method=method, urls=(self.public_url + path, received_url), access_token=access_token
            )
        except InvalidProof as exc:
            raise AuthenticationFailed(exc.detail) from exc
        if checked.thumbprint != bound:
            raise AuthenticationFailed("the DPoP proof is signed by another key than the token's")
