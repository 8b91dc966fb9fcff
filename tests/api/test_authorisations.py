"""Prefectoral authorisations are the prefecture's, recorded by the department (issue 11 item 5): a tenant admin can
neither record one for their own camera nor grant it décret 2023-828 event types; a department admin records it with
the scan of the order (a PDF, checked, fingerprinted, journaled), which the tenant admin reads."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.db import Database
from core.ids import new_id
from core.objectstore import FilesystemObjectStore
from inference.repository import DetectionRepository
from tenants.authorisations import AuthorisationService
from tenants.rules import ORDER_SCAN_MAX_BYTES
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


def _authorisation(event_types: list[str]) -> dict[str, object]:
    today = date.today()
    return {
        "prefectoral_order_number": f"AP-95-{uuid.uuid4().hex[:6]}",
        "purposes": ["crime_prevention", "terrorism_prevention"],
        "max_retention_days": 15,
        "valid_from": (today - timedelta(days=10)).isoformat(),
        "valid_until": (today + timedelta(days=700)).isoformat(),
        "event_types": [{"event_type": e, "legal_basis": "Arrêté préfectoral, art. 2",
                         "valid_from": today.isoformat(), "valid_until": (today + timedelta(days=90)).isoformat()}
                        for e in event_types],
    }


@pytest.fixture(scope="module")
async def scans(app: Litestar, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FilesystemObjectStore]:
    """The authorisation service of the running app, on a store of this module's own."""
    store = FilesystemObjectStore(Path(tmp_path_factory.mktemp("orders")), presign_secret=b"p" * 32,
                                  presign_base_url="http://testserver.local/media")
    services = app.state.services
    original = services.authorisations
    services.authorisations = AuthorisationService(services.db, store, services.journal)
    yield store
    services.authorisations = original


