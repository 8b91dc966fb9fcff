"""The mayor's monthly report from real rows of the other domains, read through the report views: availability,
recorded hours, alerts and their delays (nearest-rank median and p90), arrivals, outcomes, requisitions, and its PDF."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from billing.service import BillingService
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.tenancy import Principal, Role, Scope
from tests.billing.conftest import Setup, paris

pytestmark = pytest.mark.integration


async def _alert(conn: asyncpg.Connection, setup: Setup, raised: datetime, *, state: str,
                 verified_after_s: int | None = None) -> uuid.UUID:
    camera = await conn.fetchrow("SELECT site_id, insee_code FROM cameras WHERE id = $1", setup.camera("c4"))
    alert_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO alerts (id, tenant_id, camera_id, site_id, insee_code, rule_type, severity, priority, state, "
        "source_event_id, first_seen_at, last_seen_at, raised_at, sla_claim_due_at, verified_at) "
        "VALUES ($1, $2, $3, $4, $5, 'intrusion', 3, 30, $6, $7, $8, $8, $8, $8, $9)",
        alert_id, setup.tenant("versailles"), setup.camera("c4"), camera["site_id"], camera["insee_code"], state,
        uuid.uuid4(), raised, None if verified_after_s is None else raised + timedelta(seconds=verified_after_s))
    return alert_id


@pytest.fixture(scope="module")
async def activity(configured: Setup, department_pool: asyncpg.Pool) -> None:
    """Three alerts on c4 in October: one verified in 30 s and dispatched after 90 s, the officer on scene 8 min
    after the order and reporting an arrest; one verified in 60 s then dismissed; one never handled. A requisition
    naming c4, received on 8 October and served on the 9th."""
    seed = configured.seed
    async with department_pool.acquire() as conn, conn.transaction():
        officer = await conn.fetchval("SELECT id FROM users WHERE email = 'policier@versailles.test'")
        raised = paris(2026, 10, 5, 10)
        first = await _alert(conn, configured, raised, state="dispatched", verified_after_s=30)
        await _alert(conn, configured, paris(2026, 10, 6, 22), state="dismissed", verified_after_s=60)
        await _alert(conn, configured, paris(2026, 10, 7, 3), state="new")
        ordered = raised + timedelta(seconds=90)
        dispatch_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO dispatches (id, tenant_id, alert_id, force_id, force_kind, urgency, ttl_s, ordered_at) "
            "VALUES ($1, $2, $3, $4, 'police_nationale', 'urgent', 60, $5)",
            dispatch_id, configured.tenant("versailles"), first, seed.forces["pn"], ordered)
        await conn.execute(
            "INSERT INTO push_dispatches (id, tenant_id, alert_id, camera_id, force_id, urgency, ttl_s, ordered_at, "
            "expires_at) VALUES ($1, $2, $3, $4, $5, 'urgent', 60, $6, $6)",
            dispatch_id, configured.tenant("versailles"), first, configured.camera("c4"), seed.forces["pn"], ordered)
        for status, after, outcome in [("on_scene", 480, None), ("closed", 1500, "arrest_in_flagrante_delicto")]:
            await conn.execute(
                "INSERT INTO push_receipts (id, tenant_id, dispatch_id, user_id, status, received_at, outcome) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                uuid.uuid4(), configured.tenant("versailles"), dispatch_id, officer, status,
                ordered + timedelta(seconds=after), outcome)
        requisition, export = uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            "INSERT INTO requisitions (id, tenant_id, procedure_number, legal_frame, opj_name, opj_service, "
            "camera_ids, start_at, end_at, received_at, registered_by) VALUES ($1, $2, 'P-1', 'flagrance', 'OPJ', "
            "'SR', $3, $4, $5, $6, $7)",
            requisition, configured.tenant("versailles"), [configured.camera("c4")], raised,
            raised + timedelta(hours=1), paris(2026, 10, 8, 9), officer)
        await conn.execute(
            "INSERT INTO evidence_exports (id, tenant_id, requisition_id, exported_by, exported_by_name, object_key, "
            "package_sha256, manifest_sha256, signing_key_id) VALUES ($1, $2, $3, $4, 'x', 'k', $5, $5, 'k')",
            export, configured.tenant("versailles"), requisition, officer, "0" * 64)
        await conn.execute(
            "INSERT INTO export_transmissions (id, tenant_id, export_id, transmitted_at, recipient, recorded_by) "
            "VALUES ($1, $2, $3, $4, 'Parquet de Pontoise', $5)",
            uuid.uuid4(), configured.tenant("versailles"), export, paris(2026, 10, 9, 11), officer)


async def test_the_monthly_report(
    billing: BillingService, people: dict[str, Principal], configured: Setup, activity: None
) -> None:
    await billing.run_month(people["finance"], "2026-10")  # issues October unless an earlier test did
    report = await billing.monthly_report(people["versailles"], configured.tenant("versailles"), "2026-10")
    assert report.tenant_name == "Versailles"
    (commune,) = report.communes
    assert (commune.insee_code, commune.name) == ("78646", "Versailles")
    c4 = next(c for c in commune.cameras if c.camera_id == configured.camera("c4"))
    f = c4.figures
    assert f.availability == Decimal("98.39")
    assert f.recorded_hours == Decimal("0.17")  # one 10-minute segment
    assert (f.alerts_raised, f.alerts_verified, f.alerts_dismissed, f.alerts_dispatched) == (3, 2, 1, 1)
    assert (f.verification_median_s, f.verification_p90_s) == (30.0, 60.0)
    assert (f.dispatch_median_s, f.arrivals, f.arrival_median_s) == (90.0, 1, 480.0)
    assert f.outcomes == {"arrest_in_flagrante_delicto": 1}
    assert (f.requisitions_received, f.requisitions_served) == (1, 1)
    assert report.totals.alerts_raised == 3
    days = {d.day.day: (d.raised, d.verified, d.dispatched) for d in report.daily}
    assert days[5] == (1, 1, 1)
    assert days[7] == (1, 0, 0)
    assert len(report.daily) == 31
    assert report.invoice is not None  # the month's live invoice: what the commune paid
    name, pdf = await billing.monthly_report_pdf(people["versailles"], configured.tenant("versailles"), "2026-10")
    assert name.endswith(".pdf")
    assert pdf.startswith(b"%PDF-")


async def test_report_access(billing: BillingService, people: dict[str, Principal], configured: Setup) -> None:
    with pytest.raises(NotFound):
        await billing.monthly_report(people["versailles"], configured.tenant("houdan"), "2026-10")
    with pytest.raises(PermissionDenied):
        await billing.monthly_report(people["operator"], configured.tenant("versailles"), "2026-10")
    with pytest.raises(NotFound):
        await billing.monthly_report(people["admin"], uuid.uuid4(), "2026-10")
    with pytest.raises(InvalidInput):
        await billing.monthly_report(people["admin"], configured.tenant("versailles"), "2027-01")
    # A department admin of another department: the directory read under its own scope shows no Houdan.
    elsewhere = uuid.uuid4()
    stranger = Principal(user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=Role.DEPARTMENT_ADMIN,
                         home_tenant_id=uuid.uuid4(), department_id=elsewhere,
                         scope=Scope(frozenset(), department_id=elsewhere))
    with pytest.raises(NotFound):
        await billing.monthly_report(stranger, configured.tenant("houdan"), "2026-10")
    # Houdan is not under live supervision: the admin gets its report (figures, no image) through billing.
    houdan = await billing.monthly_report(people["admin"], configured.tenant("houdan"), "2026-10")
    (camera,) = houdan.communes[0].cameras
    assert camera.figures.availability == Decimal("100.00")
    assert camera.figures.alerts_raised == 0
