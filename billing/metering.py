"""Pure metering: Paris months and days, a camera's active intervals and counted days, its availability."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

# The day rule: a camera counts for a calendar day of Europe/Paris (local midnight to the next local midnight, 23, 24
# or 25 hours) when it was in the registry and not suspended (`disabled`) during some part of that day of positive
# length, and a plan of its contract covers that date. Added on the 31st at 15:00: the 31st counts. Removed on the 1st
# at 09:00: the 1st counts. Removed at exactly midnight: the day that starts then does not.
PARIS = ZoneInfo("Europe/Paris")
MONTH_PATTERN = r"^2[0-9]{3}-(0[1-9]|1[0-2])$"
SUSPENDED = "disabled"
PERCENT = Decimal("0.01")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month; its instants are those of Europe/Paris."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        if not re.fullmatch(MONTH_PATTERN, text):
            raise ValueError(f"{text!r} is not a month (YYYY-MM)")
        return cls(int(text[:4]), int(text[5:7]))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def last_day(self) -> date:
        return self.next.first_day - timedelta(days=1)

    @property
    def days(self) -> int:
        return self.last_day.day

    def each_day(self) -> list[date]:
        first = self.first_day
        return [first + timedelta(days=i) for i in range(self.days)]

    @property
    def start(self) -> datetime:
        return local_midnight(self.first_day)

    @property
    def end(self) -> datetime:
        return local_midnight(self.next.first_day)

    def ended(self, now: datetime) -> bool:
        """True once the month's last local day is over (a run for a month not yet ended is refused)."""
        return now >= self.end


def local_midnight(day: date) -> datetime:
    """The instant a Paris calendar day starts, in UTC (midnight exists on both DST days in Europe/Paris)."""
    return datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    return local_midnight(day), local_midnight(day + timedelta(days=1))


@dataclass(frozen=True)
class RegistryEvent:
    occurred_at: datetime
    kind: str  # added | status_changed | removed
    status: str


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime  # exclusive

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())

    def clip(self, start: datetime, end: datetime) -> Interval | None:
        lo, hi = max(self.start, start), min(self.end, end)
        return Interval(lo, hi) if hi > lo else None


def active_intervals(events: Sequence[RegistryEvent], until: datetime) -> list[Interval]:
    """When the camera existed and was not suspended, from its history in order; open intervals end at `until`."""
    intervals: list[Interval] = []
    since: datetime | None = None
    for event in events:
        active = event.kind != "removed" and event.status != SUSPENDED
        if active and since is None:
            since = event.occurred_at
        elif not active and since is not None:
            if event.occurred_at > since:
                intervals.append(Interval(since, event.occurred_at))
            since = None
    if since is not None and until > since:
        intervals.append(Interval(since, until))
    return intervals


def active_days(intervals: Sequence[Interval], days: Iterable[date]) -> list[date]:
    """The days on which some active interval has a positive overlap."""
    counted = []
    for day in days:
        start, end = day_bounds(day)
        if any(i.clip(start, end) is not None for i in intervals):
            counted.append(day)
    return counted


def merged(intervals: Iterable[Interval]) -> list[Interval]:
    result: list[Interval] = []
    for interval in sorted(intervals, key=lambda i: i.start):
        if result and interval.start <= result[-1].end:
            if interval.end > result[-1].end:
                result[-1] = Interval(result[-1].start, interval.end)
        else:
            result.append(interval)
    return result


def covered_seconds(windows: Sequence[Interval], parts: Iterable[Interval]) -> float:
    """Seconds of `parts` (merged first, so overlapping outages count once) that fall inside `windows`."""
    total = 0.0
    for part in merged(parts):
        for window in windows:
            clipped = part.clip(window.start, window.end)
            if clipped is not None:
                total += clipped.seconds
    return total


def billed_windows(intervals: Sequence[Interval], days: Iterable[date]) -> list[Interval]:
    """The active time inside the given days: what availability is measured over."""
    windows: list[Interval] = []
    for day in days:
        start, end = day_bounds(day)
        windows.extend(c for i in intervals if (c := i.clip(start, end)) is not None)
    return windows


def availability_percent(active_seconds: float, outage_seconds: float) -> Decimal:
    """Availability over the camera's billed active time, in percent rounded half up to 0.01; 100 when it had none."""
    if active_seconds <= 0:
        return Decimal(100)
    down = min(outage_seconds, active_seconds)
    value = (Decimal(1) - Decimal(repr(down)) / Decimal(repr(active_seconds))) * 100
    return value.quantize(PERCENT, rounding=ROUND_HALF_UP)
