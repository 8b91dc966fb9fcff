"""Renewal warnings of prefectoral authorisations: the cover a chain of orders gives, the 60/30/7-day thresholds."""

from __future__ import annotations

from datetime import date, timedelta

from tenants.rules import authorised_until, expiry_warning

TODAY = date(2026, 12, 3)


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


def test_cover_is_the_end_of_the_uninterrupted_chain_of_orders() -> None:
    assert authorised_until([], TODAY) is None
    assert authorised_until([(days(-10), days(-1))], TODAY) is None  # expired yesterday
    assert authorised_until([(days(1), days(100))], TODAY) is None  # not yet in force
    assert authorised_until([(days(-10), days(0))], TODAY) == TODAY  # its last day is covered
    # A renewal taking over the day after continues the cover; one starting later leaves a hole.
    assert authorised_until([(days(-10), days(5)), (days(6), days(400))], TODAY) == days(400)
    assert authorised_until([(days(-10), days(5)), (days(7), days(400))], TODAY) == days(5)
    assert authorised_until([(days(3), days(400)), (days(-10), days(5))], TODAY) == days(400)


def test_the_tightest_threshold_is_reported() -> None:
    assert [expiry_warning(d) for d in (0, 7, 8, 30, 31, 60, 61)] == [7, 7, 30, 30, 60, 60, None]
