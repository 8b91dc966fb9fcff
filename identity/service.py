"""Sign-in, second factor, token refresh with reuse detection, revocation, principal resolution, accounts."""

from __future__ import annotations

import asyncio
import hashlib
import secrets as pysecrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pyotp

from core.crypto import SecretBox
from core.db import Database, tenant_transaction
from core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from core.ids import new_id
from core.settings import AuthSettings
from core.tenancy import (
    DEPARTMENT_TENANT_ROLES,
    DEPARTMENT_WIDE_ROLES,
    HABILITATED_ROLES,
    SECOND_FACTOR_ROLES,
    Principal,
    Role,
    Scope,
    require_role,
)
from identity import rules
from identity.keys import KeyRing
from identity.model import (
    Account,
    LoginRequest,
    MembershipInput,
    SecondFactorChallenge,
    TokenPair,
    TotpEnrolment,
    User,
    UserCreate,
    UserCreated,
    UserUpdate,
)
from identity.passwords import hash_password, verify_password
from identity.repository import IdentityRepository
from journal.service import JournalService

TOTP_PURPOSE = "totp-seed"
CHALLENGE_TTL = timedelta(minutes=5)
USER_ADMINS = frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN})
# Roles a tenant admin may grant inside their own tenant.
TENANT_GRANTABLE = frozenset({Role.TENANT_ADMIN, Role.OFFICER})


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


