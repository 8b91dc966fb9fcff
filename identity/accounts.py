"""Accounts: users and their memberships (roles in tenants), habilitations, and the holder's own credentials."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import msgspec

from core.crypto import SecretBox
from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import new_id
from core.settings import AuthSettings
from core.tenancy import HABILITATED_ROLES, Principal, Role, require_role
from identity import totp
from identity.administration import USER_ADMINS, USER_READERS, administered_user, check_grant
from identity.model import (
    Account,
    MembershipInput,
    PasswordChange,
    SecondFactorReplacement,
    TotpEnrolment,
    User,
    UserUpdate,
)
from identity.passwords import hash_password
from identity.proof import HolderProof
from identity.repository import IdentityRepository
from identity.sessions import PrincipalCache
from identity.throttle import SigninThrottle
from journal.service import JournalService


class AccountService:
    """Users as seen through the memberships in the caller's scope. A change that affects sessions clears the
    resolved principals of this process (`principals`, shared with the session service). Accounts are created by
    invitation (identity.enrolment); no administrator ever chooses or receives a password or a second factor."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        settings: AuthSettings,
        principals: PrincipalCache,
        journal: JournalService | None = None,
        repository: IdentityRepository | None = None,
        throttle: SigninThrottle | None = None,
    ) -> None:
        self._db = db
        self._secrets = secrets
        self._settings = settings
        self._principals = principals
        self._journal = journal or JournalService()
        self._repo = repository or IdentityRepository()
        self._throttle = throttle or SigninThrottle(db, settings, self._repo)
        self._proof = HolderProof(db, secrets, self._throttle, self._repo)

    async def me(self, principal: Principal) -> User:
        # One's own account and memberships, even when the home tenant lies outside the working scope.
        async with self._db.transaction(principal, readonly=True, with_home_tenant=True) as conn:
            user = await self._repo.visible_user(conn, principal.user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def list_users(self, principal: Principal, after: uuid.UUID | None, limit: int) -> list[User]:
        require_role(principal, USER_READERS, "list users")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.users(conn, after, limit)

    async def get_user(self, principal: Principal, user_id: uuid.UUID) -> User:
        require_role(principal, USER_READERS, "read users")
        async with self._db.transaction(principal, readonly=True) as conn:
            user = await self._repo.visible_user(conn, user_id)
        if user is None:
            raise NotFound("no such user")
        return user

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
            await check_grant(self._repo, conn, principal, data.tenant_id, role, data.force_id)
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
            await self._journal.note(
                conn, principal, "membership.grant", ("membership", membership_id), tenant_id=data.tenant_id,
                user_id=str(user_id), role=role.value,
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
            await self._journal.note(
                conn, principal, "membership.withdraw", ("membership", membership_id), tenant_id=removed["tenant_id"],
                user_id=str(removed["user_id"]),
            )
        self._principals.clear()

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
            user = await administered_user(self._repo, conn, principal, user_id)
            if values:
                await self._repo.update_user(conn, user_id, values)
                if values.get("status") == "disabled":
                    await self._repo.revoke_user_sessions(conn, user_id, "account disabled")
                await self._journal.note(
                    conn, principal, "user.update", ("user", user_id), tenant_id=user.memberships[0].tenant_id,
                    changed=sorted(values),
                )
            updated = await self._repo.visible_user(conn, user_id)
        self._principals.clear()
        assert updated is not None
        return updated

    async def unlock_user(self, principal: Principal, user_id: uuid.UUID) -> None:
        """Lift the locks of both failure counters (password and second factor)."""
        require_role(principal, USER_ADMINS, "unlock accounts")
        async with self._db.transaction(principal) as conn:
            user = await administered_user(self._repo, conn, principal, user_id)
            await self._repo.record_success(conn, user_id)
            await self._journal.note(
                conn, principal, "user.unlock", ("user", user_id), tenant_id=user.memberships[0].tenant_id
            )

    # --- the holder's own credentials
    async def change_password(self, principal: Principal, data: PasswordChange, *, client_ip: str) -> None:
        """The holder replaces their password, proving the current one and, when the account has a second factor, a
        current code (a stolen access token alone changes nothing). Their other sessions end."""
        await self._proof_of_holder(principal, data.current_password, data.code, client_ip=client_ip)
        password_hash = await asyncio.to_thread(hash_password, data.new_password)
        async with self._db.transaction(principal, with_home_tenant=True) as conn:
            await self._repo.update_user(conn, principal.user_id, {"password_hash": password_hash})
            await self._repo.record_success(conn, principal.user_id)
            await self._repo.revoke_other_sessions(conn, principal.user_id, principal.session_id, "password changed")
            await self._journal.note(
                conn, principal, "user.password_change", ("user", principal.user_id),
                tenant_id=principal.home_tenant_id,
            )
        self._principals.clear()

    async def replace_second_factor(
        self, principal: Principal, data: SecondFactorReplacement, *, client_ip: str
    ) -> TotpEnrolment:
        """The holder replaces their second factor, proving the current password and a current code of the factor
        being replaced (when there is one); the new seed is shown once, to them. Their other sessions end."""
        account = await self._proof_of_holder(principal, data.current_password, data.code, client_ip=client_ip)
        seed = totp.new_seed()
        async with self._db.transaction(principal, with_home_tenant=True) as conn:
            await self._repo.set_totp(conn, principal.user_id, totp.seal(self._secrets, seed, principal.user_id))
            await self._repo.record_success(conn, principal.user_id)
            await self._repo.revoke_other_sessions(
                conn, principal.user_id, principal.session_id, "second factor replaced"
            )
            await self._journal.note(
                conn, principal, "user.totp_replace", ("user", principal.user_id), tenant_id=principal.home_tenant_id,
                had_second_factor=account.totp_secret_sealed is not None,
            )
        self._principals.clear()
        return totp.enrolment(seed, email=account.email, issuer=self._settings.totp_issuer)

    async def _proof_of_holder(
        self, principal: Principal, password: str, code: str | None, *, client_ip: str
    ) -> Account:
        await self._throttle.admit(client_ip)
        async with self._db.anonymous_statement() as conn:
            account = await self._repo.account(conn, principal.user_id)
        if account is None:
            raise NotFound("no such user")
        await self._proof.check(account, password, code)
        return account
