"""Billing through the HTTP API: problem+json for bad input (SIRET 422 naming the field, overlap 409, month not
ended 422, backdated price 409), a month billed and its Factur-X PDF served, the mayor's report, and the finance
role: granted only in the department's tenant by a department admin, refused every media route."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from billing.metering import PARIS
from cli.seed import SeedResult
from core.settings import Settings
from tests.api.conftest import Actor
from tests.api.people import invite_and_enrol

pytestmark = pytest.mark.integration

ADMIN, FINANCE, CERGY = "admin@valdoise.demo", "finances@valdoise.demo", "maire@cergy.demo"
ISSUER = {"legal_name": "Syndicat mixte", "siret": "25950001500013", "vat_number": "FR76259500015",
          "address_line": "2 avenue du Parc", "postcode": "95000", "city": "Cergy"}


def contract(tenant_id: uuid.UUID, reference: str, **extra: Any) -> dict[str, Any]:
    return {"tenant_id": str(tenant_id), "reference": reference, "start_date": "2026-01-01",
            "buyer_name": "Commune de Cergy", "buyer_siret": "21950127700012", "buyer_address_line": "3 place",
            "buyer_postcode": "95000", "buyer_city": "Cergy", "chorus_service_code": "SERV",
            "billing_contact_name": "Finances", "billing_contact_email": "finances@cergy.test", **extra}


@pytest.fixture(scope="module")
async def owner(api_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(api_settings.database.owner_dsn)
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def billed(client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
                 owner: asyncpg.Connection) -> dict[str, Any]:
    """Cergy's c4 on a plan since January and in the registry since 2025: October billed through the API."""
    admin = actors[ADMIN].headers
    assert (await client.put("/billing/issuer", json=ISSUER, headers=admin)).status_code == 200
    plan = await client.post("/billing/plans", headers=admin, json={
        "code": "live", "name": "Supervision", "price": {"effective_from": "2026-01-01", "monthly_price_ht": "90"}})
    assert plan.status_code == 201, plan.text
    created = await client.post("/billing/contracts", json=contract(seeded.tenants["cergy"], "API-1"), headers=admin)
    assert created.status_code == 201, created.text
    camera = await client.post(f"/billing/contracts/{created.json()['id']}/cameras", headers=admin, json={
        "camera_id": str(seeded.cameras["c4"]), "plan_id": plan.json()["id"], "from_date": "2026-01-01"})
    assert camera.status_code == 201, camera.text
    await owner.execute(
        "INSERT INTO camera_registry_events (tenant_id, camera_id, occurred_at, kind, status, name, insee_code) "
        "VALUES ($1, $2, $3, 'added', 'online', 'Parvis nord', '95127')",
        seeded.tenants["cergy"], seeded.cameras["c4"], datetime(2025, 12, 1, tzinfo=PARIS))
    run = await client.post("/billing/runs", json={"month": "2026-10"}, headers=actors[FINANCE].headers)
    assert run.status_code == 201, run.text
    return {"plan": plan.json(), "contract": created.json(), "run": run.json()}


async def test_bad_input_is_problem_json(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, billed: dict[str, Any]
) -> None:
    admin = actors[ADMIN].headers
    bad = await client.post("/billing/contracts", headers=admin,
                            json=contract(seeded.tenants["marines"], "API-2", buyer_siret="21950127700013"))
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["field"] == "buyer_siret"
    overlap = await client.post("/billing/contracts", headers=admin,
                                json=contract(seeded.tenants["cergy"], "API-3", start_date="2026-06-01"))
    assert overlap.status_code == 409
    not_ended = await client.post("/billing/runs", json={"month": "2026-12"}, headers=admin)
    assert (not_ended.status_code, not_ended.json()["field"]) == (422, "month")
    malformed = await client.post("/billing/runs", json={"month": "2026-13"}, headers=admin)
    assert malformed.status_code == 400
    backdated = await client.post(f"/billing/plans/{billed['plan']['id']}/prices", headers=admin,
                                  json={"effective_from": "2026-10-01", "monthly_price_ht": "99"})
    assert backdated.status_code == 409
    future = await client.post(f"/billing/plans/{billed['plan']['id']}/prices", headers=admin,
                               json={"effective_from": "2027-01-01", "monthly_price_ht": "99"})
    assert future.status_code == 201
    price = await client.post(f"/billing/plans/{billed['plan']['id']}/prices", headers=admin,
                              json={"effective_from": "2027-02-01", "monthly_price_ht": "100000"})
    assert price.status_code == 400  # the schema's limit is the database's