class IdentityService:
    """Everything about who a caller is. Login lookups use the department pool: they precede any scope."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        settings: AuthSettings,
        keys: KeyRing,
        journal: JournalService | None = None,
        repository: IdentityRepository | None = None,
    ) -> None:
        self._db = db
        self._secrets = secrets
        self._settings = settings
        self._keys = keys
        self._journal = journal or JournalService()
        self._repo = repository or IdentityRepository()
        self.principals = PrincipalCache()

    # --- sign-in
    async def login(
        self, request: LoginRequest, *, client_ip: str, user_agent: str
    ) -> TokenPair | SecondFactorChallenge:
        account, membership = await self.authenticate(request, client_ip=client_ip)
        if Role(membership["role"]) in SECOND_FACTOR_ROLES:
            if account.totp_secret_sealed is None:
                raise PermissionDenied(
                    "this role requires a second factor and none is enrolled: ask an administrator to enrol one"
                )
            return await self._open_challenge(account, membership["id"])
        return await self._open_session(account, membership, amr=["pwd"], client_ip=client_ip, user_agent=user_agent)

    async def authenticate(self, request: LoginRequest, *, client_ip: str) -> tuple[Account, asyncpg.Record]:
        """Check email and password (with the same throttling as every sign-in) and pick the membership; opens no
        session. Used by /auth/login and by the authorization-code endpoint."""
        await self._throttle_ip(client_ip)
        async with self._db.unscoped() as conn:
            account = await self._repo.account_by_email(conn, request.email)
            if account is not None:
                self._check_account_throttle(account)
        # argon2 is CPU-bound: off the event loop.
        ok = await asyncio.to_thread(verify_password, account.password_hash if account else None, request.password)
        if account is None or not ok:
            if account is not None:
                async with self._db.unscoped() as conn:
                    await self._repo.record_failure(conn, account.id)
            raise AuthenticationFailed("invalid email or password")
        if account.status != "active":
            raise AuthenticationFailed("this account is disabled")
        membership = await self._pick_membership(account, request.membership_id)
        role = Role(membership["role"])
        self._check_habilitation(role, account)
        async with self._db.unscoped() as conn:
            await self._repo.record_success(conn, account.id)
        return account, membership

    async def open_session_for(
        self, user_id: uuid.UUID, membership_id: uuid.UUID, *, amr: list[str], client_ip: str, user_agent: str
    ) -> TokenPair:
        """A session for an account authenticated earlier (an authorization code being redeemed)."""
        async with self._db.unscoped() as conn:
            account = await self._repo.account(conn, user_id)
        if account is None or account.status != "active":
            raise AuthenticationFailed("this account is disabled")
        membership = await self._membership(membership_id)
        if membership["user_id"] != user_id:
            raise AuthenticationFailed("this role was withdrawn")
        self._check_habilitation(Role(membership["role"]), account)
        return await self._open_session(account, membership, amr=amr, client_ip=client_ip, user_agent=user_agent)

    async def login_second_factor(self, challenge: str, code: str, *, client_ip: str, user_agent: str) -> TokenPair:
        await self._throttle_ip(client_ip)
        async with self._db.unscoped() as conn:
            row = await self._repo.take_challenge(conn, _digest(challenge))
            if row is None or row["used_at"] is not None or row["expires_at"] < _now():
                raise AuthenticationFailed("unknown or expired sign-in challenge")
            account = await self._repo.account(conn, row["user_id"], lock=True)
            assert account is not None
            self._check_account_throttle(account)
            step = self._totp_step(account, code)
            if step is None or not await self._repo.use_totp_step(conn, account.id, step):
                await self._repo.record_failure(conn, account.id)
                raise AuthenticationFailed("invalid second-factor code")
            await self._repo.close_challenge(conn, row["id"])
            await self._repo.record_success(conn, account.id)
        membership = await self._membership(row["membership_id"])
        return await self._open_session(
            account, membership, amr=["pwd", "otp"], client_ip=client_ip, user_agent=user_agent
        )

    def _totp_step(self, account: Account, code: str) -> int | None:
        """The matching time step (±1 for clock drift), or None."""
        if account.totp_secret_sealed is None:
            return None
        secret = self._secrets.open(account.totp_secret_sealed, purpose=TOTP_PURPOSE).decode()
        totp = pyotp.TOTP(secret)
        now = int(time.time())
        for drift in (0, -1, 1):
            at = now + drift * totp.interval
            if pysecrets.compare_digest(totp.at(at), code):
                return at // totp.interval
        return None

    async def _open_challenge(self, account: Account, membership_id: uuid.UUID) -> SecondFactorChallenge:
        token = pysecrets.token_urlsafe(32)
        async with self._db.unscoped() as conn:
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
        now = _now()
        window = now.replace(second=0, microsecond=0)
        async with self._db.unscoped() as conn:
            attempts = await self._repo.count_ip_attempt(conn, client_ip, window)
            if attempts == 1:
                await self._repo.prune_ip_attempts(conn, window - timedelta(minutes=10))
        if attempts > self._settings.login_rate_per_ip_per_minute:
            raise RateLimited("too many sign-in attempts from this address", retry_after_s=60 - now.second)

    def _check_account_throttle(self, account: Account) -> None:
        if account.failed_attempts >= self._settings.max_consecutive_failures:
            raise RateLimited(
                "this account is locked after too many failures: an administrator must unlock it", retry_after_s=3600
            )
        wait = rules.retry_after(
            account.failed_attempts,
            account.last_failed_at,
            _now(),
            free_attempts=self._settings.max_failures_before_delay,
        )
        if wait:
            raise RateLimited("too many failed attempts on this account; retry later", retry_after_s=wait)

    def _check_habilitation(self, role: Role, account: Account) -> None:
        if role in HABILITATED_ROLES and not rules.habilitation_valid(account.habilitation_expires_on, _now().date()):
            raise PermissionDenied(
                "no valid habilitation (agrément) on file: access to the supervision centre is "
                "refused until it is renewed"
            )

    async def _pick_membership(self, account: Account, membership_id: uuid.UUID | None) -> asyncpg.Record:
        async with self._db.cross_tenant() as conn:
            memberships = await self._repo.memberships_of(conn, account.id)
        if not memberships:
            raise PermissionDenied("this account has no role anywhere")
        if membership_id is None:
            return memberships[0]
        for membership in memberships:
            if membership["id"] == membership_id:
                return membership
        raise InvalidInput("membership_id is not one of this account's memberships", field="membership_id")

    async def _membership(self, membership_id: uuid.UUID) -> asyncpg.Record:
        async with self._db.cross_tenant() as conn:
            membership = await self._repo.membership(conn, membership_id)
        if membership is None:
            raise AuthenticationFailed("this role was withdrawn")
        return membership

    async def _open_session(
        self, account: Account, membership: asyncpg.Record, *, amr: list[str], client_ip: str, user_agent: str
    ) -> TokenPair:
        session_id = new_id()
        async with self._db.unscoped() as conn:
            await self._repo.insert_session(
                conn,
                {
                    "id": session_id,
                    "user_id": account.id,
                    "membership_id": membership["id"],
                    "amr": amr,
                    "expires_at": _now() + timedelta(seconds=self._settings.refresh_ttl_s),
                    "client_ip": client_ip,
                    "user_agent": user_agent[:500],
                },
            )
            pair = await self._issue(conn, account.id, session_id, membership)
        principal = await self.resolve(pair.access_token)
        # The sign-in belongs to the account's home tenant, which an officer's scope may not include.
        async with tenant_transaction(self._db.app_pool, [principal.home_tenant_id]) as conn:
            await self._journal.record(
                conn,
                tenant_id=principal.home_tenant_id,
                actor=principal,
                action="session.open",
                target_type="session",
                target_id=session_id,
                details={"amr": amr, "ip": client_ip},
            )
        return pair

    async def _issue(
        self, conn: asyncpg.Connection, user_id: uuid.UUID, session_id: uuid.UUID, membership: asyncpg.Record
    ) -> TokenPair:
        await self._keys.load(conn)
        now = int(time.time())
        access = self._keys.sign(
            {
                "iss": self._settings.issuer,
                "aud": self._settings.audience,
                "sub": str(user_id),
                "sid": str(session_id),
                "role": membership["role"],
                "tid": str(membership["tenant_id"]),
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
            role=membership["role"],
            tenant_id=membership["tenant_id"],
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: each refresh token works once. A second use means it leaked: the whole session is revoked."""
        async with self._db.unscoped() as conn:
            row = await self._repo.take_refresh(conn, _digest(refresh_token))
            if row is None:
                raise AuthenticationFailed("unknown refresh token")
            session = await self._repo.session(conn, row["session_id"])
            assert session is not None
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
        async with self._db.unscoped() as conn:
            return await self._issue(conn, session["user_id"], session["id"], membership)

    async def logout(self, principal: Principal) -> None:
        async with self._db.unscoped() as conn:
            await self._repo.revoke_session(conn, principal.session_id, "logout")
        self.principals.invalidate(principal.session_id)

    async def revoke_sessions_of(self, principal: Principal, user_id: uuid.UUID) -> None:
        require_role(principal, USER_ADMINS, "revoke sessions")
        async with self._db.transaction(principal) as conn:
            user = await self._repo.visible_user(conn, user_id)
            if user is None:
                raise NotFound("no such user")
            await self._repo.revoke_user_sessions(conn, user_id, f"revoked by {principal.user_id}")
            await self._journal.record(
                conn,
                tenant_id=user.memberships[0].tenant_id,
                actor=principal,
                action="session.revoke_all",
                target_type="user",
                target_id=user_id,
            )
        self.principals.clear()

    # --- per-request resolution
    async def resolve(self, token: str) -> Principal:
        if self._keys.stale:
            async with self._db.cross_tenant() as conn:
                await self._keys.load(conn)
        claims = self._keys.verify(token, issuer=self._settings.issuer, audience=self._settings.audience)
        try:
            session_id = uuid.UUID(claims["sid"])
        except (ValueError, TypeError) as exc:
            raise AuthenticationFailed("invalid token") from exc
        cached = self.principals.get(session_id)
        if cached is not None:
            return cached
        principal = await self._load_principal(session_id)
        self.principals.put(principal)
        return principal

    async def _load_principal(self, session_id: uuid.UUID) -> Principal:
        async with self._db.cross_tenant() as conn:
            session = await self._repo.session(conn, session_id)
            if session is None or session["revoked_at"] is not None or session["expires_at"] < _now():
                raise AuthenticationFailed("session ended")
            if session["status"] != "active":
                raise AuthenticationFailed("this account is disabled")
            membership = await self._repo.membership(conn, session["membership_id"])
            if membership is None:
                raise AuthenticationFailed("this role was withdrawn")
            role = Role(membership["role"])
            if role in HABILITATED_ROLES and not rules.habilitation_valid(
                session["habilitation_expires_on"], _now().date()
            ):
                raise AuthenticationFailed("habilitation expired")
            department_id = membership["department_id"]
            if role is Role.FINANCE:
                # Finance bills every member tenant, supervised or not; it is refused every image by role.
                tenant_ids = await self._repo.department_tenants(conn, department_id)
                scope = Scope(frozenset(tenant_ids), department_id=department_id)
            elif role in DEPARTMENT_WIDE_ROLES:
                tenant_ids = await self._repo.supervised_tenants(conn, department_id)
                scope = Scope(frozenset(tenant_ids), department_id=department_id)
            elif role is Role.OFFICER:
                scope = Scope(frozenset(await self._repo.force_tenants(conn, membership["force_id"])))
            else:
                scope = Scope(frozenset({membership["tenant_id"]}))
        return Principal(
            user_id=session["user_id"],
            session_id=session_id,
            role=role,
            home_tenant_id=membership["tenant_id"],
            department_id=department_id,
            scope=scope,
            force_id=membership["force_id"],
            display_name=session["display_name"],
        )

    def jwks(self) -> dict[str, Any]:
        return self._keys.jwks()

    async def load_keys(self) -> None:
        async with self._db.cross_tenant() as conn:
            await self._keys.load(conn, force=True)

    # --- accounts
    async def me(self, principal: Principal) -> User:
        # One's own account and memberships, even when the home tenant lies outside the working scope.
        async with tenant_transaction(
            self._db.app_pool, principal.scope.tenant_ids | {principal.home_tenant_id}, readonly=True
        ) as conn:
            user = await self._repo.visible_user(conn, principal.user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def list_users(self, principal: Principal, after: uuid.UUID | None, limit: int) -> list[User]:
        require_role(principal, USER_ADMINS | {Role.AUDITOR, Role.SUPERVISOR}, "list users")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.users(conn, after, limit)

    async def get_user(self, principal: Principal, user_id: uuid.UUID) -> User:
        require_role(principal, USER_ADMINS | {Role.AUDITOR, Role.SUPERVISOR}, "read users")
        async with self._db.transaction(principal, readonly=True) as conn:
            user = await self._repo.visible_user(conn, user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def _check_grant(
        self,
        principal: Principal,
        conn: asyncpg.Connection,
        tenant_id: uuid.UUID,
        role: Role,
        force_id: uuid.UUID | None,
    ) -> None:
        tenant = await conn.fetchrow("SELECT kind FROM tenants WHERE id = $1", tenant_id)
        if tenant is None or not principal.scope.includes(tenant_id):
            raise InvalidInput("membership.tenant_id names no tenant of yours", field="membership.tenant_id")
        if principal.role is Role.TENANT_ADMIN and role not in TENANT_GRANTABLE:
            raise PermissionDenied(f"a tenant admin may not grant the {role.value} role")
        if role in DEPARTMENT_TENANT_ROLES and tenant["kind"] != "department":
            raise InvalidInput(f"the {role.value} role is held in the department's own tenant", field="membership.role")
        if (role is Role.OFFICER) != (force_id is not None):
            raise InvalidInput("an officer (and only an officer) belongs to a force", field="membership.force_id")
        if force_id is not None:
            force = await conn.fetchrow("SELECT kind, tenant_id FROM forces WHERE id = $1", force_id)
            if force is None:
                raise InvalidInput("membership.force_id names no force of yours", field="membership.force_id")
            if force["kind"] == "police_municipale" and force["tenant_id"] != tenant_id:
                raise InvalidInput(
                    "a municipal police officer belongs to their commune's tenant", field="membership.tenant_id"
                )

    async def create_user(self, principal: Principal, data: UserCreate) -> UserCreated:
        require_role(principal, USER_ADMINS, "create users")
        role = Role(data.membership.role)
        if role in HABILITATED_ROLES and data.habilitation is None:
            raise InvalidInput(f"a {role.value} needs an habilitation (agrément)", field="habilitation")
        password_hash = None if data.password is None else await asyncio.to_thread(hash_password, data.password)
        secret = pyotp.random_base32() if role in SECOND_FACTOR_ROLES else None
        user_id = new_id()
        hab = data.habilitation
        async with self._db.transaction(principal) as conn:
            await self._check_grant(principal, conn, data.membership.tenant_id, role, data.membership.force_id)
            try:
                await self._repo.insert_user(
                    conn,
                    {
                        "id": user_id,
                        "department_id": principal.department_id,
                        "email": data.email,
                        "display_name": data.display_name,
                        "password_hash": password_hash,
                        "totp_secret_sealed": None
                        if secret is None
                        else self._secrets.seal(secret.encode(), purpose=TOTP_PURPOSE),
                        "agrement_number": hab.agrement_number if hab else None,
                        "enquiry_date": hab.enquiry_date if hab else None,
                        "habilitation_expires_on": hab.expires_on if hab else None,
                        "training_date": hab.training_date if hab else None,
                    },
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict("an account with this email already exists") from exc
            await self._repo.insert_membership(
                conn,
                {
                    "id": new_id(),
                    "tenant_id": data.membership.tenant_id,
                    "user_id": user_id,
                    "role": role.value,
                    "force_id": data.membership.force_id,
                },
            )
            await self._journal.record(
                conn,
                tenant_id=data.membership.tenant_id,
                actor=principal,
                action="user.create",
                target_type="user",
                target_id=user_id,
                details={"role": role.value},
            )
            user = await self._repo.visible_user(conn, user_id)
        assert user is not None
        enrolment = (
            None
            if secret is None
            else TotpEnrolment(
                secret=secret,
                provisioning_uri=pyotp.TOTP(secret).provisioning_uri(
                    name=data.email, issuer_name=self._settings.totp_issuer
                ),
            )
        )
        return UserCreated(user=user, totp_enrolment=enrolment)

    async def add_membership(self, principal: Principal, user_id: uuid.UUID, data: MembershipInput) -> User:
        """Grant one more role to an account already visible to the caller."""
        require_role(principal, USER_ADMINS, "grant roles")
        role = Role(data.role)
        async with self._db.transaction(principal) as conn:
            user = await self._repo.visible_user(conn, user_id)
            if user is None:
                raise NotFound("no such user")
            if role in HABILITATED_ROLES and user.habilitation.expires_on is None:
                raise InvalidInput(f"a {role.value} needs an habilitation (agrément) first", field="role")
            await self._check_grant(principal, conn, data.tenant_id, role, data.force_id)
            membership_id = new_id()
            try:
                await self._repo.insert_membership(
                    conn,
                    {
                        "id": membership_id,
                        "tenant_id": data.tenant_id,
                        "user_id": user_id,
                        "role": role.value,
                        "force_id": data.force_id,
                    },
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict("the account already holds this role in this tenant") from exc
            await self._journal.record(
                conn,
                tenant_id=data.tenant_id,
                actor=principal,
                action="membership.grant",
                target_type="membership",
                target_id=membership_id,
                details={"user_id": str(user_id), "role": role.value},
            )
            updated = await self._repo.visible_user(conn, user_id)
        assert updated is not None
        return updated

    async def remove_membership(self, principal: Principal, membership_id: uuid.UUID) -> None:
        """Withdraw a role; sessions opened through it stop working at once in this process."""
        require_role(principal, USER_ADMINS, "withdraw roles")
        async with self._db.transaction(principal) as conn:
            removed = await self._repo.delete_membership(conn, membership_id)
            if removed is None:
                raise NotFound("no such membership")
            await self._journal.record(
                conn,
                tenant_id=removed["tenant_id"],
                actor=principal,
                action="membership.withdraw",
                target_type="membership",
                target_id=membership_id,
                details={"user_id": str(removed["user_id"])},
            )
        self.principals.clear()

    async def update_user(self, principal: Principal, user_id: uuid.UUID, data: UserUpdate) -> User:
        require_role(principal, USER_ADMINS, "change users")
        values: dict[str, Any] = {}
        if data.display_name is not msgspec.UNSET:
            values["display_name"] = data.display_name
        if data.status is not msgspec.UNSET:
            values["status"] = data.status
        if data.habilitation is not msgspec.UNSET:
            hab = data.habilitation
            values.update(
                agrement_number=hab.agrement_number,
                enquiry_date=hab.enquiry_date,
                habilitation_expires_on=hab.expires_on,
                training_date=hab.training_date,
            )
        async with self._db.transaction(principal) as conn:
            user = await self._repo.visible_user(conn, user_id)
            if user is None:
                raise NotFound("no such user")
            if values:
                await self._repo.update_user(conn, user_id, values)
                if values.get("status") == "disabled":
                    await self._repo.revoke_user_sessions(conn, user_id, "account disabled")
                await self._journal.record(
                    conn,
                    tenant_id=user.memberships[0].tenant_id,
                    actor=principal,
                    action="user.update",
                    target_type="user",
                    target_id=user_id,
                    details={"changed": sorted(values)},
                )
            updated = await self._repo.visible_user(conn, user_id)
        self.principals.clear()
        assert updated is not None
        return updated

    async def unlock_user(self, principal: Principal, user_id: uuid.UUID) -> None:
        require_role(principal, USER_ADMINS, "unlock accounts")
        async with self._db.transaction(principal) as conn:
            user = await self._repo.visible_user(conn, user_id)
            if user is None:
                raise NotFound("no such user")
            await self._repo.record_success(conn, user_id)
            await self._journal.record(
                conn,
                tenant_id=user.memberships[0].tenant_id,
                actor=principal,
                action="user.unlock",
                target_type="user",
                target_id=user_id,
            )

    async def enrol_totp(self, principal: Principal) -> TotpEnrolment:
        """Replace the caller's second factor; the new seed is shown once."""
        secret = pyotp.random_base32()
        async with self._db.transaction(principal) as conn:
            await self._repo.set_totp(
                conn, principal.user_id, self._secrets.seal(secret.encode(), purpose=TOTP_PURPOSE)
            )
            await self._journal.record(
                conn,
                tenant_id=principal.home_tenant_id,
                actor=principal,
                action="user.totp_enrol",
                target_type="user",
                target_id=principal.user_id,
            )
        email = (await self.me(principal)).email
        return TotpEnrolment(
            secret=secret,
            provisioning_uri=pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=self._settings.totp_issuer),
        )

    async def open_federated_session(
        self, email: str, amr: list[str], *, client_ip: str, user_agent: str
    ) -> TokenPair | SecondFactorChallenge:
        """An external IdP vouched for `email`: only an existing local account may sign in (no provisioning)."""
        await self._throttle_ip(client_ip)
        async with self._db.unscoped() as conn:
            account = await self._repo.account_by_email(conn, email)
        if account is None or account.status != "active":
            raise AuthenticationFailed("no active account for this identity")
        membership = await self._pick_membership(account, None)
        role = Role(membership["role"])
        self._check_habilitation(role, account)
        if role in SECOND_FACTOR_ROLES and not {"mfa", "otp", "hwk"} & set(amr):
            if account.totp_secret_sealed is None:
                raise PermissionDenied("this role requires a second factor and none is enrolled")
            return await self._open_challenge(account, membership["id"])
        return await self._open_session(
            account, membership, amr=["fed", *amr], client_ip=client_ip, user_agent=user_agent
        )
