"""Throttling delays and habilitation validity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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
