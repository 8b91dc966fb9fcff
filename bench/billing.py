"""Billing benchmark: one month (October 2026, with its 25-hour day) for 200 tenants and 2 000 cameras, PDFs included.

Builds a department of 200 member tenants with 10 cameras each, 31 days of registry history (cameras added, removed
and suspended mid-month), plan changes mid-month, realistic recording gaps (a few short ones per camera, a long
outage on some: SLA credits), detector usage and one segment row per camera and day. Then times `vigie billing run`'s
path: the run (one transaction per tenant) and the rendering and storing of every Factur-X PDF over the machine's
cores. Validation (XSD + EN 16931 schematron of every stored document, over the cores too) is timed apart.

Writes bench/results/billing.json: cameras, tenants, run_s (issue + documents), invoices, invoices_validated,
render_ms_per_invoice (the whole document per invoice: HTML, weasyprint, CII, XSD, Factur-X embedding, as measured
inside the rendering processes), baseline_render_ms (weasyprint alone on the same HTML, same font, one process).
The past is written as the schema owner: registry history can only be written by the cameras trigger otherwise.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import facturx
from stdnum import luhn

from bench.common import write_result
from billing import validation
from billing.documents import prepare_fonts, render_pdf
from billing.invoice_html import invoice_html
from billing.metering import PARIS, Month
from billing.service import BillingService
from billing.settings import BillingSettings
from core.db import create_pool, open_database
from core.ids import new_id
from core.migrate import prepare_database
from core.objectstore import FilesystemObjectStore
from core.settings import DatabaseSettings, Settings
from journal.service import JournalService

TENANTS, CAMERAS_PER_TENANT = 200, 10
MONTH = Month(2026, 10)
RNG = random.Random(2026)
SEGMENT_BYTES_PER_DAY = 43_200_000_000  # 4 Mbit/s around the clock


def siret(n: int) -> str:
    siren8 = f"2195{n:04d}"
    s9 = siren8 + luhn.calc_check_digit(siren8)
    base = s9 + "0001"
    return base + luhn.calc_check_digit(base)


def at(day: int, hour: float = 0.0) -> datetime:
    return datetime(2026, 10, day, tzinfo=PARIS) + timedelta(hours=hour)


async def build(department: asyncpg.Connection) -> tuple[uuid.UUID, list[tuple[Any, ...]], dict[str, Any]]:
    """The department, its tenants, cameras, catalogue, contracts and the month's past (registry history is
    returned: only the owner writes it, once these rows are committed)."""
    department_id = new_id()
    await department.execute("INSERT INTO departments (id, code, name) VALUES ($1, '95', 'Val-d''Oise')",
                             department_id)
    await department.execute(
        "INSERT INTO tenants (id, department_id, kind, name, live_supervision) VALUES ($1, $2, 'department', "
        "'Département', true)", new_id(), department_id)
    await department.execute(
        "INSERT INTO communes (insee_code, name, department_code) SELECT '95' || lpad(g::text, 3, '0'), "
        "'Commune ' || g, '95' FROM generate_series(700, 699 + $1) g ON CONFLICT DO NOTHING", TENANTS)
    tenants = [new_id() for _ in range(TENANTS)]
    codes = [f"95{700 + i:03d}" for i in range(TENANTS)]
    await department.executemany(
        "INSERT INTO tenants (id, department_id, kind, name, insee_code, live_supervision) "
        "VALUES ($1, $2, 'commune', $3, $4, $5)",
        [(t, department_id, f"Commune {i}", codes[i], i % 3 != 0) for i, t in enumerate(tenants)])
    sites = [new_id() for _ in tenants]
    await department.executemany(
        "INSERT INTO sites (id, tenant_id, name, kind, insee_code) VALUES ($1, $2, 'Centre', 'public_space', $3)",
        list(zip(sites, tenants, codes, strict=True)))
    cameras: list[tuple[uuid.UUID, uuid.UUID, str]] = []
    for i, tenant in enumerate(tenants):
        cameras += [(new_id(), tenant, codes[i]) for _ in range(CAMERAS_PER_TENANT)]
    site_of = dict(zip(tenants, sites, strict=True))
    await department.executemany(
        "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, insee_code, status) "
        "VALUES ($1, $2, $3, $4, 'rtsp://10.0.0.1/s', $5, 'online')",
        [(c, t, site_of[t], f"Caméra {n % CAMERAS_PER_TENANT + 1}", code) for n, (c, t, code) in enumerate(cameras)])
    plans = {code: new_id() for code in ("recording", "live", "detection")}
    prices = {"recording": 31, "live": 90, "detection": 120}
    await department.execute(
        "INSERT INTO billing_issuers (department_id, legal_name, siret, vat_number, address_line, postcode, city, "
        "iban) VALUES ($1, 'Syndicat mixte Val-d''Oise Numérique', '25950001500013', 'FR76259500015', "
        "'2 avenue du Parc', '95000', 'Cergy', 'FR7630006000011234567890189')", department_id)
    for code, plan_id in plans.items():
        await department.execute("INSERT INTO billing_plans (id, department_id, code, name) VALUES ($1, $2, $3, $4)",
                                 plan_id, department_id, code, f"Offre {code}")
        await department.execute(
            "INSERT INTO billing_plan_prices (id, department_id, plan_id, effective_from, monthly_price_ht, "
            "detector_hour_price) VALUES ($1, $2, $3, '2026-01-01', $4, $5)",
            new_id(), department_id, plan_id, prices[code], 0.5 if code == "detection" else None)
    contracts = {t: new_id() for t in tenants}
    await department.executemany(
        "INSERT INTO billing_contracts (id, tenant_id, department_id, reference, start_date, buyer_name, buyer_siret, "
        "buyer_address_line, buyer_postcode, buyer_city, chorus_service_code, billing_contact_name, "
        "billing_contact_email, availability_target, sla_credit_percent_per_point, sla_credit_cap_percent) "
        "VALUES ($1, $2, $3, $4, '2026-01-01', $5, $6, '1 place de la Mairie', '95000', 'Ville', 'SERV', "
        "'Finances', 'finances@mairie.test', 99.5, 10, 50)",
        [(contracts[t], t, department_id, f"CV-{i:04d}", f"Commune {i}", siret(i)) for i, t in enumerate(tenants)])
    assignments, history, gaps = [], [], []
    codes_list = list(plans)
    for n, (camera, tenant, code) in enumerate(cameras):
        plan = codes_list[n % 3]
        if RNG.random() < 0.10:  # a plan change mid-month
            day = RNG.randint(5, 25)
            other = codes_list[(n + 1) % 3]
            assignments += [(camera, tenant, contracts[tenant], plans[plan], date(2026, 1, 1), date(2026, 10, day - 1)),
                            (camera, tenant, contracts[tenant], plans[other], date(2026, 10, day), None)]
        else:
            assignments.append((camera, tenant, contracts[tenant], plans[plan], date(2026, 1, 1), None))
        roll = RNG.random()
        if roll < 0.05:  # added during the month
            history.append((tenant, camera, at(RNG.randint(2, 31), RNG.uniform(0, 23)), "added", "online", code))
        else:
            history.append((tenant, camera, datetime(2026, 1, 15, tzinfo=PARIS), "added", "online", code))
        if 0.05 <= roll < 0.08:  # removed during the month
            history.append((tenant, camera, at(RNG.randint(2, 30), RNG.uniform(0, 23)), "removed", "online", code))
        elif 0.08 <= roll < 0.13:  # suspended a few days
            first = RNG.randint(2, 25)
            history += [(tenant, camera, at(first, 9), "status_changed", "disabled", code),
                        (tenant, camera, at(first + RNG.randint(1, 4), 17), "status_changed", "online", code)]
        for _ in range(RNG.randrange(0, 6)):  # short gaps: minutes to hours
            begins = at(RNG.randint(1, 31), RNG.uniform(0, 23))
            gaps.append((new_id(), tenant, camera, begins, begins + timedelta(minutes=RNG.lognormvariate(3, 1.2))))
        if RNG.random() < 0.04:  # a long outage: an SLA credit
            begins = at(RNG.randint(1, 28), RNG.uniform(0, 23))
            gaps.append((new_id(), tenant, camera, begins, begins + timedelta(hours=RNG.uniform(8, 60))))
    await department.executemany(
        "INSERT INTO billing_contract_cameras (id, tenant_id, department_id, contract_id, camera_id, plan_id, "
        "start_date, end_date) VALUES (gen_random_uuid(), $2, $7, $3, $1, $4, $5, $6)",
        [(*a, department_id) for a in assignments])
    # Gaps never overlap on one camera in the recorder's index; drop the few random ones that would.
    gaps.sort(key=lambda g: (g[2], g[3]))
    kept: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, datetime, datetime]] = []
    last_end: dict[uuid.UUID, datetime] = {}
    for g in gaps:
        if g[2] not in last_end or g[3] >= last_end[g[2]]:
            kept.append(g)
            last_end[g[2]] = g[4]
    await department.executemany(
        "INSERT INTO recording_gaps (id, tenant_id, camera_id, start_at, end_at, cause) "
        "VALUES ($1, $2, $3, $4, $5, 'camera_unreachable')", kept)
    await department.execute(
        "INSERT INTO detector_usage (tenant_id, day, detector_seconds, frames) SELECT t, d::date, 1800 + random() * "
        "3600, 1000 FROM unnest($1::uuid[]) t, generate_series('2026-10-01'::date, '2026-10-31', '1 day') d",
        tenants)
    await department.execute(
        "INSERT INTO recording_segments (id, tenant_id, camera_id, start_at, end_at, size_bytes, sha256, object_key, "
        "recorder_id) SELECT gen_random_uuid(), c.tenant_id, c.id, d, d + interval '1 day', $1, repeat('0', 64), "
        "'k', 'bench' FROM cameras c, generate_series(timestamptz '2026-10-01 00:00+02', "
        "timestamptz '2026-10-31 00:00+01', '1 day') d", SEGMENT_BYTES_PER_DAY)
    return department_id, history, {"history": len(history), "gaps": len(kept), "assignments": len(assignments)}


def _weasyprint_alone(html: str, font_dir: str) -> float:
    """The baseline, timed inside a pool process like the documents: weasyprint on the invoice's HTML, nothing else."""
    started = time.perf_counter()
    render_pdf(html, Path(font_dir))
    return (time.perf_counter() - started) * 1000


