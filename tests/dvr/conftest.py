"""DVR fixtures: object stores of every kind (filesystem, moto over TLS, Ceph RGW), one space per test tenant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.objectstore import FilesystemObjectStore, ObjectStore
from core.objectstore_s3 import S3ObjectStore
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