async def test_a_tenant_admin_cannot_record_a_prefectoral_authorisation(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, database: Database,
) -> None:
    mayor = actors["maire@cergy.demo"]
    camera = seeded.cameras["c4"]  # a Cergy camera: the mayor's own
    before = (await client.get(f"/cameras/{camera}/authorisations", headers=mayor.headers)).json()
    refused = await client.post(f"/cameras/{camera}/authorisations", json=_authorisation(["weapon", "crowd_movement"]),
                                headers=mayor.headers)
    assert refused.status_code == 403, refused.text
    assert "record prefectoral authorisations" in refused.json()["detail"]
    after = (await client.get(f"/cameras/{camera}/authorisations", headers=mayor.headers)).json()
    assert after == before  # the mayor still reads them, and nothing was added
    # Behind the role check, the database refuses the write from a transaction without the department directory.
    async with database.for_tenants([seeded.tenants["cergy"]]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO camera_authorisations (id, tenant_id, camera_id, prefectoral_order_number, purposes, "
                "max_retention_days, valid_from, valid_until) VALUES ($1, $2, $3, 'AP-forged', '{crime_prevention}', "
                "30, current_date, current_date + 300)", new_id(), seeded.tenants["cergy"], camera)


async def test_a_department_admin_records_an_authorisation_with_the_scan_of_the_order(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, scans: FilesystemObjectStore,
    department_pool: asyncpg.Pool,
) -> None:
    admin, mayor, operator = actors["admin@valdoise.demo"], actors["maire@cergy.demo"], actors[
        "operateur1@valdoise.demo"]
    camera = seeded.cameras["c5"]
    created = await client.post(f"/cameras/{camera}/authorisations", json=_authorisation(["weapon", "wrong_way"]),
                                headers=admin.headers)
    assert created.status_code == 201, created.text
    authorisation = created.json()
    assert [e["event_type"] for e in authorisation["event_types"]] == ["weapon", "wrong_way"]
    assert authorisation["department_recorded"] is True
    assert authorisation["order_scan"] is None
    url = f"/authorisations/{authorisation['id']}/order-scan"
    pdf = {"content-type": "application/pdf"}

    # Only a department admin files the scan, and only a PDF within the cap.
    assert (await client.put(url, content=PDF, headers={**mayor.headers, **pdf})).status_code == 403
    assert (await client.put(url, content=PDF, headers={**operator.headers, **pdf})).status_code == 403
    wrong_type = await client.put(url, content=PDF, headers={**admin.headers, "content-type": "image/png"})
    assert wrong_type.status_code == 415, wrong_type.text
    not_a_pdf = await client.put(url, content=b"\x89PNG\r\n\x1a\n" + bytes(2000), headers={**admin.headers, **pdf})
    assert not_a_pdf.status_code == 422, not_a_pdf.text
    assert "not a PDF" in not_a_pdf.json()["detail"]
    too_large = await client.put(url, content=PDF + bytes(ORDER_SCAN_MAX_BYTES), headers={**admin.headers, **pdf})
    assert too_large.status_code == 413, too_large.text
    assert (await client.get(url, headers=mayor.headers)).status_code == 404  # nothing filed yet

    filed = await client.put(url, content=PDF, headers={**admin.headers, **pdf})
    assert filed.status_code == 200, filed.text
    scan = filed.json()["order_scan"]
    assert (scan["sha256"], scan["size_bytes"]) == (hashlib.sha256(PDF).hexdigest(), len(PDF))

    # The tenant admin reads the authorisation and downloads the scan, byte for byte, fingerprint in the headers.
    read = await client.get(f"/authorisations/{authorisation['id']}", headers=mayor.headers)
    assert read.status_code == 200
    assert read.json()["order_scan"]["sha256"] == scan["sha256"]
    downloaded = await client.get(url, headers=mayor.headers)
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.content == PDF
    assert downloaded.headers["content-type"].startswith("application/pdf")
    assert downloaded.headers["repr-digest"].startswith("sha-256=:")

    async with department_pool.acquire() as conn:
        lines = await conn.fetch(
            "SELECT action, actor_role, details FROM access_journal WHERE target_type = 'authorisation' "
            "AND target_id = $1 ORDER BY position", authorisation["id"])
        stored = await conn.fetchrow(
            "SELECT recorded_by, order_scan_key, order_scan_version_id FROM camera_authorisations WHERE id = $1",
            uuid.UUID(authorisation["id"]))
    assert [(r["action"], r["actor_role"]) for r in lines] == [
        ("authorisation.create", "department_admin"),
        ("authorisation.order_filed", "department_admin"),
        ("authorisation.order_read", "tenant_admin"),
    ]
    assert scan["sha256"] in lines[1]["details"]
    assert stored is not None
    assert stored["recorded_by"] is not None
    in_store = await scans.get(seeded.tenants["cergy"], stored["order_scan_key"],
                               version_id=stored["order_scan_version_id"])
    assert in_store == PDF

    # Its grants are a legal basis for the detection rules of that camera.
    async with department_pool.acquire() as conn:
        bases = await DetectionRepository().legal_bases(conn, [camera])  # type: ignore[arg-type]
    assert {"weapon", "wrong_way"} <= {b["event_type"] for b in bases}


async def test_an_authorisation_a_tenant_admin_recorded_before_gives_no_legal_basis(
    seeded: SeedResult, department_pool: asyncpg.Pool,
) -> None:
    """Rows the migration flagged (recorded by a tenant admin when it was still possible) give no legal basis."""
    camera, tenant = seeded.cameras["c6"], seeded.tenants["marines"]
    authorisation = new_id()
    async with department_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO camera_authorisations (id, tenant_id, camera_id, prefectoral_order_number, purposes, "
            "max_retention_days, valid_from, valid_until, department_recorded) VALUES ($1, $2, $3, 'AP-self', "
            "'{crime_prevention}', 30, current_date - 1, current_date + 300, false)", authorisation, tenant, camera)
        await conn.execute(
            "INSERT INTO authorised_event_types (id, tenant_id, authorisation_id, event_type, legal_basis, valid_from, "
            "valid_until) VALUES ($1, $2, $3, 'weapon', 'self-granted', current_date - 1, current_date + 300)",
            new_id(), tenant, authorisation)
        bases = await DetectionRepository().legal_bases(conn, [camera])  # type: ignore[arg-type]
    assert "weapon" not in {b["event_type"] for b in bases}


async def test_the_new_routes_refuse_a_forged_or_missing_token(client: AsyncTestClient[Litestar]) -> None:
    """The forged-token rule holds on the routes issue 11 added for authorisations and exports."""
    some = uuid.uuid4()
    forged = {"authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}
    for method, path in (("PUT", f"/authorisations/{some}/order-scan"), ("GET", f"/authorisations/{some}/order-scan"),
                         ("GET", f"/export-jobs/{some}")):
        for headers in ({}, forged):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["content-type"].startswith("application/problem+json")
