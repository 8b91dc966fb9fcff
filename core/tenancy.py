"""Who is acting and over which tenants: the principal every service receives from the verified token."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass


class Role(enum.StrEnum):
    DEPARTMENT_ADMIN = "department_admin"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"
    TENANT_ADMIN = "tenant_admin"
    OFFICER = "officer"
    AUDITOR = "auditor"
    # Billing and payments for every member tenant of the department; no access to images (billing.service).
    FINANCE = "finance"


# Roles held in the department's own tenant and scoped to every tenant under live supervision.
DEPARTMENT_WIDE_ROLES = frozenset({Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR})
# Roles held only in the department's own tenant.
DEPARTMENT_TENANT_ROLES = DEPARTMENT_WIDE_ROLES | {Role.FINANCE}
# Roles that view images: a valid habilitation (agrément) is required (CSI L132-14-1).
HABILITATED_ROLES = frozenset({Role.SUPERVISOR, Role.OPERATOR})
# Roles that must sign in with a second factor: every role that administers, views images or reads department-wide
# (an auditor reads every supervised tenant's journal; finance reads every member tenant's invoices).
SECOND_FACTOR_ROLES = frozenset(
    {Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.TENANT_ADMIN, Role.AUDITOR, Role.FINANCE}
)


@dataclass(frozen=True)
class Scope:
    """The tenants whose rows a principal may see; `department_id` opens the department's directory."""

    tenant_ids: frozenset[uuid.UUID]
    department_id: uuid.UUID | None = None

    def includes(self, tenant_id: uuid.UUID) -> bool:
        return tenant_id in self.tenant_ids


@dataclass(frozen=True)
class Principal:
    """An authenticated user acting through one membership (one role in one tenant)."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    role: Role
    home_tenant_id: uuid.UUID
    department_id: uuid.UUID
    scope: Scope
    force_id: uuid.UUID | None = None
    display_name: str = ""
    # RFC 7638 thumbprint of the device key the session is bound to (DPoP, RFC 9449); None for a bearer session.
    key_thumbprint: str | None = None

    def has(self, *roles: Role) -> bool:
        return self.role in roles


def require_role(principal: Principal, roles: frozenset[Role], action: str) -> None:
    """Function-level authorisation; data-level isolation is row-level security's job."""
    if principal.role not in roles:
        from core.errors import PermissionDenied

        raise PermissionDenied(f"the {principal.role.value} role may not {action}")


STAFF_READERS = frozenset({Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.TENANT_ADMIN, Role.AUDITOR})
TENANCY_WRITERS = frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN})
DEPARTMENT_ADMINS = frozenset({Role.DEPARTMENT_ADMIN})
