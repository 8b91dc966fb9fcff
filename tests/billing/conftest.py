"""Billing fixtures: the seeded demo department, principals of each billing role, a BillingService on a filesystem
object store, and helpers that write the past a test needs (registry history as its owner, gaps as the recorder)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from billing.metering import PARIS
from billing.model import ContractCreate, IssuerInput, PlanCreate, PriceInput
from billing.service import BillingService
from billing.settings import BillingSettings
from cli.seed import SeedResult
from core.db import Database
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from core.tenancy import Principal, Role, Scope
from journal.service import JournalService

# Valid SIRETs (Luhn): the buyer communes and the issuing syndicat in the tests.
SIRET_VERSAILLES = "21950127700012"
SIRET_HOUDAN = "21950355400012"
SIRET_ISSUER = "25950001500013"


def paris(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=PARIS)


# A department of their own (Yvelines), so these tests share nothing with the demo department other suites use.
COMMUNES = {"versailles": ("78646", "Versailles"), "mantes": ("78361", "Mantes-la-Jolie"),
            "houdan": ("78310", "Houdan"), "departement": ("78646", "Versailles")}
# (tenant key, kind, live supervision); (camera key, tenant key, name)
TENANTS = [("departement", "department", True), ("versailles", "commune", True), ("mantes", "commune", True),
           ("houdan", "commune", False)]
CAMERAS = [("c1", "departement", "Collège — entrée"), ("c4", "versailles", "Parvis nord"),
           ("c5", "versailles", "Gare — quais"), ("c6", "mantes", "Place du marché"), ("c8", "houdan", "Stade")]


@pytest.fixture(scope="session")
async def billing_seed(department_pool: asyncpg.Pool) -> SeedResult:
    seed = SeedResult(department_id=uuid.uuid4())
    async with department_pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO departments (id, code, name) VALUES ($1, '78', 'Yvelines')",
                           seed.department_id)
        await conn.executemany(
            "INSERT INTO communes (insee_code, name, department_code) VALUES ($1, $2, '78') ON CONFLICT DO NOTHING",
            list(set(COMMUNES.values())))
        for key, kind, live in TENANTS:
            seed.tenants[key] = uuid.uuid4()
            name = "Département des Yvelines" if kind == "department" else COMMUNES[key][1]
            await conn.execute(
                "INSERT INTO tenants (id, department_id, kind, name, insee_code, live_supervision) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                seed.tenants[key], seed.department_id, kind, name, None if kind == "department" else COMMUNES[key][0],
                live)
        for key, tenant, name in CAMERAS:
            site, seed.cameras[key] = uuid.uuid4(), uuid.uuid4()
            seed.camera_tenants[key] = seed.tenants[tenant]
            await conn.execute("INSERT INTO sites (id, tenant_id, name, kind, insee_code) VALUES ($1, $2, $3, "
                               "'public_space', $4)", site, seed.tenants[tenant], f"Site {key}", COMMUNES[tenant][0])
            await conn.execute(
                "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, insee_code, status) "
                "VALUES ($1, $2, $3, $4, 'rtsp://10.0.0.1/x', $5, 'online')",
                seed.cameras[key], seed.tenants[tenant], site, name, COMMUNES[tenant][0])
        seed.forces["pn"] = uuid.uuid4()
        await conn.execute("INSERT INTO forces (id, department_id, kind, name) VALUES ($1, $2, 'police_nationale', "
                           "'CSP de Versailles')", seed.forces["pn"], seed.department_id)
        await conn.execute("INSERT INTO users (id, department_id, email, display_name) VALUES ($1, $2, "
                           "'policier@versailles.test', 'Gardien de la paix')", uuid.uuid4(), seed.department_id)
    return seed


@pytest.fixture(scope="session")
async def db(app_pool: asyncpg.Pool) -> Database:
    """The runtime role only, as the API holds it: billing never needs the RLS-bypassing department role."""
    return Database(app_pool)


@pytest.fixture(scope="session")
async def billing(
    db: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BillingService]:
    root = tmp_path_factory.mktemp("billing")
    service = BillingService(
        db,
        JournalService(),
        FilesystemObjectStore(Path(root) / "objects"),
        BillingSettings(font_cache_dir=Path(root) / "fonts"),
        render_workers=1,
    )
    yield service
    service.close()


def _principal(role: Role, home: uuid.UUID, department_id: uuid.UUID, tenants: set[uuid.UUID],
               department_scope: bool) -> Principal:
    return Principal(
        user_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        role=role,
        home_tenant_id=home,
        department_id=department_id,
        scope=Scope(frozenset(tenants), department_id=department_id if department_scope else None),
    )


@pytest.fixture(scope="session")
def people(billing_seed: SeedResult) -> dict[str, Principal]:
    """The scopes identity gives each role (department staff: supervised tenants; finance: every member tenant)."""
    t, dept = billing_seed.tenants, billing_seed.department_id
    supervised = {t["departement"], t["versailles"], t["mantes"]}
    return {
        "admin": _principal(Role.DEPARTMENT_ADMIN, t["departement"], dept, supervised, True),
        "finance": _principal(Role.FINANCE, t["departement"], dept, set(t.values()), True),
        "operator": _principal(Role.OPERATOR, t["departement"], dept, supervised, True),
        "versailles": _principal(Role.TENANT_ADMIN, t["versailles"], dept, {t["versailles"]}, False),
        "houdan": _principal(Role.TENANT_ADMIN, t["houdan"], dept, {t["houdan"]}, False),
    }


@pytest.fixture(scope="session")
async def owner(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """The schema owner: the only role that may write registry history, here to give cameras a past."""
    conn = await asyncpg.connect(settings.database.owner_dsn)
    yield conn
    await conn.close()


async def history(owner: asyncpg.Connection, tenant_id: uuid.UUID, camera_id: uuid.UUID,
                  events: Sequence[tuple[datetime, str, str]]) -> None:
    await owner.executemany(
        "INSERT INTO camera_registry_events (tenant_id, camera_id, occurred_at, kind, status, name, insee_code) "
        "SELECT $1, $2, $3, $4, $5, c.name, c.insee_code FROM (SELECT name, insee_code FROM cameras WHERE id = $2 "
        "UNION ALL SELECT 'removed camera', '78646' LIMIT 1) c",
        [(tenant_id, camera_id, at, kind, status) for at, kind, status in events],
    )


async def gap(department_pool: asyncpg.Pool, tenant_id: uuid.UUID, camera_id: uuid.UUID, start: datetime,
              end: datetime) -> None:
    await department_pool.execute(
        "INSERT INTO recording_gaps (id, tenant_id, camera_id, start_at, end_at, cause) "
        "VALUES ($1, $2, $3, $4, $5, 'camera_unreachable')",
        uuid.uuid4(), tenant_id, camera_id, start, end,
    )


def contract_for(tenant_id: uuid.UUID, reference: str, siret: str, start: date, **extra: object) -> ContractCreate:
    values: dict[str, object] = {
        "tenant_id": tenant_id, "reference": reference, "start_date": start, "buyer_name": f"Commune {reference}",
        "buyer_siret": siret, "buyer_address_line": "1 place de la Mairie", "buyer_postcode": "95000",
        "buyer_city": "Versailles", "chorus_service_code": "SERV-VIDEO", "engagement_number": "EJ-2026-01",
        "billing_contact_name": "Service finances", "billing_contact_email": "finances@mairie.test",
        **extra,
    }
    return ContractCreate(**values)  # type: ignore[arg-type]


ISSUER = IssuerInput(legal_name="Syndicat mixte Val-d'Oise Numérique", siret=SIRET_ISSUER,
                     vat_number="FR76259500015", address_line="2 avenue du Parc", postcode="95000", city="Versailles",
                     iban="FR7630006000011234567890189", payment_days=30)
PLANS = {
    "recording": PlanCreate(code="recording", name="Enregistrement seul",
                            price=PriceInput(effective_from=date(2026, 1, 1), monthly_price_ht="31.00")),
    "live": PlanCreate(code="live", name="Supervision en direct",
                       price=PriceInput(effective_from=date(2026, 1, 1), monthly_price_ht="90.00")),
    "detection": PlanCreate(code="detection", name="Supervision et détection",
                            price=PriceInput(effective_from=date(2026, 1, 1), monthly_price_ht="120.00",
                                             detector_hour_price="0.50")),
}


def days_before(day: date, n: int) -> date:
    return day - timedelta(days=n)


class Setup:
    """The catalogue, two contracts and the past of their cameras (see `configured`)."""

    def __init__(self, seed: SeedResult, plans: dict[str, uuid.UUID], contracts: dict[str, uuid.UUID]) -> None:
        self.seed = seed
        self.plans = plans
        self.contracts = contracts

    def tenant(self, key: str) -> uuid.UUID:
        return self.seed.tenants[key]

    def camera(self, key: str) -> uuid.UUID:
        return self.seed.cameras[key]


@pytest.fixture(scope="session")
async def configured(
    billing: BillingService, people: dict[str, Principal], billing_seed: SeedResult, owner: asyncpg.Connection,
    department_pool: asyncpg.Pool,
) -> Setup:
    """Versailles: c4 on `live` then `detection` from 16 October, with 12 hours of gap on 3 October; c5 on
    `recording`, added on 31 October at 15:00. Houdan: c8 on `recording`, suspended from 10 October 10:00 to 12
    October 14:00. Mantes-la-Jolie: c6 in service all year, no contract. Versailles used 2 hours of detector time in
    October and keeps 10 GB of recordings from 20 October."""
    admin = people["admin"]
    seed = billing_seed
    await billing.set_issuer(admin, ISSUER)
    plans = {code: (await billing.create_plan(admin, plan)).id for code, plan in PLANS.items()}
    versailles = await billing.create_contract(
        admin, contract_for(seed.tenants["versailles"], "CV-VERSAILLES", SIRET_VERSAILLES, date(2026, 1, 1)))
    houdan = await billing.create_contract(admin, contract_for(seed.tenants["houdan"], "CV-HOUDAN", SIRET_HOUDAN,
                                                              date(2026, 1, 1)))
    from billing.model import CameraPlanChange

    for contract, camera, plan, start in [
        (versailles.id, "c4", "live", date(2026, 1, 1)),
        (versailles.id, "c4", "detection", date(2026, 10, 16)),
        (versailles.id, "c5", "recording", date(2026, 1, 1)),
        (houdan.id, "c8", "recording", date(2026, 1, 1)),
    ]:
        await billing.change_camera_plan(admin, contract, CameraPlanChange(
            camera_id=seed.cameras[camera], plan_id=plans[plan], from_date=start))
    t, c = seed.tenants, seed.cameras
    await history(owner, t["versailles"], c["c4"], [(paris(2025, 12, 1), "added", "online")])
    await history(owner, t["versailles"], c["c5"], [(paris(2026, 10, 31, 15), "added", "online")])
    await history(owner, t["houdan"], c["c8"], [
        (paris(2025, 12, 1), "added", "online"),
        (paris(2026, 10, 10, 10), "status_changed", "disabled"),
        (paris(2026, 10, 12, 14), "status_changed", "online"),
    ])
    await history(owner, t["mantes"], c["c6"], [(paris(2025, 12, 1), "added", "online")])
    await gap(department_pool, t["versailles"], c["c4"], paris(2026, 10, 3, 8), paris(2026, 10, 3, 20))
    await department_pool.execute(
        "INSERT INTO detector_usage (tenant_id, day, detector_seconds, frames) VALUES ($1, '2026-10-05', 3600, 10), "
        "($1, '2026-10-06', 3600, 10)", t["versailles"])
    await department_pool.execute(
        "INSERT INTO recording_segments (id, tenant_id, camera_id, start_at, end_at, size_bytes, sha256, object_key, "
        "recorder_id) VALUES ($1, $2, $3, $4, $5, 10000000000, $6, 'k', 'r')",
        uuid.uuid4(), t["versailles"], c["c4"], paris(2026, 10, 19, 23, 50), paris(2026, 10, 20), "0" * 64)
    return Setup(seed, plans, {"versailles": versailles.id, "houdan": houdan.id})