async def test_a_month_billed_and_served(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, billed: dict[str, Any]
) -> None:
    (issued,) = billed["run"]["outcome"]["issued"]
    assert issued["total_ttc"] == "108.00"  # 31 days of 90.00, + 20 % VAT
    mine = await client.get("/billing/invoices", params={"month": "2026-10"}, headers=actors[CERGY].headers)
    assert [i["number"] for i in mine.json()["items"]] == [issued["number"]]
    pdf = await client.get(f"/billing/invoices/{issued['invoice_id']}/document", headers=actors[CERGY].headers)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    marines = actors["maire@marines.demo"].headers
    foreign = await client.get(f"/billing/invoices/{issued['invoice_id']}", headers=marines)
    assert foreign.status_code == 404
    report = await client.get(f"/billing/reports/{seeded.tenants['cergy']}", params={"month": "2026-10"},
                              headers=actors[CERGY].headers)
    assert report.status_code == 200
    assert report.json()["invoice"]["number"] == issued["number"]
    document = await client.get(f"/billing/reports/{seeded.tenants['cergy']}/document", params={"month": "2026-10"},
                                headers=actors[CERGY].headers)
    assert document.headers["content-type"] == "application/pdf"
    deposit = await client.get("/billing/deposit", params={"month": "2026-10"}, headers=actors[FINANCE].headers)
    assert deposit.headers["content-type"] == "application/zip"
    assert (await client.get("/billing/deposit", params={"month": "2026-10"},
                             headers=actors[CERGY].headers)).status_code == 403


async def test_finance_sees_no_image(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    finance = actors[FINANCE]
    assert finance.role == "finance"
    camera = seeded.cameras["c4"]
    alert_id, clip_id, requisition_id, export_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    media = [
        ("post", f"/cameras/{camera}/playback", {"start": "2026-11-26T00:00:00Z", "end": "2026-11-26T00:10:00Z",
                                                 "motive": "billing"}),
        ("post", f"/clips/{clip_id}/view", {"motive": "billing"}),
        ("post", f"/alerts/{alert_id}/verify", {"media": "snapshot", "motive": "billing"}),
        ("post", f"/alerts/{alert_id}/clip/view", {"motive": "billing"}),
        ("post", f"/requisitions/{requisition_id}/exports", {"motive": "billing"}),
        ("post", f"/exports/{export_id}/download", {"motive": "billing"}),
        ("get", "/cameras", None),
        ("get", f"/cameras/{camera}", None),
        ("get", "/alerts", None),
    ]
    for method, url, body in media:
        response = await client.request(method.upper(), url, json=body, headers=finance.headers)
        assert response.status_code == 403, (url, response.status_code, response.text)


async def test_the_finance_role_is_granted_by_department_admins_in_the_department_tenant(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    body = {"email": f"f{uuid.uuid4().hex[:6]}@valdoise.test", "display_name": "Finances",
            "membership": {"tenant_id": str(seeded.tenants["departement"]), "role": "finance"}}
    by_mayor = await client.post("/users", json={**body, "membership": {"tenant_id": str(seeded.tenants["cergy"]),
                                                                         "role": "finance"}},
                                 headers=actors[CERGY].headers)
    assert by_mayor.status_code in (403, 422)
    in_commune = await client.post("/users", headers=actors[ADMIN].headers, json={
        **body, "membership": {"tenant_id": str(seeded.tenants["cergy"]), "role": "finance"}})
    assert (in_commune.status_code, in_commune.json()["field"]) == (422, "membership.role")
    granted = await invite_and_enrol(client, actors[ADMIN], body, "finances-long-password-2026")
    assert granted["invitation"]["role"] == "finance"
    assert granted["totp_secret"] is not None  # finance enrols, and signs in with, a second factor
