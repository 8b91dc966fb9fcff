"""The mayor's portal in Chromium, as Marines' mayor: the commune's dashboard (its cameras only, never Cergy's), its
invoices (the Factur-X PDF downloads) and monthly report (a month not started refused on its field), the accesses to
its images (a live view an operator opened through the API in this test, with its motive); and finance: invoices, no
image anywhere. axe-core on every page, a screenshot of each."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from playwright.sync_api import Page, expect

from cli.seed import DEMO_PASSWORD
from core.settings import Settings
from tests.console.browser import accessibility_violations
from tests.console.platform import DemoPlatform
from tests.console.portal import conftest as portal
from tests.console.portal.conftest import SignIn

pytestmark = pytest.mark.integration

PARIS = ZoneInfo("Europe/Paris")
MARINES_CAMERAS = ("Porte de la mairie", "Place du marché")
CERGY_CAMERAS = ("Parvis nord", "Quais")
ISSUER = {"legal_name": "Syndicat mixte du Vexin", "siret": "25950001500013", "vat_number": "FR76259500015",
          "address_line": "2 avenue du Parc", "postcode": "95000", "city": "Cergy"}


def _api_session(platform: DemoPlatform, email: str) -> httpx.Client:
    """A JSON-flow session of a demo account (its second factor spent like the browser fixture spends it)."""
    client = httpx.Client(base_url=platform.api_url, timeout=30)
    while int(time.time() // portal.TOTP_STEP_S) <= portal._steps_used.get(email, -1):
        time.sleep(0.5)
    first = client.post("/auth/login", json={"email": email, "password": DEMO_PASSWORD})
    assert first.status_code == 200, first.text
    body = first.json()
    if body.get("status") == "second_factor_required":
        second = client.post("/auth/login/totp", json={"challenge": body["challenge"], "code": platform.totp(email)})
        assert second.status_code == 200, second.text
        body = second.json()
    portal._steps_used[email] = int(time.time() // portal.TOTP_STEP_S)
    client.headers["Authorization"] = f"Bearer {body['access_token']}"
    return client


def _camera_ids(client: httpx.Client) -> dict[str, tuple[str, str]]:
    """name -> (camera id, tenant id) of every camera the client sees."""
    response = client.get("/cameras", params={"limit": 200})
    assert response.status_code == 200, response.text
    return {c["name"]: (c["id"], c["tenant_id"]) for c in response.json()["items"]}


@pytest.fixture(scope="module")
def marines_invoice(portal_platform: DemoPlatform) -> str:
    """Marines' door camera in the registry since 2025 and on a plan since January: October billed; the invoice's
    number. Another test of the package may have made Marines' contract already: then its contract is used."""
    admin = _api_session(portal_platform, "admin@valdoise.demo")
    camera_id, tenant_id = _camera_ids(admin)["Porte de la mairie"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VIGIE_DATABASE__NAME", portal_platform.env["VIGIE_DATABASE__NAME"])
        owner_dsn = Settings().database.owner_dsn

    async def backdate() -> None:
        conn = await asyncpg.connect(owner_dsn)
        try:
            await conn.execute(
                "INSERT INTO camera_registry_events (tenant_id, camera_id, occurred_at, kind, status, name, insee_code)"
                " VALUES ($1, $2, $3, 'added', 'online', 'Porte de la mairie', '95370')",
                uuid.UUID(tenant_id), uuid.UUID(camera_id), datetime(2025, 12, 1, tzinfo=PARIS))
        finally:
            await conn.close()

    # Playwright's sync API keeps an event loop running in this thread: the database is written from another.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, backdate()).result()
    assert admin.put("/billing/issuer", json=ISSUER).status_code == 200
    plan = admin.post("/billing/plans", json={"code": f"mayor_{uuid.uuid4().hex[:6]}", "name": "Supervision",
                                              "price": {"effective_from": "2026-01-01", "monthly_price_ht": "90"}})
    assert plan.status_code == 201, plan.text
    contract = admin.post("/billing/contracts", json={
        "tenant_id": tenant_id, "reference": "MARINES-2026", "start_date": "2026-01-01",
        "buyer_name": "Commune de Marines", "buyer_siret": "21950370300015", "buyer_address_line": "1 place",
        "buyer_postcode": "95640", "buyer_city": "Marines", "chorus_service_code": "SERV",
        "billing_contact_name": "Finances", "billing_contact_email": "finances@marines.test"})
    if contract.status_code == 409:
        existing = admin.get("/billing/contracts", params={"tenant_id": tenant_id}).json()["items"]
        contract_id = existing[0]["id"]
    else:
        assert contract.status_code == 201, contract.text
        contract_id = contract.json()["id"]
    placed = admin.post(f"/billing/contracts/{contract_id}/cameras", json={
        "camera_id": camera_id, "plan_id": plan.json()["id"], "from_date": "2026-01-01"})
    assert placed.status_code == 201, placed.text
    run = admin.post("/billing/runs", json={"month": "2026-10"})
    assert run.status_code == 201, run.text
    invoices = admin.get("/billing/invoices", params={"tenant_id": tenant_id, "month": "2026-10"}).json()["items"]
    assert invoices, run.text
    number: str = invoices[0]["number"]
    # The first request renders the Factur-X document; the mayor's download then reads the stored one.
    rendered = admin.get(f"/billing/invoices/{invoices[0]['id']}/document", timeout=300)
    assert rendered.status_code == 200, rendered.text
    admin.close()
    return number


def _accessible(page: Page, name: str, artifacts: Path) -> None:
    page.screenshot(path=str(artifacts / f"mayor-{name}.png"), full_page=True)
    assert accessibility_violations(page) == [], name


def _download_pdf(page: Page, button: Any) -> bytes:
    # Documents are rendered on the first request (PDF/A-3, then checked): slow on a busy machine.
    with page.expect_download(timeout=180_000) as download:
        button.click()
    path = download.value.path()
    assert path is not None
    return Path(path).read_bytes()


def test_the_mayor_of_marines_reads_her_commune_and_never_cergy(
    portal_platform: DemoPlatform, signed_in: SignIn, portal_artifacts: Path, marines_invoice: str,
) -> None:
    operator = _api_session(portal_platform, "operateur1@valdoise.demo")
    door, _ = _camera_ids(operator)["Porte de la mairie"]
    motive = f"Levée de doute, appel 17 n°{uuid.uuid4().hex[:6]}"
    viewed = operator.post(f"/cameras/{door}/live", json={"motive": motive, "stream": "sub"})
    assert viewed.status_code == 201, viewed.text
    operator.close()

    page = signed_in("maire@marines.demo")
    # The mayor lands on the commune's dashboard.
    expect(page.get_by_role("heading", name="Tableau de bord de Marines")).to_be_visible(timeout=15_000)
    table = page.locator("#mayor-cameras")
    for name in MARINES_CAMERAS:
        expect(table.get_by_role("rowheader", name=name)).to_be_visible()
    expect(page.locator("#mayor-alert-figures")).to_be_visible()
    expect(page.get_by_role("img", name="Alertes par jour", exact=False)).to_be_visible()
    body = page.locator("main").inner_text()
    for name in CERGY_CAMERAS:
        assert name not in body
    assert page.locator("main img, main video").count() == 0
    _accessible(page, "dashboard", portal_artifacts)

    page.get_by_role("link", name="Rapports et factures").click()
    invoices = page.locator("#mayor-invoices")
    expect(invoices.get_by_role("rowheader", name=marines_invoice)).to_be_visible(timeout=15_000)
    expect(page.locator("#mayor-contracts")).to_contain_text("Commune de Marines")
    download = page.get_by_role("button", name=f"Télécharger la facture {marines_invoice} (PDF Factur-X)")
    pdf = _download_pdf(page, download)
    assert pdf.startswith(b"%PDF-")
    # A month that has not started: the API's problem is shown on the month's field.
    page.locator("#mayor-report-month").fill("2999-01")
    page.get_by_role("button", name="Télécharger le rapport (PDF)").click()
    expect(page.locator("#mayor-report-month-error")).to_be_visible()
    expect(page.locator("#mayor-report-month")).to_have_attribute("aria-invalid", "true")
    page.locator("#mayor-report-month").fill("2026-10")
    report = _download_pdf(page, page.get_by_role("button", name="Télécharger le rapport (PDF)"))
    assert report.startswith(b"%PDF-")
    expect(page.locator("#mayor-report-month-error")).to_have_count(0)
    _accessible(page, "billing", portal_artifacts)

    page.get_by_role("link", name="Accès aux images").click()
    expect(page.get_by_role("heading", name="Accès aux images de Marines")).to_be_visible(timeout=15_000)
    row = page.locator("#mayor-accesses tr", has_text=motive)
    expect(row).to_contain_text("Inès Opératrice")
    expect(row).to_contain_text("Porte de la mairie")
    expect(row).to_contain_text("direct")
    accesses = page.locator("main").inner_text()
    for name in CERGY_CAMERAS:
        assert name not in accesses
    _accessible(page, "accesses", portal_artifacts)


def test_finance_reads_invoices_and_never_an_image(
    portal_platform: DemoPlatform, signed_in: SignIn, portal_artifacts: Path, marines_invoice: str,
) -> None:
    page = signed_in("finances@valdoise.demo")
    expect(page.get_by_role("heading", name="Rapports mensuels, factures et convention")).to_be_visible(timeout=15_000)
    expect(page.locator("#mayor-invoices").get_by_role("rowheader", name=marines_invoice)).to_be_visible()
    navigation = page.get_by_role("navigation", name="Navigation principale")
    expect(navigation.get_by_role("link")).to_have_count(1)
    expect(navigation.get_by_role("link", name="Rapports et factures")).to_be_visible()
    assert page.locator("img, video, canvas").count() == 0
    _accessible(page, "finance", portal_artifacts)
    # The mayor's pages with camera data stay closed to finance, whatever the address typed.
    for path in ("#/commune", "#/acces-images", "#/cameras", "#/direct"):
        page.goto(f"{portal_platform.api_url}/console/{path}")
        expect(page.get_by_role("alert")).to_have_text("Votre rôle ne donne pas accès à cette page.")
        assert page.locator("img, video, canvas").count() == 0
