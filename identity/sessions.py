"""Sessions: sign-in (password, second factor, federated), token refresh with reuse detection, revocation, and the
resolution of an access token into its principal."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets as pysecrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from core.crypto import SecretBox
from core.db import Database
from core.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from core.ids import new_id
from core.settings import AuthSettings
from core.tenancy import HABILITATED_ROLES, SECOND_FACTOR_ROLES, Principal, Role, require_role
from identity import rules, totp
from identity.administration import administered_user
from identity.keys import KeyRing
from identity.model import (
    Account,
    LoginRequest,
    SecondFactorChallenge,
    SessionRecord,
    SigninMembership,
    TokenPair,
)
from identity.passwords import verify_password
from identity.repository import IdentityRepository
from identity.throttle import SigninThrottle
from journal.service import JournalService

CHALLENGE_TTL = timedelta(minutes=5)
SESSION_ADMINS = frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN})


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _now() -> datetime:
    return datetime.now(UTC)


class PrincipalCache:
    """Resolved principals by session, for a few seconds: revocation in this process is immediate
    (invalidate), in others it takes at most `ttl_s`."""

    def __init__(self, ttl_s: float = 5.0) -> None:
        self._ttl = ttl_s
        self._items: dict[uuid.UUID, tuple[float, Principal]] = {}

    def get(self, session_id: uuid.UUID) -> Principal | None:
        item = self._items.get(session_id)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, principal: Principal) -> None:
        if len(self._items) > 50_000:
            self._items.clear()
        self._items[principal.session_id] = (time.monotonic() + self._ttl, principal)

    def invalidate(self, session_id: uuid.UUID) -> None:
        self._items.pop(session_id, None)

    def clear(self) -> None:
        self._items.clear()


class SessionService:
    """Who a caller is. Lookups across tenants (an account's memberships, a session's scope) go through the sign-in
    functions on the runtime role: this service never needs the department role."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        settings: AuthSettings,
        keys: KeyRing,
        journal: JournalService | None = None,
        repository: IdentityRepository | None = None,
        principals: PrincipalCache | None = None,
        throttle: SigninThrottle | None = None,
    ) -> None:
        self._db = db
        self._secrets = secrets
        self._settings = settings
        self._keys = keys
        self._journal = journal or JournalService()
        self._repo = repository or IdentityRepository()
        self.principals = principals or PrincipalCache()
        # Shared with every other place that checks a credential (enrolment links, one's own password).
        self.throttle = throttle or SigninThrottle(db, settings, self._repo)

    # --- sign-in
    async def login(
        self, request: LoginRequest, *, client_ip: str, user_agent: str
    ) -> TokenPair | SecondFactorChallenge:
        account, membership = await self.authenticate(request, client_ip=client_ip)
        if Role(membership.role) in SECOND_FACTOR_ROLES:
            if account.totp_secret_sealed is None:
                raise PermissionDenied(
                    "this role requires a second factor and none is enrolled: ask an administrator to enrol one"
                )
            return await self._open_challenge(account, membership.id)
        return await self._open_session(account, membership, amr=["pwd"], client_ip=client_ip, user_agent=user_agent)

    async def authenticate(self, request: LoginRequest, *, client_ip: str) -> tuple[Account, SigninMembership]:
        """Check email and password (with the same throttling as every sign-in) and pick the membership; opens no
        session. Used by /auth/login and by the authorization-code endpoint. The failure counters start over only
        when the password is the last factor: for a role with a second factor, only that factor's success resets
        them (`verify_second_factor`), so a known password never buys more code guesses."""
        await self._throttle_ip(client_ip)
        async with self._db.anonymous() as conn:
            account = await self._repo.account_by_email(conn, request.email)
            if account is not None:
                self._check_account_throttle(account)
        # argon2 is CPU-bound: off the event loop.
        ok = await asyncio.to_thread(verify_password, account.password_hash if account else None, request.password)
        if account is None or not ok:
            async with self._db.anonymous() as conn:
                await self.throttle.password_failed(conn, None if account is None else account.id)
            raise AuthenticationFailed("invalid email or password")
        if account.status != "active":
            raise AuthenticationFailed("this account is disabled")
        membership = await self._pick_membership(account, request.membership_id)
        self._check_habilitation(Role(membership.role), account)
        if Role(membership.role) not in SECOND_FACTOR_ROLES:
            async with self._db.anonymous() as conn:
                await self.throttle.succeeded(conn, account.id)
        return account, membership

    async def open_session_for(
        self,
        user_id: uuid.UUID,
        membership_id: uuid.UUID,
        *,
        amr: list[str],
        client_ip: str,
        user_agent: str,
        key_thumbprint: str | None = None,
        client_id: str | None = None,
    ) -> TokenPair:
        """A session for an account authenticated earlier (an authorization code being redeemed by `client_id`);
        with `key_thumbprint`, its tokens are bound to that device key (DPoP, identity.dpop)."""
        async with self._db.anonymous() as conn:
            account = await self._repo.account(conn, user_id)
        if account is None or account.status != "active":
            raise AuthenticationFailed("this account is disabled")
        membership = await self._membership(membership_id)
        if membership.user_id != user_id:
            raise AuthenticationFailed("this role was withdrawn")
        self._check_habilitation(Role(membership.role), account)
        return await self._open_session(account, membership, amr=amr, client_ip=client_ip, user_agent=user_agent,
                                        key_thumbprint=key_thumbprint, client_id=client_id)

    async def login_second_factor(self, challenge: str, code: str, *, client_ip: str, user_agent: str) -> TokenPair:
        await self._throttle_ip(client_ip)
        account, membership_id = await self.verify_second_factor(challenge, code)
        membership = await self._membership(membership_id)
        return await self._open_session(
            account, membership, amr=["pwd", "otp"], client_ip=client_ip, user_agent=user_agent
        )

    async def verify_second_factor(self, challenge: str, code: str) -> tuple[Account, uuid.UUID]:
        """Check a code against a sign-in challenge, the last factor; opens no session. A miss counts against the
        account's second-factor budget (never reset by a password) and the challenge, burned after a few misses;
        success closes the challenge and resets both counters. Returns the account and the chosen membership's id."""
        failure = None
        async with self._db.anonymous() as conn:
            row = await self._repo.take_challenge(conn, _digest(challenge))
            if row is None or row["used_at"] is not None or row["expires_at"] < _now():
                raise AuthenticationFailed("unknown or expired sign-in challenge")
            account = await self._repo.account(conn, row["user_id"], lock=True)
            assert account is not None
            self._check_account_throttle(account)
            step = totp.matching_step(self._secrets, account.totp_secret_sealed, code, user_id=account.id)
            if step is None or not await self._repo.use_totp_step(conn, account.id, step):
                # Recorded in a transaction that commits: the refusal is raised once it has.
                await self.throttle.second_factor_failed(conn, account.id)
                burned = await self.throttle.challenge_missed(conn, row["id"])
                failure = "invalid second-factor code" + ("; sign in again" if burned else "")
            else:
                await self._repo.close_challenge(conn, row["id"])
                await self.throttle.succeeded(conn, account.id)
        if failure is not None:
            raise AuthenticationFailed(failure)
        return account, row["membership_id"]

    async def open_federated_session(
        self,
        user_id: uuid.UUID,
        amr: list[str],
        *,
        idp_second_factor_counts: bool,
        client_ip: str,
        user_agent: str,
    ) -> TokenPair | SecondFactorChallenge:
        """An external IdP vouched for an identity an administrator linked to this account (identity.federation):
        the account is refused when disabled, locked, or without the habilitation its role needs, as at a password
        sign-in; the IdP's own second factor (its `amr`) replaces ours only where the department trusts it."""
        await self._throttle_ip(client_ip)
        async with self._db.anonymous() as conn:
            account = await self._repo.account(conn, user_id)
        if account is None or account.status != "active":
            raise AuthenticationFailed("no active account for this identity")
        self._check_account_throttle(account)
        membership = await self._pick_membership(account, None)
        role = Role(membership.role)
        self._check_habilitation(role, account)
        if role in SECOND_FACTOR_ROLES and not (idp_second_factor_counts and {"mfa", "otp", "hwk"} & set(amr)):
            if account.totp_secret_sealed is None:
                raise PermissionDenied("this role requires a second factor and none is enrolled")
            return await self._open_challenge(account, membership.id)
        return await self._open_session(
            account, membership, amr=["fed", *amr], client_ip=client_ip, user_agent=user_agent
        )

    async def open_challenge(self, account: Account, membership_id: uuid.UUID) -> SecondFactorChallenge:
        """A second-factor challenge after a checked password (the apps' sign-in page, identity.authorization)."""
        return await self._open_challenge(account, membership_id)

    async def _open_challenge(self, account: Account, membership_id: uuid.UUID) -> SecondFactorChallenge:
        token = pysecrets.token_urlsafe(32)
        async with self._db.anonymous() as conn:
            await self._repo.insert_challenge(
                conn,
                {
                    "id": new_id(),
                    "user_id": account.id,
                    "membership_id": membership_id,
                    "token_hash": _digest(token),
                    "expires_at": _now() + CHALLENGE_TTL,
                },
            )
        return SecondFactorChallenge(challenge=token)

    async def _throttle_ip(self, client_ip: str) -> None:
        await self.throttle.admit(client_ip)

    def _check_account_throttle(self, account: Account) -> None:
        self.throttle.check_account(account)

    def _check_habilitation(self, role: Role, account: Account) -> None:
        if role in HABILITATED_ROLES and not rules.habilitation_valid(account.habilitation_expires_on, _now().date()):
            raise PermissionDenied(
                "no valid habilitation (agrément) on file: access to the supervision centre is "
                "refused until it is renewed"
            )

    async def _pick_membership(self, account: Account, membership_id: uuid.UUID | None) -> SigninMembership:
        async with self._db.anonymous_statement() as conn:
            memberships = await self._repo.memberships_of(conn, account.id)
        if not memberships:
            raise PermissionDenied("this account has no role anywhere")
        if membership_id is None:
            return memberships[0]
        for membership in memberships:
            if membership.id == membership_id:
                return membership
        raise InvalidInput("membership_id is not one of this account's memberships", field="membership_id")

    async def _membership(self, membership_id: uuid.UUID) -> SigninMembership:
        async with self._db.anonymous_statement() as conn:
            membership = await self._repo.membership(conn, membership_id)
        if membership is None:
            raise AuthenticationFailed("this role was withdrawn")
        return membership

    # --- sessions and tokens
    async def _open_session(
        self,
        account: Account,
        membership: SigninMembership,
        *,
        amr: list[str],
        client_ip: str,
        user_agent: str,
        key_thumbprint: str | None = None,
        client_id: str | None = None,
    ) -> TokenPair:
        session_id = new_id()
        async with self._db.anonymous() as conn:
            await self._repo.insert_session(
                conn,
                {
                    "id": session_id,
                    "user_id": account.id,
                    "membership_id": membership.id,
                    "amr": amr,
                    "expires_at": _now() + timedelta(seconds=self._settings.refresh_ttl_s),
                    "client_ip": client_ip,
                    "user_agent": user_agent[:500],
                    "dpop_jkt": key_thumbprint,
                    "client_id": client_id,
                },
            )
            pair = await self._issue(conn, account.id, session_id, membership, key_thumbprint)
        principal = await self.resolve(pair.access_token)
        # The sign-in belongs to the account's home tenant, which an officer's scope may not include.
        async with self._db.transaction(principal, with_home_tenant=True) as conn:
            await self._journal.note(
                conn, principal, "session.open", ("session", session_id), tenant_id=principal.home_tenant_id,
                amr=amr, ip=client_ip,
            )
        return pair

    async def _issue(
        self, conn: asyncpg.Connection, user_id: uuid.UUID, session_id: uuid.UUID, membership: SigninMembership,
        key_thumbprint: str | None = None,
    ) -> TokenPair:
        await self._keys.load(conn)
        now = int(time.time())
        # A session bound to a device key says so in its tokens (RFC 9449 §6.1): the API then asks for a proof.
        confirmation = {} if key_thumbprint is None else {"cnf": {"jkt": key_thumbprint}}
        access = self._keys.sign(
            {
                **confirmation,
                "iss": self._settings.issuer,
                "aud": self._settings.audience,
                "sub": str(user_id),
                "sid": str(session_id),
                "role": membership.role,
                "tid": str(membership.tenant_id),
                "iat": now,
                "nbf": now,
                "exp": now + self._settings.access_ttl_s,
                "jti": uuid.uuid4().hex,
            }
        )
        refresh = pysecrets.token_urlsafe(32)
        await self._repo.insert_refresh(
            conn, new_id(), session_id, _digest(refresh), _now() + timedelta(seconds=self._settings.refresh_ttl_s)
        )
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=self._settings.access_ttl_s,
            session_id=session_id,
            role=membership.role,
            tenant_id=membership.tenant_id,
            token_type="Bearer" if key_thumbprint is None else "DPoP",
        )

    async def refresh(self, refresh_token: str, *, key_thumbprint: str | None = None) -> TokenPair:
        """Rotate: each refresh token works once. A second use means it leaked: the whole session is revoked.
        A session bound to a device key refreshes only with a proof of that key (`key_thumbprint`, checked by the
        token endpoint): a copy of its refresh token without the key is refused before it is even used."""
        async with self._db.anonymous() as conn:
            row = await self._repo.take_refresh(conn, _digest(refresh_token))
            if row is None:
                raise AuthenticationFailed("unknown refresh token")
            session = await self._repo.session(conn, row["session_id"])
            assert session is not None
            if session["dpop_jkt"] != key_thumbprint:
                raise AuthenticationFailed("this refresh token is bound to another device key (or to none)")
            if row["used_at"] is not None:
                await self._repo.revoke_session(conn, row["session_id"], "refresh token reuse")
                self.principals.invalidate(row["session_id"])
                reused = True
            else:
                reused = False
                if session["revoked_at"] is not None or row["expires_at"] < _now() or session["status"] != "active":
                    raise AuthenticationFailed("session ended")
                await self._repo.mark_refresh_used(conn, row["id"])
        if reused:
            raise AuthenticationFailed("refresh token already used: the session is revoked")
        membership = await self._membership(session["membership_id"])
        async with self._db.anonymous() as conn:
            return await self._issue(conn, session["user_id"], session["id"], membership, session["dpop_jkt"])

    async def logout(self, principal: Principal) -> None:
        async with self._db.anonymous() as conn:
            await self._repo.revoke_session(conn, principal.session_id, "logout")
        self.principals.invalidate(principal.session_id)

    async def revoke_sessions_of(self, principal: Principal, user_id: uuid.UUID) -> None:
        require_role(principal, SESSION_ADMINS, "revoke sessions")
        async with self._db.transaction(principal) as conn:
            user = await administered_user(self._repo, conn, principal, user_id)
            await self._repo.revoke_user_sessions(conn, user_id, f"revoked by {principal.user_id}")
            await self._journal.note(
                conn, principal, "session.revoke_all", ("user", user_id), tenant_id=user.memberships[0].tenant_id
            )
        self.principals.clear()

    # --- per-request resolution
    async def resolve(self, token: str) -> Principal:
        if self._keys.stale:
            async with self._db.anonymous_statement() as conn:
                await self._keys.load(conn)
        claims = self._keys.verify(token, issuer=self._settings.issuer, audience=self._settings.audience)
        try:
            session_id = uuid.UUID(claims["sid"])
        except (ValueError, TypeError) as exc:
            raise AuthenticationFailed("invalid token") from exc
        # Every token of a session carries the same confirmation (the session's key, or none).
        cnf = claims.get("cnf")
        key_thumbprint = cnf.get("jkt") if isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str) else None
        cached = self.principals.get(session_id)
        if cached is not None and cached.key_thumbprint == key_thumbprint:
            return cached
        async with self._db.anonymous_statement() as conn:
            record = await self._repo.session_record(conn, session_id)
        principal = dataclasses.replace(self._principal(session_id, record), key_thumbprint=key_thumbprint)
        self.principals.put(principal)
        return principal

    @staticmethod
    def _principal(session_id: uuid.UUID, record: SessionRecord | None) -> Principal:
        if record is None or record.revoked_at is not None or record.expires_at < _now():
            raise AuthenticationFailed("session ended")
        if record.status != "active":
            raise AuthenticationFailed("this account is disabled")
        membership = record.membership
        if membership is None:
            raise AuthenticationFailed("this role was withdrawn")
        role = Role(membership.role)
        if role in HABILITATED_ROLES and not rules.habilitation_valid(record.habilitation_expires_on, _now().date()):
            raise AuthenticationFailed("habilitation expired")
        return Principal(
            user_id=record.user_id,
            session_id=session_id,
            role=role,
            home_tenant_id=membership.tenant_id,
            department_id=membership.department_id,
            scope=rules.scope_of(
                role,
                home_tenant_id=membership.tenant_id,
                department_id=membership.department_id,
                department_tenant_ids=record.department_tenant_ids,
                force_tenant_ids=record.force_tenant_ids,
                member_tenant_ids=record.member_tenant_ids,
            ),
            force_id=membership.force_id,
            display_name=record.display_name,
        )

    def jwks(self) -> dict[str, Any]:
        return self._keys.jwks()

    async def load_keys(self) -> None:
        async with self._db.anonymous_statement() as conn:
            await self._keys.load(conn, force=True)
