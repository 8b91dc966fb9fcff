"""DVR fixtures: object stores of every kind (filesystem, moto over TLS, Ceph RGW), one space per test tenant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest

from core.objectstore import FilesystemObjectStore, ObjectStore
from core.objectstore_s3 import S3ObjectStore
from core.tenancy import Principal, Role, Scope
from tests.dvr.s3servers import CephRgw, MotoServer, ceph_available


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ceph: needs the single-node Ceph RGW (Debian radosgw, ceph-mon, ceph-osd)")


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ceph_rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephRgw]:
    if not ceph_available():
        pytest.fail("Ceph RGW is not installed: run `make system-deps` (scripts/apt-packages/dvr.txt)")
    rgw = CephRgw(tmp_path_factory.mktemp("ceph") / "cluster")
    rgw.start()
    yield rgw
    rgw.stop()


@dataclass(frozen=True)
class StoreUnderTest:
    """An adapter plus what its server is known not to do, so a test can state the gap rather than hide it."""

    name: str
    store: ObjectStore
    refuses_shortening: bool
    runs_lifecycle: bool


def _moto_store(server: MotoServer) -> S3ObjectStore:
    return S3ObjectStore(server.endpoint, access_key="testing", secret_key="testing", secure=True,
                         ca_file=server.ca_file)


def _ceph_store(rgw: CephRgw) -> S3ObjectStore:
    return S3ObjectStore(rgw.endpoint, access_key=rgw.access_key, secret_key=rgw.secret_key, secure=False)


@pytest.fixture(params=["fs", "moto", pytest.param("ceph", marks=pytest.mark.ceph)])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    if request.param == "fs":
        yield StoreUnderTest("fs", FilesystemObjectStore(tmp_path / "objects", presign_secret=b"k" * 32,
                                                         presign_base_url="http://127.0.0.1:1/media"),
                             refuses_shortening=True, runs_lifecycle=False)
    elif request.param == "moto":
        yield StoreUnderTest("moto", _moto_store(request.getfixturevalue("moto_server")),
                             refuses_shortening=False, runs_lifecycle=False)
    else:
        yield StoreUnderTest("ceph", _ceph_store(request.getfixturevalue("ceph_rgw")),
                             refuses_shortening=True, runs_lifecycle=True)


@pytest.fixture
def tenant() -> uuid.UUID:
    return uuid.uuid4()


async def authorise(conn: asyncpg.Connection, tenant_id: uuid.UUID, camera_id: uuid.UUID, *,
                    valid_from: date | None = None, valid_until: date | None = None) -> uuid.UUID:
    """A prefectoral authorisation recorded by the department (current from a year ago for four years by default)."""
    authorisation_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO camera_authorisations (id, tenant_id, camera_id, prefectoral_order_number, purposes, "
        "max_retention_days, valid_from, valid_until) VALUES ($1, $2, $3, $4, ARRAY['voie publique'], 30, $5, $6)",
        authorisation_id, tenant_id, camera_id, f"AP-{camera_id.hex[:8]}",
        valid_from or date.today() - timedelta(days=365), valid_until or date.today() + timedelta(days=4 * 365))
    return authorisation_id


@dataclass
class World:
    """One department, one tenant and one site, created with the department role; cameras added on demand."""

    pool: asyncpg.Pool
    department_id: uuid.UUID
    tenant_id: uuid.UUID
    site_id: uuid.UUID

    async def camera(self, url: str, *, name: str | None = None, tenant_id: uuid.UUID | None = None,
                     site_id: uuid.UUID | None = None, authorised: bool = True) -> uuid.UUID:
        """A camera, with a current prefectoral authorisation unless `authorised` is false (it would not record)."""
        camera_id = uuid.uuid4()
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, insee_code, status) "
                "VALUES ($1, $2, $3, $4, $5, '95127', 'online')", camera_id, tenant_id or self.tenant_id,
                site_id or self.site_id, name or f"cam-{camera_id.hex[:8]}", url)
            if authorised:
                await authorise(conn, tenant_id or self.tenant_id, camera_id)
        return camera_id

    async def tenant(self, retention_days: int = 30) -> tuple[uuid.UUID, uuid.UUID]:
        tenant_id, site_id = uuid.uuid4(), uuid.uuid4()
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO tenants (id, department_id, kind, name, retention_days) VALUES ($1, $2, 'epci', $3, $4)",
                tenant_id, self.department_id, f"dvr-test-{tenant_id.hex[:8]}", retention_days)
            await conn.execute(
                "INSERT INTO sites (id, tenant_id, name, kind, insee_code) VALUES ($1, $2, 'Site', 'public_space', "
                "'95127')", site_id, tenant_id)
        return tenant_id, site_id

    def principal(self, role: Role = Role.SUPERVISOR, tenants: set[uuid.UUID] | None = None) -> Principal:
        return Principal(user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=role, home_tenant_id=self.tenant_id,
                         department_id=self.department_id,
                         scope=Scope(frozenset(tenants or {self.tenant_id}), self.department_id),
                         display_name="Agent Test")


@pytest.fixture(scope="session")
async def world(department_pool: asyncpg.Pool) -> World:
    async with department_pool.acquire() as conn:
        # A department of its own (Mayotte's code), so the demo seed of other suites finds '95' untouched.
        department_id = await conn.fetchval("SELECT id FROM departments WHERE code = '976'")
        if department_id is None:
            department_id = uuid.uuid4()
            await conn.execute("INSERT INTO departments (id, code, name) VALUES ($1, '976', 'DVR tests')",
                               department_id)
    w = World(department_pool, department_id, uuid.uuid4(), uuid.uuid4())
    w.tenant_id, w.site_id = await w.tenant()
    return w
