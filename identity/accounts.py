"""Accounts: users and their memberships (roles in tenants), habilitations, second-factor enrolment."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import msgspec

from core.crypto import SecretBox
from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from core.ids import new_id
from core.settings import AuthSettings
from core.tenancy import (
    DEPARTMENT_TENANT_ROLES,
    HABILITATED_ROLES,
    SECOND_FACTOR_ROLES,
    Principal,
    Role,
    require_role,
)
from identity import totp
from identity.model import MembershipInput, TotpEnrolment, User, UserCreate, UserCreated, UserUpdate
from identity.passwords import hash_password
from identity.repository import IdentityRepository
from identity.sessions import PrincipalCache
from journal.service import JournalService

USER_ADMINS = frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN})
USER_READERS = USER_ADMINS | {Role.AUDITOR, Role.SUPERVISOR}
# Roles a tenant admin may grant inside their own tenant.
TENANT_GRANTABLE = frozenset({Role.TENANT_ADMIN, Role.OFFICER})


class AccountService:
    """Users as seen through the memberships in the caller's scope. A change that affects sessions clears the
    resolved principals of this process (`principals`, shared with the session service)."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        settings: AuthSettings,
        principals: PrincipalCache,
        journal: JournalService | None = None,
        repository: IdentityRepository | None = None,
    ) -> None:
        self._db = db
        self._secrets = secrets
        self._settings = settings
        self._principals = principals
        self._journal = journal or JournalService()
        self._repo = repository or IdentityRepository()

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

    async def _check_grant(
        self,
        principal: Principal,
        conn: asyncpg.Connection,
        tenant_id: uuid.UUID,
        role: Role,
        force_id: uuid.UUID | None,
    ) -> None:
        kind = await self._repo.tenant_kind(conn, tenant_id)
        if kind is None or not principal.scope.includes(tenant_id):
            raise InvalidInput("membership.tenant_id names no tenant of yours", field="membership.tenant_id")
        if principal.role is Role.TENANT_ADMIN and role not in TENANT_GRANTABLE:
            raise PermissionDenied(f"a tenant admin may not grant the {role.value} role")
        if role in DEPARTMENT_TENANT_ROLES and kind != "department":
            raise InvalidInput(f"the {role.value} role is held in the department's own tenant", field="membership.role")
        if (role is Role.OFFICER) != (force_id is not None):
            raise InvalidInput("an officer (and only an officer) belongs to a force", field="membership.force_id")
        if force_id is not None:
            force = await self._repo.force_of_grant(conn, force_id)
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
        seed = totp.new_seed() if role in SECOND_FACTOR_ROLES else None
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
                        "totp_secret_sealed": None if seed is None else totp.seal(self._secrets, seed),
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
            await self._journal.note(
                conn, principal, "user.create", ("user", user_id), tenant_id=data.membership.tenant_id, role=role.value
            )
            user = await self._repo.visible_user(conn, user_id)
        assert user is not None
        enrolment = (
            None if seed is None else totp.enrolment(seed, email=data.email, issuer=self._settings.totp_issuer)
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
            user = await self._repo.visible_user(conn, user_id)
            if user is None:
                raise NotFound("no such user")
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
        require_role(principal, USER_ADMINS, "unlock accounts")
        async with self._db.transaction(principal) as conn:
            user = await self._repo.visible_user(conn, user_id)
            if user is None:
                raise NotFound("no such user")
            await self._repo.record_success(conn, user_id)
            await self._journal.note(
                conn, principal, "user.unlock", ("user", user_id), tenant_id=user.memberships[0].tenant_id
            )

    async def enrol_totp(self, principal: Principal) -> TotpEnrolment:
        """Replace the caller's second factor; the new seed is shown once."""
        seed = totp.new_seed()
        async with self._db.transaction(principal) as conn:
            await self._repo.set_totp(conn, principal.user_id, totp.seal(self._secrets, seed))
            await self._journal.note(
                conn, principal, "user.totp_enrol", ("user", principal.user_id), tenant_id=principal.home_tenant_id
            )
        email = (await self.me(principal)).email
        return totp.enrolment(seed, email=email, issuer=self._settings.totp_issuer)