def _validate(pdf: bytes) -> bool:
    _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    try:
        validation.validate(xml)
    except validation.InvalidDocument:
        return False
    return True


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="vigie-bench-billing-"))
    name = f"vigie_bench_billing_{uuid.uuid4().hex[:8]}"
    settings = await prepare_database(Settings(environment="test", var_dir=work, database=DatabaseSettings(name=name)))
    department = await create_pool(settings.database.department_dsn, min_size=1, max_size=2)
    owner = await asyncpg.connect(settings.database.owner_dsn)
    workers = os.cpu_count() or 1
    try:
        started = time.perf_counter()
        async with department.acquire() as conn, conn.transaction():
            department_id, history, made = await build(conn)  # type: ignore[arg-type]
        await owner.executemany(
            "INSERT INTO camera_registry_events (tenant_id, camera_id, occurred_at, kind, status, name, insee_code) "
            "VALUES ($1, $2, $3, $4, $5, 'Caméra', $6)", history)
        # A month's rows accrue over the month under autovacuum; loaded at once here, they are vacuumed and
        # analysed before the clock starts, so the run is not measured against the load's own aftermath.
        await owner.execute("VACUUM ANALYZE")
        print(f"built {TENANTS} tenants, {TENANTS * CAMERAS_PER_TENANT} cameras, {made} in "
              f"{time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.2f}")
        db = await open_database(settings.database.app_dsn, app_pool_size=(2, 6))
        billing_settings = BillingSettings(font_cache_dir=work / "fonts")
        service = BillingService(db, JournalService(), FilesystemObjectStore(work / "objects"), billing_settings,
                                 render_workers=workers)
        service.renderer()  # the font is prepared once per machine, not per run
        t0 = time.perf_counter()
        run = await service.run_department_month("95", str(MONTH))
        t1 = time.perf_counter()
        ids = [ref.invoice_id for ref in run.outcome.issued]
        stored = await service.render_documents(department_id, ids)
        t2 = time.perf_counter()
        print(f"run: {len(ids)} issued in {t1 - t0:.1f} s, {len(stored)} documents in {t2 - t1:.1f} s "
              f"({workers} processes); problems: {len(run.outcome.problems)}; load average "
              f"{os.getloadavg()[0]:.2f}")
        files = await service.stored_documents(department_id, ids)
        t3 = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            valid = sum(pool.map(_validate, [pdf for _, pdf in files], chunksize=8))
        print(f"validation: {valid} of {len(files)} valid (XSD + EN 16931 schematron) in "
              f"{time.perf_counter() - t3:.1f} s over {workers} processes")
        # Baseline: weasyprint alone on the same HTML (every invoice), same font, the same number of processes,
        # timed inside them like the documents were; the first document of each process (warm-up) is left out.
        fonts = prepare_fonts(billing_settings.font_source_dir, billing_settings.font_cache_dir)
        htmls = [invoice_html(await service.invoice_for_job(department_id, i)) for i in ids]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_weasyprint_alone, htmls[:workers], [str(fonts)] * workers))
            baseline = list(pool.map(_weasyprint_alone, htmls, [str(fonts)] * len(htmls)))
        figures = {
            "cameras": TENANTS * CAMERAS_PER_TENANT,
            "tenants": TENANTS,
            "run_s": round(t2 - t0, 2),
            "invoices": len(ids),
            "invoices_validated": valid,
            "render_ms_per_invoice": round(statistics.mean(service.renderer().render_ms), 1),
            "baseline_render_ms": round(statistics.mean(baseline), 1),
        }
        print(write_result("billing", figures).read_text())
        service.close()
        await db.close()
    finally:
        await owner.close()
        await department.close()
        admin = await asyncpg.connect(settings.database.admin_dsn.get_secret_value())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
