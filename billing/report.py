"""The mayor's monthly report: what the service did per commune and camera, and what the month cost."""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from billing.access import BILLING_READERS, BillingBase
from billing.metering import PARIS, Month, active_intervals, availability_percent, covered_seconds
from billing.metering_repository import RegisteredCamera
from billing.model import CameraReport, CommuneReport, DayCount, Figures, MonthlyReport, PaidRef
from billing.report_document import report_html
from billing.runs import parse_month
from core.errors import InvalidInput, NotFound
from core.tenancy import Principal

# Availability here is over the whole time a camera was in service (not only the days a plan billed), measured like
# the invoice's (registry history and the outage view). Medians and 90th percentiles are nearest-rank over the
# durations themselves, never averages of per-camera figures.
HOURS = Decimal("0.01")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1): a value that occurred, None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Tally:
    """Raw material of a Figures: summed or pooled, so communes and the tenant aggregate exactly."""

    active_s: float = 0.0
    outage_s: float = 0.0
    recorded_s: float = 0.0
    raised: int = 0
    verified: int = 0
    dismissed: int = 0
    dispatched: int = 0
    to_verify: list[float] = field(default_factory=list)
    to_dispatch: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    requisitions_received: int = 0
    requisitions_served: int = 0

    def add(self, other: Tally) -> None:
        for name in ("active_s", "outage_s", "recorded_s", "raised", "verified", "dismissed", "dispatched",
                     "requisitions_received", "requisitions_served"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.to_verify += other.to_verify
        self.to_dispatch += other.to_dispatch
        self.arrivals += other.arrivals
        self.outcomes.update(other.outcomes)

    def figures(self) -> Figures:
        return Figures(
            availability=None if self.active_s <= 0 else availability_percent(self.active_s, self.outage_s),
            recorded_hours=(Decimal(repr(self.recorded_s)) / 3600).quantize(HOURS, rounding=ROUND_HALF_UP),
            alerts_raised=self.raised,
            alerts_verified=self.verified,
            alerts_dismissed=self.dismissed,
            alerts_dispatched=self.dispatched,
            verification_median_s=percentile(self.to_verify, 0.5),
            verification_p90_s=percentile(self.to_verify, 0.9),
            dispatch_median_s=percentile(self.to_dispatch, 0.5),
            dispatch_p90_s=percentile(self.to_dispatch, 0.9),
            arrivals=len(self.arrivals),
            arrival_median_s=percentile(self.arrivals, 0.5),
            arrival_p90_s=percentile(self.arrivals, 0.9),
            outcomes=dict(sorted(self.outcomes.items())),
            requisitions_received=self.requisitions_received,
            requisitions_served=self.requisitions_served,
        )


def _seconds(later: datetime | None, earlier: datetime) -> float | None:
    return None if later is None else max(0.0, (later - earlier).total_seconds())


def _local_day(instant: datetime) -> date:
    return instant.astimezone(PARIS).date()


def _in(instant: datetime | None, month: Month) -> bool:
    return instant is not None and month.start <= instant < month.end


class ReportCases(BillingBase):
    async def monthly_report(self, principal: Principal, tenant_id: uuid.UUID, month: str) -> MonthlyReport:
        self._require(principal, BILLING_READERS, "read monthly reports")
        period = parse_month(month)
        if period.start > datetime.now(UTC):
            raise InvalidInput(f"{month} has not started yet", field="month")
        async with self._for_billed_tenant(principal, tenant_id, readonly=True) as conn:
            name = await self._reports.tenant_name(conn, tenant_id)
            if name is None:
                raise NotFound("no such tenant")
            registered = await self._metering.cameras(conn, tenant_id, period.end)
            outages = await self._metering.outages(conn, tenant_id, period.start, period.end)
            recorded = await self._reports.recorded_seconds(conn, tenant_id, period.start, period.end)
            alerts = await self._reports.alerts(conn, tenant_id, period.start, period.end)
            responders = await self._reports.responders(conn, tenant_id, period.start, period.end)
            requisitions = await self._reports.requisitions(conn, tenant_id, period.start, period.end)
            invoice = await self._invoices.live_invoice(conn, tenant_id, period.first_day)
            paid = None
            if invoice is not None:
                full = await self._invoices.invoice(conn, invoice.invoice_id)
                assert full is not None
                paid = PaidRef(number=full.number, total_ht=full.total_ht, total_ttc=full.total_ttc, status=full.status)
            communes = await self._reports.commune_names(conn, sorted({c.insee_code for c in registered}))
        tallies: dict[uuid.UUID, Tally] = defaultdict(Tally)
        for camera in registered:
            windows = [c for i in active_intervals(camera.events, period.end)
                       if (c := i.clip(period.start, period.end)) is not None]
            tally = tallies[camera.camera_id]
            tally.active_s = sum(w.seconds for w in windows)
            tally.outage_s = covered_seconds(windows, outages.get(camera.camera_id, []))
            tally.recorded_s = recorded.get(camera.camera_id, 0.0)
        daily: dict[date, list[int]] = {day: [0, 0, 0] for day in period.each_day()}
        for a in alerts:
            tally = tallies[a["camera_id"]]
            tally.raised += 1
            daily[_local_day(a["raised_at"])][0] += 1
            if (verify := _seconds(a["verified_at"], a["raised_at"])) is not None:
                tally.verified += 1
                tally.to_verify.append(verify)
                daily[_local_day(a["raised_at"])][1] += 1
            tally.dismissed += int(a["dismissed"])
            if (dispatch := _seconds(a["first_dispatch_at"], a["raised_at"])) is not None:
                tally.dispatched += 1
                tally.to_dispatch.append(dispatch)
                daily[_local_day(a["raised_at"])][2] += 1
        for r in responders:
            tally = tallies[r["camera_id"]]
            if (arrival := _seconds(r["on_scene_at"], r["ordered_at"])) is not None:
                tally.arrivals.append(arrival)
            if r["outcome"] is not None:
                tally.outcomes[r["outcome"]] += 1
        for q in requisitions:
            for camera_id in set(q["camera_ids"]) & set(tallies):
                tallies[camera_id].requisitions_received += int(_in(q["received_at"], period))
                tallies[camera_id].requisitions_served += int(_in(q["served_at"], period))
        return _assemble(tenant_id, name, period, paid, registered_names(registered), communes, tallies,
                         [DayCount(day=d, raised=v[0], verified=v[1], dispatched=v[2]) for d, v in daily.items()])

    async def monthly_report_pdf(self, principal: Principal, tenant_id: uuid.UUID, month: str) -> tuple[str, bytes]:
        report = await self.monthly_report(principal, tenant_id, month)
        pdf = await self.renderer().render_html(report_html(report))
        return f"rapport-{report.month}-{tenant_id}.pdf", pdf


def registered_names(registered: Iterable[RegisteredCamera]) -> dict[uuid.UUID, tuple[str, str]]:
    return {c.camera_id: (c.name, c.insee_code) for c in registered}


def _assemble(
    tenant_id: uuid.UUID,
    name: str,
    month: Month,
    paid: PaidRef | None,
    cameras: dict[uuid.UUID, tuple[str, str]],
    communes: dict[str, str],
    tallies: dict[uuid.UUID, Tally],
    daily: list[DayCount],
) -> MonthlyReport:
    by_commune: dict[str, list[CameraReport]] = defaultdict(list)
    commune_tallies: dict[str, Tally] = defaultdict(Tally)
    total = Tally()
    for camera_id, (camera_name, insee) in sorted(cameras.items(), key=lambda kv: (kv[1][1], kv[1][0])):
        tally = tallies.get(camera_id, Tally())
        by_commune[insee].append(CameraReport(camera_id=camera_id, name=camera_name, figures=tally.figures()))
        commune_tallies[insee].add(tally)
        total.add(tally)
    return MonthlyReport(
        tenant_id=tenant_id,
        tenant_name=name,
        month=str(month),
        generated_at=datetime.now(UTC),
        invoice=paid,
        totals=total.figures(),
        communes=[CommuneReport(insee_code=code, name=communes.get(code, code), figures=commune_tallies[code].figures(),
                                cameras=reports) for code, reports in sorted(by_commune.items())],
        daily=daily,
    )
