"""The department admin's pages in Debian's Chromium against the running platform: tenants (a retention over 30 days
refused with the article of law next to the field, the contract and each camera's plan), sites and cameras (add with
write-only credentials, move between sites, a connection test that shows one frame from the camera, the codec),
prefectoral authorisations (a refusal next to its field, create, the 7-day expiry warning on the list, the scanned
order filed and downloaded), the sites map without a tile source; a mayor of Marines sees none of Cergy's cameras or
sites; axe-core on every page; screenshots kept as artifacts."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from cli.seed import CAMERAS, SITES
from tests.console.browser import accessibility_violations
from tests.console.platform import DemoPlatform
from tests.console.portal.conftest import SignIn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
ADMIN, MAYOR_MARINES = "admin@valdoise.demo", "maire@marines.demo"
CERGY_SITES = {key for key, tenant, *_ in SITES if tenant in ("cergy", "departement")}
CERGY_CAMERAS = [name for _key, site, name, *_ in CAMERAS if site in CERGY_SITES]
MARINES_SITES = [name for _key, tenant, name, *_ in SITES if tenant == "marines"]
MARINES_CAMERAS = [name for _key, site, name, *_ in CAMERAS if site in ("mairie_marines", "place_marines")]
# The smallest document the API takes as a PDF (it checks the magic bytes).
ORDER_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _accessible(page: Page, name: str, artifacts: Path) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    violations = accessibility_violations(page)
    assert not violations, f"{name}: {violations}"


def _watch_security(page: Page) -> list[str]:
    refused: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            refused.append(message.text)

    page.on("console", watch)
    return refused


class PageApi:
    """The API as the signed-in page calls it: the bearer the console sends, captured from its own requests (the
    token lives in the page's memory only), to prepare what a test needs and read what the page must not show."""

    def __init__(self, page: Page, platform: DemoPlatform) -> None:
        self.page = page
        self.base = platform.api_url
        self.token: str | None = None
        page.on("request", self._capture)

    def _capture(self, request: Any) -> None:
        header = request.headers.get("authorization")
        if header and request.url.startswith(self.base):
            self.token = header

    def call(self, method: str, path: str, body: Any = None, expected: int = 200) -> Any:
        if self.token is None:
            self.page.wait_for_timeout(500)
        assert self.token is not None, "the page sent no authenticated request"
        response = self.page.request.fetch(f"{self.base}{path}", method=method, data=body,
                                           headers={"Authorization": self.token})
        assert response.status == expected, f"{method} {path}: {response.status} {response.text()}"
        return response.json() if response.body() else None


def _open(page: Page, platform: DemoPlatform, route: str) -> None:
    page.goto(f"{platform.api_url}/console/#{route}")


def _tenant_id(api: PageApi, name: str) -> str:
    tenants = api.call("GET", "/tenants?limit=200")["items"]
    return str(next(tenant["id"] for tenant in tenants if tenant["name"] == name))


def _camera(api: PageApi, name: str) -> dict[str, Any]:
    cameras = api.call("GET", "/cameras?limit=200")["items"]
    return dict(next(camera for camera in cameras if camera["name"] == name))


def _marines_contract(api: PageApi, tenant_id: str) -> dict[str, Any]:
    """The contract in force for Marines: the one already there (another page's test may have made it), or a new one."""
    today = date.today().isoformat()
    for contract in api.call("GET", f"/billing/contracts?tenant_id={tenant_id}")["items"]:
        if contract["start_date"] <= today and (contract["end_date"] is None or contract["end_date"] >= today):
            return dict(contract)
    # The same contract the mayor's test makes when it runs first (from January: it bills a past month).
    return dict(api.call("POST", "/billing/contracts", {
        "tenant_id": tenant_id, "reference": "MARINES-2026", "start_date": "2026-01-01",
        "buyer_name": "Commune de Marines", "buyer_siret": "21950370300015", "buyer_address_line": "1 place",
        "buyer_postcode": "95640", "buyer_city": "Marines", "chorus_service_code": "SERV",
        "billing_contact_name": "Finances", "billing_contact_email": "finances@marines.test",
    }, expected=201))


def test_tenants_refuse_a_retention_over_the_legal_cap_and_show_each_cameras_plan(
    portal_platform: DemoPlatform, signed_in: SignIn, portal_artifacts: Path
) -> None:
    page = signed_in(ADMIN)
    api = PageApi(page, portal_platform)
    _open(page, portal_platform, "/collectivites")
    table = page.locator("#tenants-table")
    expect(table.get_by_role("rowheader", name="Marines", exact=True)).to_be_visible(timeout=20_000)
    expect(table.get_by_role("rowheader", name="Cergy", exact=True)).to_be_visible()

    # A camera of Marines billed on a plan of its own under the contract in force.
    marines = _tenant_id(api, "Marines")
    porte = _camera(api, "Porte de la mairie")
    unique = uuid.uuid4().hex[:6]
    camera = api.call("POST", "/cameras", {"site_id": porte["site_id"], "name": f"Billed {unique}",
                                           "main_stream_url": porte["main_stream_url"]}, expected=201)
    plan = api.call("POST", "/billing/plans", {
        "code": f"admin_{unique}", "name": f"Formule {unique}",
        "price": {"effective_from": "2026-01-01", "monthly_price_ht": "42.50"}}, expected=201)
    contract = _marines_contract(api, marines)
    api.call("POST", f"/billing/contracts/{contract['id']}/cameras",
             {"camera_id": camera["id"], "plan_id": plan["id"], "from_date": date.today().isoformat()}, expected=201)
    _accessible(page, "tenants-list", portal_artifacts)

    original = page.locator(f"tr[data-tenant-id='{marines}'] td").nth(5).inner_text()
    page.get_by_role("button", name="Modifier « Marines »").click()
    retention = page.get_by_label("Durée de conservation des images (jours)")
    expect(page.locator("#retention-help")).to_contain_text("30 jours")

    # Over thirty days: the API's refusal, with its article of law, next to the field.
    retention.fill("45")
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    error = page.locator("#tenant-retention-error")
    expect(error).to_contain_text("CSI L252-5")
    expect(retention).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"tr[data-tenant-id='{marines}'] td").nth(5)).to_have_text(original)

    # The contract and the plan of the camera billed above.
    expect(page.locator("#contract-line")).to_contain_text(contract["reference"])
    expect(page.locator(f"#camera-plans tr[data-camera-id='{camera['id']}']")).to_contain_text(f"Formule {unique}")
    expect(page.locator(f"#camera-plans tr[data-camera-id='{camera['id']}']")).to_contain_text("42.5")
    _accessible(page, "tenants-edit-refused", portal_artifacts)

    # Within the cap it is saved, then put back as it was.
    retention.fill("21")
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Modifications enregistrées")).to_be_visible()
    expect(page.locator(f"tr[data-tenant-id='{marines}'] td").nth(5)).to_have_text("21")
    retention.fill(original)
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.locator(f"tr[data-tenant-id='{marines}'] td").nth(5)).to_have_text(original)


