"""Throttling delays, habilitation validity and the scope of each role."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from core.errors import RateLimited
from core.settings import AuthSettings
from core.tenancy import SECOND_FACTOR_ROLES, Principal, Role, Scope
from identity import rules
from identity.model import Account
from identity.throttle import SigninThrottle


def test_no_delay_before_the_free_attempts_are_used() -> None:
    assert rules.throttle_delay(4, free_attempts=5) == timedelta(0)


def test_delay_doubles_then_caps() -> None:
    delays = [rules.throttle_delay(n, free_attempts=5).total_seconds() for n in range(5, 9)]
    assert delays == [1, 2, 4, 8]
    assert rules.throttle_delay(40, free_attempts=5) == rules.MAX_DELAY


def test_retry_after_counts_down() -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert rules.retry_after(7, now - timedelta(seconds=1), now, free_attempts=5) == 3
    assert rules.retry_after(7, now - timedelta(seconds=10), now, free_attempts=5) == 0
    assert rules.retry_after(0, None, now, free_attempts=5) == 0


def test_habilitation_valid_until_its_last_day() -> None:
    assert rules.habilitation_valid(date(2026, 11, 26), date(2026, 11, 26))
    assert not rules.habilitation_valid(date(2026, 11, 25), date(2026, 11, 26))
    assert not rules.habilitation_valid(None, date(2026, 11, 26))


def test_scope_of_each_role() -> None:
    home, department = uuid.uuid4(), uuid.uuid4()
    supervised, covered = frozenset({home, uuid.uuid4()}), frozenset({uuid.uuid4()})
    members = supervised | {uuid.uuid4()}  # a commune of the department that is not under live supervision

    def scope(role: Role) -> Scope:
        return rules.scope_of(role, home_tenant_id=home, department_id=department,
                              department_tenant_ids=supervised, force_tenant_ids=covered,
                              member_tenant_ids=members)

    for staff in (Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR):
        assert scope(staff) == Scope(supervised, department_id=department)
    assert scope(Role.FINANCE) == Scope(members, department_id=department)  # it bills unsupervised communes too
    assert scope(Role.OFFICER) == Scope(covered)  # no department directory for a force
    assert scope(Role.TENANT_ADMIN) == Scope(frozenset({home}))


def test_throttling_keys_an_ipv6_client_on_its_64() -> None:
    assert rules.address_key("203.0.113.5") == "203.0.113.5"
    assert rules.address_key("2001:db8:1:2::1") == rules.address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert rules.address_key("2001:db8:1:3::1") != rules.address_key("2001:db8:1:2::1")
    assert rules.address_key("::ffff:203.0.113.5") == "203.0.113.5"  # an IPv4 client seen through a dual stack
    assert rules.address_key("testclient") == "testclient"


def _admin(role: Role, tenants: set[uuid.UUID], department: uuid.UUID) -> Principal:
    return Principal(user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=role, home_tenant_id=next(iter(tenants)),
                     department_id=department, scope=Scope(frozenset(tenants), department_id=department))


def test_an_administrator_may_act_only_on_accounts_wholly_in_their_reach() -> None:
    department, other_department = uuid.uuid4(), uuid.uuid4()
    cergy, marines = uuid.uuid4(), uuid.uuid4()
    mayor = _admin(Role.TENANT_ADMIN, {cergy}, department)
    assert rules.may_administer(mayor, [(cergy, department)])
    assert not rules.may_administer(mayor, [(cergy, department), (marines, department)])
    head = _admin(Role.DEPARTMENT_ADMIN, {cergy}, department)
    assert rules.may_administer(head, [(cergy, department), (marines, department)])
    assert not rules.may_administer(head, [(cergy, department), (uuid.uuid4(), other_department)])
    operator = _admin(Role.OPERATOR, {cergy}, department)
    assert not rules.may_administer(operator, [(cergy, department)])


def _account(**counters: object) -> Account:
    values: dict[str, object] = {
        "id": uuid.uuid4(), "department_id": uuid.uuid4(), "email": "a@b.fr", "display_name": "a",
        "password_hash": None, "totp_secret_sealed": None, "totp_last_step": None, "status": "active",
        "failed_attempts": 0, "last_failed_at": None, "habilitation_expires_on": None, **counters,
    }
    return Account(**values)  # type: ignore[arg-type]


def test_second_factor_failures_lock_the_account_on_their_own_budget() -> None:
    throttle = SigninThrottle(None, AuthSettings(max_second_factor_failures=10))  # type: ignore[arg-type]
    throttle.check_account(_account(second_factor_failures=9))
    with pytest.raises(RateLimited, match="locked"):
        throttle.check_account(_account(second_factor_failures=10))
    with pytest.raises(RateLimited, match="locked"):
        throttle.check_account(_account(failed_attempts=100))


def test_auditors_and_every_administering_or_viewing_role_need_a_second_factor() -> None:
    assert {Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.TENANT_ADMIN, Role.AUDITOR,
            Role.FINANCE} == set(SECOND_FACTOR_ROLES)
