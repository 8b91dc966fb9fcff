"""Pure billing decisions: prices by day, a month as invoice lines (pro-rata, SLA credits, usage), totals."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from billing.metering import (
    Interval,
    Month,
    active_days,
    availability_percent,
    billed_windows,
    covered_seconds,
)

# Decimal only: every line rounded half up to the cent, VAT computed once on the total of the lines.
CENT = Decimal("0.01")
QUANTITY = Decimal("0.0001")
HUNDRED = Decimal(100)
SECONDS_PER_HOUR = Decimal(3600)
# UN/ECE Recommendation 20 unit codes used on the lines.
UNIT_DAY, UNIT_HOUR, UNIT_ONE = "DAY", "HUR", "C62"


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Plan:
    id: uuid.UUID
    code: str
    name: str


@dataclass(frozen=True)
class PriceRow:
    id: uuid.UUID
    plan_id: uuid.UUID
    effective_from: date
    monthly_price_ht: Decimal
    detector_hour_price: Decimal | None = None
    storage_gb_day_price: Decimal | None = None


@dataclass(frozen=True)
class Assignment:
    """A camera's plan from a date to a date, both included (None: open)."""

    plan_id: uuid.UUID
    start_date: date
    end_date: date | None = None

    def covers(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)


@dataclass(frozen=True)
class CameraInput:
    camera_id: uuid.UUID
    name: str
    insee_code: str
    intervals: Sequence[Interval]
    assignments: Sequence[Assignment]
    outages: Sequence[Interval] = ()


@dataclass(frozen=True)
class SlaTerms:
    """Below `target` % availability, `per_point` % of the camera's monthly fee per started point, up to `cap` %."""

    target: Decimal
    per_point: Decimal
    cap: Decimal


@dataclass(frozen=True)
class DraftLine:
    kind: str
    description: str
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    net_amount: Decimal
    base_quantity: Decimal = Decimal(1)
    plan_id: uuid.UUID | None = None
    price_id: uuid.UUID | None = None
    camera_id: uuid.UUID | None = None


@dataclass(frozen=True)
class CameraAnnex:
    camera_id: uuid.UUID
    name: str
    insee_code: str
    days_by_plan: dict[str, int]
    unplanned_days: int
    availability: Decimal | None
    credit: Decimal


@dataclass
class Draft:
    """A tenant's month, ready to issue (or to report: unplanned cameras, plans without a price)."""

    lines: list[DraftLine] = field(default_factory=list)
    cameras: list[CameraAnnex] = field(default_factory=list)
    missing_prices: list[str] = field(default_factory=list)
    detector_hours: Decimal = Decimal(0)
    storage_gb_days: Decimal = Decimal(0)

    @property
    def unplanned(self) -> list[CameraAnnex]:
        return [c for c in self.cameras if c.unplanned_days]


def price_on(day: date, rows: Sequence[PriceRow]) -> PriceRow | None:
    """The price row in force on `day`: the latest whose effective date is not after it."""
    best: PriceRow | None = None
    for row in rows:
        if row.effective_from <= day and (best is None or row.effective_from > best.effective_from):
            best = row
    return best


def line_amount(quantity: Decimal, unit_price: Decimal, base_quantity: Decimal = Decimal(1)) -> Decimal:
    """EN 16931: line net amount = quantity * (price / base quantity), here rounded half up to the cent."""
    return money(quantity * unit_price / base_quantity)


def sla_credit(fee: Decimal, availability: Decimal, terms: SlaTerms) -> Decimal:
    """The credit owed for one camera: per started point below target, capped; 0 at or above target."""
    if availability >= terms.target:
        return Decimal(0)
    points = (terms.target - availability).to_integral_value(rounding=ROUND_CEILING)
    percent = min(terms.cap, points * terms.per_point)
    return money(fee * percent / HUNDRED)