def test_cameras_add_move_test_connection_and_authorise(
    portal_platform: DemoPlatform, signed_in: SignIn, portal_artifacts: Path
) -> None:
    page = signed_in(ADMIN)
    refused = _watch_security(page)
    api = PageApi(page, portal_platform)
    _open(page, portal_platform, "/sites-cameras")
    table = page.locator("#cameras-table")
    expect(table.get_by_role("rowheader", name="Porte de la mairie")).to_be_visible(timeout=20_000)
    porte = _camera(api, "Porte de la mairie")
    _accessible(page, "cameras-list", portal_artifacts)

    # Add a camera on the same simulated stream as the Mairie's, with credentials.
    name = f"Essai {uuid.uuid4().hex[:6]}"
    page.get_by_role("button", name="Ajouter une caméra").click()
    page.locator("#new-site").select_option(label="Mairie de Marines (95370)")
    page.locator("#new-name").fill(name)
    page.locator("#new-main").fill(porte["main_stream_url"])
    page.locator("#new-username").fill("viewer")
    page.locator("#new-password").fill("not-the-camera-password")
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.get_by_role("status").filter(has_text=f"Caméra « {name} » ajoutée.")).to_be_visible()
    row = table.locator("tr", has=page.get_by_role("rowheader", name=name))
    expect(row).to_contain_text("Mairie de Marines")
    expect(row.locator("td").nth(3)).to_have_text("oui")
    camera_id = row.get_attribute("data-camera-id")
    assert camera_id

    # Credentials are write-only: the form never fills them back, and the API never returns them.
    expect(page.locator("#edit-username")).to_have_value("")
    expect(page.locator("#edit-password")).to_have_value("")
    read = api.call("GET", f"/cameras/{camera_id}")
    assert read["has_credentials"] is True
    assert "not-the-camera-password" not in str(read)
    assert "credentials" not in read

    # Move it to the other site of Marines.
    page.locator("#edit-site").select_option(label="Place du marché (95370)")
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Modifications enregistrées")).to_be_visible()
    expect(row.locator("td").first).to_have_text("Place du marché")
    assert api.call("GET", f"/cameras/{camera_id}")["site_id"] != porte["site_id"]

    # The test goes to the camera itself: with a wrong password, no image; with the camera's own, one frame.
    page.get_by_role("button", name="Tester la connexion").click()
    probe = page.locator(".frame-probe")
    expect(probe).to_have_attribute("data-state", "failed", timeout=45_000)
    expect(probe.get_by_role("img")).to_have_count(0)
    page.locator("#edit-username").fill("viewer")
    page.locator("#edit-password").fill("demo")
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Modifications enregistrées")).to_be_visible()
    expect(page.locator("#edit-password")).to_have_value("")
    page.get_by_role("button", name="Tester la connexion").click()
    expect(probe).to_have_attribute("data-state", "frame", timeout=45_000)
    frame = probe.get_by_role("img", name=f"Image reçue de la caméra {name}")
    expect(frame).to_be_visible()
    assert frame.evaluate("img => img.naturalWidth") > 0
    expect(probe).to_contain_text("avc1")
    _accessible(page, "cameras-edit-test-connection", portal_artifacts)

    # Authorisations: a missing purpose is refused next to its field.
    order = f"2026-{uuid.uuid4().hex[:5]}"
    page.locator("#authz-order").fill(order)
    page.get_by_role("button", name="Enregistrer l\N{RIGHT SINGLE QUOTATION MARK}autorisation").click()
    expect(page.locator("#authz-purposes-error")).to_contain_text("L251-2")

    # Created with five days left: warned 7 days ahead on the list.
    page.get_by_label("5° sécurité des personnes et des biens").check()
    until = (datetime.now(UTC).date() + timedelta(days=5)).isoformat()
    page.locator("#authz-until").fill(until)
    page.get_by_label("zone interdite").check()
    page.get_by_role("button", name="Enregistrer l\N{RIGHT SINGLE QUOTATION MARK}autorisation").click()
    expect(page.get_by_role("status").filter(has_text=f"Autorisation n° {order} enregistrée.")).to_be_visible()
    authorisation = page.locator("#authorisations tr", has_text=order)
    expect(authorisation).to_contain_text("zone interdite")
    warning = page.locator(f"#expiring-list li[data-camera-id='{camera_id}']")
    expect(warning).to_have_attribute("data-warning", "7")
    expect(warning).to_contain_text(order)
    expect(row.locator("td").nth(4)).to_contain_text("alerte à 7 jours")

    # The scanned order: filed as a PDF, then downloaded back.
    authorisation.locator("input[type=file]").set_input_files(
        files=[{"name": "arrete.pdf", "mimeType": "application/pdf", "buffer": ORDER_PDF}])
    expect(authorisation).to_contain_text("Déposé le")
    with page.expect_download() as download:
        authorisation.get_by_role("button", name="Télécharger l\N{RIGHT SINGLE QUOTATION MARK}arrêté").click()
    assert Path(download.value.path()).read_bytes() == ORDER_PDF
    _accessible(page, "cameras-authorisations", portal_artifacts)
    assert refused == []


