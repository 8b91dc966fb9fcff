"""Pure billing rules with Decimal only: the day rule in Europe/Paris (DST days, months of 28 to 31 days), pro-rata
per plan and price, plan changes, SLA credits, totals equal to the sum of the lines."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from billing.metering import (
    PARIS,
    Interval,
    Month,
    RegistryEvent,
    active_days,
    active_intervals,
    availability_percent,
    day_bounds,
)
from billing.rules import (
    Assignment,
    CameraInput,
    Plan,
    PriceRow,
    SlaTerms,
    build_draft,
    invoice_number,
    line_amount,
    price_on,
    sla_credit,
    totals,
)

REC = Plan(uuid.UUID(int=1), "recording", "Enregistrement seul")
LIVE = Plan(uuid.UUID(int=2), "live", "Supervision en direct")
DET = Plan(uuid.UUID(int=3), "detection", "Option détection")
PLANS = {p.id: p for p in (REC, LIVE, DET)}
PRICES = {
    REC.id: [PriceRow(uuid.UUID(int=11), REC.id, date(2020, 1, 1), Decimal("31.00"))],
    LIVE.id: [PriceRow(uuid.UUID(int=12), LIVE.id, date(2020, 1, 1), Decimal("90.00"))],
    DET.id: [PriceRow(uuid.UUID(int=13), DET.id, date(2020, 1, 1), Decimal("120.00"), Decimal("0.50"))],
}
NO_SLA = SlaTerms(Decimal("0"), Decimal("0"), Decimal("0"))
SLA = SlaTerms(Decimal("99.50"), Decimal("10"), Decimal("50"))


def paris(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=PARIS).astimezone(UTC)


def camera(intervals: list[Interval], assignments: list[Assignment], outages: list[Interval] | None = None,
           name: str = "Place") -> CameraInput:
    return CameraInput(uuid.uuid4(), name, "95127", intervals, assignments, outages or [])


def whole(month: Month) -> list[Interval]:
    return [Interval(month.start - timedelta(days=40), month.end + timedelta(days=40))]


@pytest.mark.parametrize(("text", "days"), [("2026-02", 28), ("2028-02", 29), ("2026-04", 30), ("2026-01", 31),
                                            ("2026-12", 31)])
def test_month_lengths(text: str, days: int) -> None:
    month = Month.parse(text)
    assert month.days == days
    assert len(month.each_day()) == days
    draft = build_draft(month, [camera(whole(month), [Assignment(REC.id, date(2020, 1, 1))])], PLANS, PRICES, NO_SLA)
    # A full month is exactly the monthly price, whatever its length.
    assert [line.net_amount for line in draft.lines] == [Decimal("31.00")]
    assert draft.lines[0].quantity == Decimal(days)
    assert draft.lines[0].base_quantity == Decimal(days)


@pytest.mark.parametrize("text", ["2026-13", "26-01", "2026-1", "x", "1999-12", "2026-00"])
def test_bad_months(text: str) -> None:
    with pytest.raises(ValueError, match="not a month"):
        Month.parse(text)


def test_dst_days_are_23_and_25_hours() -> None:
    spring, autumn = date(2026, 3, 29), date(2026, 10, 25)  # last Sundays of March and October
    start, end = day_bounds(spring)
    assert end - start == timedelta(hours=23)
    start, end = day_bounds(autumn)
    assert end - start == timedelta(hours=25)
    assert day_bounds(date(2026, 10, 24))[1] - day_bounds(date(2026, 10, 24))[0] == timedelta(hours=24)


def test_dst_day_counts_once_and_availability_uses_its_real_length() -> None:
    month = Month(2026, 10)
    start, end = day_bounds(date(2026, 10, 25))  # 25 hours
    outage = Interval(start, start + timedelta(hours=2, minutes=30))
    cam = camera([Interval(start, end)], [Assignment(REC.id, date(2026, 10, 1))], [outage])
    draft = build_draft(month, [cam], PLANS, PRICES, NO_SLA)
    assert draft.lines[0].quantity == Decimal(1)
    assert draft.cameras[0].availability == Decimal("90.00")  # 2.5 h of 25 h, not of 24
    spring = Month(2026, 3)
    s_start, s_end = day_bounds(date(2026, 3, 29))
    cam = camera([Interval(s_start, s_end)], [Assignment(REC.id, date(2026, 3, 1))])
    assert build_draft(spring, [cam], PLANS, PRICES, NO_SLA).lines[0].quantity == Decimal(1)


def test_camera_added_on_the_31st_counts_one_day() -> None:
    month = Month(2026, 1)
    events = [RegistryEvent(paris(2026, 1, 31, 15), "added", "online")]
    intervals = active_intervals(events, until=month.end)
    assert active_days(intervals, month.each_day()) == [date(2026, 1, 31)]
    draft = build_draft(month, [camera(intervals, [Assignment(REC.id, date(2026, 1, 1))])], PLANS, PRICES, NO_SLA)
    assert draft.lines[0].quantity == Decimal(1)
    assert draft.lines[0].net_amount == Decimal("1.00")  # 31.00 * 1 / 31


def test_camera_removed_on_the_1st_counts_one_day_and_midnight_counts_none() -> None:
    month = Month(2026, 2)
    added = RegistryEvent(paris(2025, 6, 1), "added", "online")
    removed = active_intervals([added, RegistryEvent(paris(2026, 2, 1, 9), "removed", "online")], until=month.end)
    assert active_days(removed, month.each_day()) == [date(2026, 2, 1)]
    at_midnight = active_intervals([added, RegistryEvent(paris(2026, 2, 2), "removed", "online")], until=month.end)
    assert active_days(at_midnight, month.each_day()) == [date(2026, 2, 1)]
    before = active_intervals([added, RegistryEvent(paris(2026, 2, 1), "removed", "online")], until=month.end)
    assert active_days(before, month.each_day()) == []


def test_suspension_skips_whole_days_only() -> None:
    month = Month(2026, 4)
    events = [
        RegistryEvent(paris(2026, 1, 1), "added", "online"),
        RegistryEvent(paris(2026, 4, 5, 10), "status_changed", "disabled"),
        RegistryEvent(paris(2026, 4, 7, 14), "status_changed", "online"),
        RegistryEvent(paris(2026, 4, 9, 8), "status_changed", "offline"),  # an outage, not a suspension
    ]
    days = active_days(active_intervals(events, until=month.end), month.each_day())
    assert date(2026, 4, 5) in days
    assert date(2026, 4, 7) in days
    assert date(2026, 4, 6) not in days
    assert len(days) == 29


def test_plan_changed_twice_in_a_month() -> None:
    month = Month(2026, 11)  # 30 days
    assignments = [
        Assignment(REC.id, date(2026, 1, 1), date(2026, 11, 9)),
        Assignment(LIVE.id, date(2026, 11, 10), date(2026, 11, 19)),
        Assignment(DET.id, date(2026, 11, 20)),
    ]
    draft = build_draft(month, [camera(whole(month), assignments)], PLANS, PRICES, NO_SLA)
    by_plan = {line.plan_id: line for line in draft.lines}
    assert by_plan[REC.id].quantity == 9
    assert by_plan[REC.id].net_amount == Decimal("9.30")
    assert by_plan[LIVE.id].quantity == 10
    assert by_plan[LIVE.id].net_amount == Decimal("30.00")
    assert by_plan[DET.id].quantity == 11
    assert by_plan[DET.id].net_amount == Decimal("44.00")
    assert draft.cameras[0].days_by_plan == {"recording": 9, "live": 10, "detection": 11}


def test_price_change_mid_month_gives_two_lines_and_never_touches_old_days() -> None:
    month = Month(2026, 11)
    rows = [PriceRow(uuid.UUID(int=21), REC.id, date(2020, 1, 1), Decimal("30.00")),
            PriceRow(uuid.UUID(int=22), REC.id, date(2026, 11, 16), Decimal("45.00"))]
    assert price_on(date(2026, 11, 15), rows) == rows[0]
    assert price_on(date(2026, 11, 16), rows) == rows[1]
    assert price_on(date(2019, 12, 31), rows) is None
    draft = build_draft(month, [camera(whole(month), [Assignment(REC.id, date(2026, 1, 1))])], PLANS,
                        {REC.id: rows}, NO_SLA)
    assert [(line.quantity, line.net_amount) for line in draft.lines] == [(15, Decimal("15.00")),
                                                                           (15, Decimal("22.50"))]


def test_unplanned_camera_is_reported_never_free() -> None:
    month = Month(2026, 11)
    cams = [camera(whole(month), [Assignment(REC.id, date(2026, 11, 21))], name="A"),
            camera(whole(month), [], name="B")]
    draft = build_draft(month, cams, PLANS, PRICES, NO_SLA)
    assert {(c.name, c.unplanned_days) for c in draft.unplanned} == {("A", 20), ("B", 30)}
    assert draft.lines[0].quantity == 10


def test_plan_without_price_is_reported() -> None:
    month = Month(2026, 11)
    draft = build_draft(month, [camera(whole(month), [Assignment(REC.id, date(2026, 1, 1))])], PLANS,
                        {REC.id: [PriceRow(uuid.uuid4(), REC.id, date(2026, 11, 11), Decimal("10"))]}, NO_SLA)
    assert draft.missing_prices == ["recording"]


def test_sla_credit_per_started_point_capped() -> None:
    assert sla_credit(Decimal("90"), Decimal("99.50"), SLA) == 0
    assert sla_credit(Decimal("90"), Decimal("99.49"), SLA) == Decimal("9.00")  # 1 started point: 10 %
    assert sla_credit(Decimal("90"), Decimal("97.00"), SLA) == Decimal("27.00")  # 3 points (2.5 started)
    assert sla_credit(Decimal("90"), Decimal("10.00"), SLA) == Decimal("45.00")  # capped at 50 %


def test_sla_credit_line_from_gaps() -> None:
    month = Month(2026, 11)
    outage = Interval(paris(2026, 11, 3, 8), paris(2026, 11, 3, 8) + timedelta(hours=12))
    overlapping = Interval(paris(2026, 11, 3, 10), paris(2026, 11, 3, 12))  # counted once
    cam = camera(whole(month), [Assignment(LIVE.id, date(2026, 1, 1))], [outage, overlapping])
    draft = build_draft(month, [cam], PLANS, PRICES, SLA)
    # 12 h of 720 h: 98.33 %, two started points below 99.5: 20 % of 90.00.
    assert draft.cameras[0].availability == Decimal("98.33")
    credit = [line for line in draft.lines if line.kind == "sla_credit"]
    assert [(c.quantity, c.unit_price, c.net_amount) for c in credit] == [(-1, Decimal("18.00"), Decimal("-18.00"))]


def test_availability_rounding() -> None:
    assert availability_percent(0, 0) == Decimal(100)
    assert availability_percent(3600, 36) == Decimal("99.00")
    assert availability_percent(3600, 7200) == Decimal("0.00")


def test_usage_priced_by_lowest_plan_price_or_informative() -> None:
    month = Month(2026, 11)
    cams = [camera(whole(month), [Assignment(DET.id, date(2026, 1, 1))])]
    draft = build_draft(month, cams, PLANS, PRICES, NO_SLA, detector_seconds=Decimal(5400),
                        storage_gb_days=Decimal("1234.5"))
    usage = [line for line in draft.lines if line.kind == "detector_usage"]
    assert [(u.quantity, u.unit_price, u.net_amount) for u in usage] == [(Decimal("1.5"), Decimal("0.50"),
                                                                         Decimal("0.75"))]
    assert not [line for line in draft.lines if line.kind == "storage_usage"]  # no plan prices storage
    assert draft.storage_gb_days == Decimal("1234.5")


def test_totals_equal_the_sum_of_the_lines() -> None:
    month = Month(2026, 7)
    cams = [camera(whole(month), [Assignment(p.id, date(2026, 7, d))], name=f"c{d}") for d in range(1, 29, 3)
            for p in (REC, LIVE, DET)]
    draft = build_draft(month, cams, PLANS, PRICES, SLA)
    amounts = [line.net_amount for line in draft.lines]
    result = totals(amounts, Decimal("20.00"))
    assert result.ht == sum(amounts, Decimal(0))
    assert result.vat == (result.ht * Decimal("0.2")).quantize(Decimal("0.01"))
    assert result.ttc == result.ht + result.vat
    assert all(a == a.quantize(Decimal("0.01")) for a in amounts)


def test_a_credit_note_cancels_an_invoice_exactly() -> None:
    month = Month(2026, 9)
    draft = build_draft(month, [camera(whole(month), [Assignment(LIVE.id, date(2026, 9, 8))],
                                       [Interval(paris(2026, 9, 10), paris(2026, 9, 11))])], PLANS, PRICES, SLA)
    invoice = totals([line.net_amount for line in draft.lines], Decimal("20"))
    # A credit note carries the same lines (EN 16931 type 381: positive amounts that credit).
    credit = totals([line_amount(line.quantity, line.unit_price, line.base_quantity) for line in draft.lines],
                    Decimal("20"))
    assert invoice.ttc - credit.ttc == 0
    assert invoice.vat == credit.vat


def test_numbers() -> None:
    assert invoice_number("95", 2026, 1) == "F95-2026-000001"
    assert len(invoice_number("971", 2026, 999999)) <= 20
