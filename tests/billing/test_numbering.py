"""Gapless numbering under concurrency: runs of two months and a duplicate run, really at once on their own pools,
while another transaction takes a number and rolls back: every number of the year used once, none skipped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from billing.service import BillingService
from billing.settings import BillingSettings
from core.db import Database, create_pool
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from core.tenancy import Principal
from journal.service import JournalService
from tests.billing.conftest import Setup

pytestmark = pytest.mark.integration


async def test_two_runs_at_once_leave_no_gap_and_no_duplicate(
    settings: Settings, people: dict[str, Principal], configured: Setup, department_pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    services, pools = [], []
    for _ in range(3):  # three runs, each its own pool of connections: as if three processes
        pool = await create_pool(settings.database.app_dsn, min_size=2, max_size=4)
        pools.append(pool)
        services.append(BillingService(Database(pool), JournalService(), FilesystemObjectStore(tmp_path),
                                       BillingSettings(font_cache_dir=tmp_path / "fonts"), render_workers=1))
    department = configured.seed.department_id

    async def take_a_number_and_roll_back() -> None:
        async with Database(pools[0]).for_tenants([], department_id=department) as conn:
            await conn.execute(
                "INSERT INTO billing_number_counters AS c (department_id, year, last_number) VALUES ($1, 2026, 1) "
                "ON CONFLICT (department_id, year) DO UPDATE SET last_number = c.last_number + 1", department)
            await asyncio.sleep(0.3)
            raise RuntimeError("this transaction fails after taking a number")

    finance = people["finance"]
    try:
        results = await asyncio.gather(
            services[0].run_month(finance, "2026-07"),
            services[1].run_month(finance, "2026-08"),
            services[2].run_month(finance, "2026-07"),
            take_a_number_and_roll_back(),
            return_exceptions=True,
        )
    finally:
        for pool in pools:
            await pool.close()
    july, august, july_again, failed = results
    assert isinstance(failed, RuntimeError)
    assert not isinstance(july, BaseException)
    assert not isinstance(august, BaseException)
    assert not isinstance(july_again, BaseException)
    # The same month twice at once: each tenant issued once, by one run or the other.
    july_issued = [i.tenant_id for i in july.outcome.issued + july_again.outcome.issued]
    assert sorted(july_issued) == sorted([configured.tenant("versailles"), configured.tenant("houdan")])
    assert len(july.outcome.already_issued) + len(july_again.outcome.already_issued) == 2
    assert len(august.outcome.issued) == 2
    rows = await department_pool.fetch(
        "SELECT number, sequence FROM billing_invoices WHERE department_id = $1 AND year = 2026 ORDER BY sequence",
        department,
    )
    sequences = [r["sequence"] for r in rows]
    assert sequences == list(range(1, len(sequences) + 1))
    assert len({r["number"] for r in rows}) == len(rows)
    live = await department_pool.fetchval(
        "SELECT count(*) FROM billing_invoices WHERE department_id = $1 AND period_start = '2026-07-01' "
        "AND kind = 'invoice' AND status <> 'cancelled'", department)
    assert live == 2