def _fmt(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def build_draft(
    month: Month,
    cameras: Sequence[CameraInput],
    plans: Mapping[uuid.UUID, Plan],
    prices: Mapping[uuid.UUID, Sequence[PriceRow]],
    terms: SlaTerms,
    *,
    detector_seconds: Decimal = Decimal(0),
    storage_gb_days: Decimal = Decimal(0),
) -> Draft:
    """Camera-days per (plan, price) → one line each; one credit line per camera below its availability target;
    detector time and storage as lines when a plan prices them, else on the annex only."""
    draft = Draft()
    days_in_month = Decimal(month.days)
    # (plan, price row) -> the days it was billed, one entry per camera-day.
    billed: dict[tuple[uuid.UUID, uuid.UUID], list[date]] = defaultdict(list)
    used_prices: dict[uuid.UUID, PriceRow] = {}
    credits: list[DraftLine] = []
    missing: set[str] = set()
    for camera in sorted(cameras, key=lambda c: (c.name, str(c.camera_id))):
        days = active_days(camera.intervals, month.each_day())
        by_plan: dict[str, int] = defaultdict(int)
        planned_days: list[date] = []
        unplanned = 0
        fee = Decimal(0)
        for day in days:
            assignment = next((a for a in camera.assignments if a.covers(day)), None)
            if assignment is None:
                unplanned += 1
                continue
            plan = plans[assignment.plan_id]
            row = price_on(day, prices.get(plan.id, ()))
            if row is None:
                missing.add(plan.code)
                continue
            billed[(plan.id, row.id)].append(day)
            used_prices[row.id] = row
            by_plan[plan.code] += 1
            planned_days.append(day)
            fee += row.monthly_price_ht / days_in_month
        availability: Decimal | None = None
        credit = Decimal(0)
        if planned_days:
            windows = billed_windows(camera.intervals, planned_days)
            active = sum(w.seconds for w in windows)
            availability = availability_percent(active, covered_seconds(windows, camera.outages))
            credit = sla_credit(fee, availability, terms)
            if credit:
                credits.append(
                    DraftLine(
                        kind="sla_credit",
                        description=f"Avoir de disponibilité — {camera.name} : {availability} % "
                        f"pour {terms.target} % contractuels",
                        quantity=Decimal(-1),
                        unit_code=UNIT_ONE,
                        unit_price=credit,
                        net_amount=-credit,
                        camera_id=camera.camera_id,
                    )
                )
        draft.cameras.append(CameraAnnex(
            camera.camera_id, camera.name, camera.insee_code, dict(by_plan), unplanned, availability, credit
        ))
    for (plan_id, price_id), days in sorted(
        billed.items(), key=lambda kv: (plans[kv[0][0]].code, used_prices[kv[0][1]].effective_from)
    ):
        row = used_prices[price_id]
        quantity = Decimal(len(days))
        draft.lines.append(
            DraftLine(
                kind="plan",
                description=f"{plans[plan_id].name} — {len(days)} caméra-jours du {_fmt(min(days))} au "
                f"{_fmt(max(days))} ({row.monthly_price_ht} € HT par caméra et par mois de {month.days} jours)",
                quantity=quantity,
                unit_code=UNIT_DAY,
                unit_price=row.monthly_price_ht,
                base_quantity=days_in_month,
                net_amount=line_amount(quantity, row.monthly_price_ht, days_in_month),
                plan_id=plan_id,
                price_id=price_id,
            )
        )
    draft.lines.extend(credits)
    draft.missing_prices = sorted(missing)
    draft.detector_hours = (detector_seconds / SECONDS_PER_HOUR).quantize(QUANTITY, rounding=ROUND_HALF_UP)
    draft.storage_gb_days = storage_gb_days.quantize(QUANTITY, rounding=ROUND_HALF_UP)
    in_force = [r for r in used_prices.values()]
    _usage_line(draft, "detector_usage", draft.detector_hours, UNIT_HOUR, "Temps de détection",
                [r.detector_hour_price for r in in_force], "h")
    _usage_line(draft, "storage_usage", draft.storage_gb_days, UNIT_ONE, "Stockage des enregistrements",
                [r.storage_gb_day_price for r in in_force], "Go·jour")
    return draft


def _usage_line(
    draft: Draft, kind: str, quantity: Decimal, unit: str, label: str, prices: list[Decimal | None], unit_label: str
) -> None:
    """Usage is metered per tenant: priced at the lowest usage price among the plan prices used this month (the
    buyer's advantage when plans differ), or left to the annex when none sets one."""
    priced = [p for p in prices if p is not None]
    if not priced or quantity <= 0:
        return
    price = min(priced)
    amount = line_amount(quantity, price)
    if amount == 0:
        return
    draft.lines.append(
        DraftLine(
            kind=kind,
            description=f"{label} — {quantity} {unit_label} à {price} € HT",
            quantity=quantity,
            unit_code=unit,
            unit_price=price,
            net_amount=amount,
        )
    )


@dataclass(frozen=True)
class Totals:
    ht: Decimal
    vat: Decimal
    ttc: Decimal


def totals(amounts: Sequence[Decimal], vat_rate: Decimal) -> Totals:
    """The total HT is the sum of the (already rounded) lines; VAT is computed once on it, rounded to the cent."""
    ht = sum(amounts, Decimal(0))
    vat = money(ht * vat_rate / HUNDRED)
    return Totals(ht, vat, ht + vat)


def invoice_number(department_code: str, year: int, sequence: int) -> str:
    """One chronological series per department and year for invoices and credit notes (≤ 20 characters, as
    Chorus Pro requires)."""
    return f"F{department_code}-{year}-{sequence:06d}"
