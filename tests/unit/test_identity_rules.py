"""Throttling delays, habilitation validity and the scope of each role."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from core.tenancy import Role, Scope
from identity import rules


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