def test_a_mayor_of_marines_sees_only_marines(
    portal_platform: DemoPlatform, signed_in: SignIn, portal_artifacts: Path
) -> None:
    page = signed_in(MAYOR_MARINES)
    _open(page, portal_platform, "/sites-cameras")
    table = page.locator("#cameras-table")
    for name in MARINES_CAMERAS:
        expect(table.get_by_role("rowheader", name=name, exact=True)).to_be_visible(timeout=20_000)
    for name in CERGY_CAMERAS:
        expect(table.get_by_role("rowheader", name=name, exact=True)).to_have_count(0)
    # The department alone records authorisations and tests a camera's live view.
    table.locator("tr", has=page.get_by_role("rowheader", name=MARINES_CAMERAS[0], exact=True)) \
        .get_by_role("button").click()
    expect(page.get_by_text("Seul le département enregistre les autorisations préfectorales.")).to_be_visible()
    # The seed's authorisation of the camera, read-only: its event types and no upload field.
    expect(page.locator("#authorisations")).to_contain_text("zone interdite")
    expect(page.locator("#authorisations input[type=file]")).to_have_count(0)
    expect(page.get_by_role("button", name="Tester la connexion")).to_have_count(0)
    _accessible(page, "cameras-mayor-marines", portal_artifacts)

    page.get_by_role("link", name="Collectivités").click()
    expect(page.locator("#tenants-table tbody tr")).to_have_count(1)
    expect(page.locator("#tenants-table").get_by_role("rowheader", name="Marines", exact=True)).to_be_visible()

    page.get_by_role("link", name="Carte des sites").click()
    expect(page.locator("#map-sites li")).to_have_count(len(MARINES_SITES))
    for name in MARINES_SITES:
        expect(page.locator("#map-sites")).to_contain_text(name)
    expect(page.locator("#map-sites")).not_to_contain_text("Parvis de la préfecture")


def test_sites_map_plots_coordinates_without_a_tile_source(
    portal_platform: DemoPlatform, signed_in: SignIn, portal_artifacts: Path
) -> None:
    page = signed_in(ADMIN)
    refused = _watch_security(page)
    _open(page, portal_platform, "/carte")
    svg = page.locator("svg.sites-map")
    expect(svg).to_have_attribute("data-mode", "plain", timeout=20_000)
    expect(page.locator("#map-source")).to_contain_text("Aucun fond de carte")
    supervised = [name for _key, tenant, name, *_ in SITES if tenant != "magny"]
    expect(svg.locator(".site-marker")).to_have_count(len(supervised))
    expect(svg.locator("image")).to_have_count(0)
    # West to east as on the ground: Marines (1.98° E) left of the Gare de Cergy (2.08° E).
    marines_x = float(svg.locator(".site-marker", has_text="Mairie de Marines").locator("circle").get_attribute("cx")
                      or "nan")
    cergy_x = float(svg.locator(".site-marker", has_text="Gare de Cergy-Préfecture").locator("circle")
                    .get_attribute("cx") or "nan")
    assert marines_x < cergy_x
    _accessible(page, "map-plain", portal_artifacts)
    assert refused == []
