"""What an administrator may do to accounts: which roles they may grant where, and which accounts are wholly theirs
to change, unlock, log out or re-enrol."""

from __future__ import annotations

import uuid

import asyncpg

from core.errors import InvalidInput, NotFound, PermissionDenied
from core.tenancy import DEPARTMENT_TENANT_ROLES, Principal, Role
from identity import rules
from identity.model import User
from identity.repository import IdentityRepository

USER_ADMINS = frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN})
USER_READERS = USER_ADMINS | {Role.AUDITOR, Role.SUPERVISOR}
# Roles a tenant admin may grant inside their own tenant.
TENANT_GRANTABLE = frozenset({Role.TENANT_ADMIN, Role.OFFICER})


async def check_grant(
    repo: IdentityRepository,
    conn: asyncpg.Connection,
    principal: Principal,
    tenant_id: uuid.UUID,
    role: Role,
    force_id: uuid.UUID | None,
) -> None:
    """Whether the principal may grant `role` in `tenant_id` (and the force, for an officer); raises otherwise."""
    kind = await repo.tenant_kind(conn, tenant_id)
    if kind is None or not principal.scope.includes(tenant_id):
        raise InvalidInput("membership.tenant_id names no tenant of yours", field="membership.tenant_id")
    if principal.role is Role.TENANT_ADMIN and role not in TENANT_GRANTABLE:
        raise PermissionDenied(f"a tenant admin may not grant the {role.value} role")
    if role in DEPARTMENT_TENANT_ROLES and kind != "department":
        raise InvalidInput(f"the {role.value} role is held in the department's own tenant", field="membership.role")
    if (role is Role.OFFICER) != (force_id is not None):
        raise InvalidInput("an officer (and only an officer) belongs to a force", field="membership.force_id")
    if force_id is not None:
        force = await repo.force_of_grant(conn, force_id)
        if force is None:
            raise InvalidInput("membership.force_id names no force of yours", field="membership.force_id")
        if force["kind"] == "police_municipale" and force["tenant_id"] != tenant_id:
            raise InvalidInput(
                "a municipal police officer belongs to their commune's tenant", field="membership.tenant_id"
            )


async def administered_user(
    repo: IdentityRepository, conn: asyncpg.Connection, principal: Principal, user_id: uuid.UUID
) -> User:
    """The account, when the principal may change, unlock, log out or re-enrol it. Invisible (no membership in
    scope): 404, as for a missing one. Visible but also holding a role outside the principal's reach (another
    tenant for a tenant admin, another department for a department admin): 403, since changing a shared account
    would hand its other tenants' access to this administrator. Every membership is read through the sign-in
    function, which sees past the principal's scope and returns only tenant and department ids."""
    user = await repo.visible_user(conn, user_id)
    if user is None:
        raise NotFound("no such user")
    held = await repo.memberships_of(conn, user_id)
    if not rules.may_administer(principal, [(m.tenant_id, m.department_id) for m in held]):
        raise PermissionDenied(
            "this account also holds roles outside your scope: only an administrator of all of them may change it"
        )
    return user
