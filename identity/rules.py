"""Pure decisions of identity: throttling delays and keys, scope of each role, who may administer an account,
habilitation validity."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from core.tenancy import DEPARTMENT_WIDE_ROLES, Principal, Role, Scope

MAX_DELAY = timedelta(minutes=15)


def throttle_delay(failed_attempts: int, *, free_attempts: int) -> timedelta:
    """Exponential delay once `free_attempts` consecutive failures are reached: 1 s, 2 s, 4 s… capped."""
    if failed_attempts < free_attempts:
        return timedelta(0)
    return min(timedelta(seconds=2 ** (failed_attempts - free_attempts)), MAX_DELAY)


def retry_after(failed_attempts: int, last_failed_at: datetime | None, now: datetime, *, free_attempts: int) -> int:
    """Seconds the account must wait before its password is evaluated again (0 = evaluate now)."""
    if last_failed_at is None:
        return 0
    ready = last_failed_at + throttle_delay(failed_attempts, free_attempts=free_attempts)
    return max(0, int((ready - now).total_seconds() + 0.999))


def habilitation_valid(expires_on: date | None, today: date) -> bool:
    return expires_on is not None and expires_on >= today


def scope_of(
    role: Role,
    *,
    home_tenant_id: uuid.UUID,
    department_id: uuid.UUID,
    department_tenant_ids: frozenset[uuid.UUID],
    force_tenant_ids: frozenset[uuid.UUID],
    member_tenant_ids: frozenset[uuid.UUID],
) -> Scope:
    """Department staff see the department's own tenant and every tenant under live supervision, with the department
    directory; finance, every member tenant of the department (it bills them, supervised or not; every image route
    refuses its role), with the directory; an officer, the tenants their force is competent for; anyone else, their
    own tenant."""
    if role in DEPARTMENT_WIDE_ROLES:
        return Scope(department_tenant_ids, department_id=department_id)
    if role is Role.FINANCE:
        return Scope(member_tenant_ids, department_id=department_id)
    if role is Role.OFFICER:
        return Scope(force_tenant_ids)
    return Scope(frozenset({home_tenant_id}))


def address_key(address: str) -> str:
    """The key a client address is throttled under: an IPv4 address as is, an IPv6 address by its /64 (one subscriber
    holds a whole /64, so counting single IPv6 addresses would give each attacker billions of budgets), an IPv4-mapped
    IPv6 address as the IPv4 one. Anything else (a Unix socket, a test transport) is kept verbatim."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def may_administer(principal: Principal, memberships: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> bool:
    """Whether `principal` may change, unlock, log out or re-enrol an account holding these memberships, given as
    (tenant id, department id) pairs, every one of them, not only those the principal can see. A tenant admin only
    when every role of the account lies inside their scope: an account shared with another tenant is not theirs to
    take over. A department admin when every role lies in their department."""
    held = list(memberships)
    if principal.role is Role.DEPARTMENT_ADMIN:
        return all(department == principal.department_id for _, department in held)
    if principal.role is Role.TENANT_ADMIN:
        return all(principal.scope.includes(tenant) for tenant, _ in held)
    return False
