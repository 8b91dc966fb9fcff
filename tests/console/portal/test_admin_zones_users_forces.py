"""The department admin's pages in the console: zones and rules drawn on the live frame with their legal gating,
users and habilitations, forces and routing; a mayor neither sees nor opens them."""

# The console speaks French: its labels hold typographic apostrophes and dashes.
# ruff: noqa: RUF001

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.console.browser import accessibility_violations
from tests.console.platform import DemoPlatform
from tests.console.portal.conftest import SignIn

ADMIN = "admin@valdoise.demo"
MAYOR = "maire@marines.demo"
CAMERA = "Entrée principale"  # c1 at Cergy: forbidden_zone and abandoned_object granted, no wrong_way
ADMIN_PAGES = ("Zones et règles", "Utilisateurs", "Forces et routage")


@pytest.fixture(autouse=True)
def patient_expectations() -> Iterator[None]:
    """The platform shares two cores with its detector and recorders: an answer may take more than the default 5 s."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)


def _api(page: Page, method: str, path: str, **kwargs: Any) -> Any:
    """Call the API as the page's signed-in person: a fresh access token from the console's refresh cookie (the
    page's own token lives in its memory only)."""
    origin = page.evaluate("location.origin")
    session = page.request.post(f"{origin}/auth/console/refresh", headers={"X-Vigie-Console": "1"})
    assert session.ok, session.text()
    headers = {"Authorization": f"Bearer {session.json()['access_token']}"}
    response = page.request.fetch(f"{origin}{path}", method=method, headers=headers, **kwargs)
    assert response.ok, response.text()
    return response.json() if response.body() else None


def _user_id(page: Page, email: str) -> str:
    users = _api(page, "GET", "/users?limit=200")["items"]
    return str(next(user["id"] for user in users if user["email"] == email))


def _check_page(page: Page, artifacts: Path, name: str) -> None:
    assert accessibility_violations(page) == []
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def _click_at(overlay: Locator, x: float, y: float) -> None:
    box = overlay.bounding_box()
    assert box is not None
    overlay.page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


def _points_near(points: list[list[float]], expected: list[tuple[float, float]]) -> bool:
    return len(points) == len(expected) and all(
        abs(px - ex) < 0.02 and abs(py - ey) < 0.02 for (px, py), (ex, ey) in zip(points, expected, strict=True))


def test_admin_draws_a_zone_and_a_line_on_the_live_frame_and_sees_unlawful_analytics_greyed(
        signed_in: SignIn, portal_artifacts: Path) -> None:
    page = signed_in(ADMIN)
    navigation = page.get_by_role("navigation", name="Navigation principale")
    for label in ADMIN_PAGES:
        expect(navigation.get_by_role("link", name=label)).to_be_visible()
    navigation.get_by_role("link", name="Zones et règles").click()
    camera_select = page.get_by_label("Caméra", exact=True)
    expect(camera_select.locator("option", has_text=CAMERA)).to_have_count(1)
    camera_id = camera_select.locator("option", has_text=CAMERA).get_attribute("value")
    assert camera_id
    camera_select.select_option(camera_id)

    # The current frame: the camera's live sub stream, opened with a motive (journaled like any live view).
    page.get_by_role("button", name="Afficher l’image actuelle").click()
    expect(page.locator(".frame-editor")).to_have_attribute("data-state", "online", timeout=30_000)
    overlay = page.get_by_test_id("frame-overlay")

    # A zone: three clicks on the frame.
    zone_name = f"Parvis {uuid.uuid4().hex[:6]}"
    page.get_by_role("button", name="Dessiner une zone").click()
    page.get_by_label("Nom", exact=True).fill(zone_name)
    zone_points = [(0.2, 0.2), (0.5, 0.25), (0.4, 0.6)]
    for x, y in zone_points:
        _click_at(overlay, x, y)
    expect(page.locator("circle.handle")).to_have_count(3)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text(f"« {zone_name} » est enregistrée.")).to_be_visible(timeout=15_000)

    # A line: two clicks, then its end dragged elsewhere; drawn with its a→b arrow.
    line_name = f"Seuil {uuid.uuid4().hex[:6]}"
    page.get_by_role("button", name="Dessiner une ligne").click()
    page.get_by_label("Nom", exact=True).fill(line_name)
    _click_at(overlay, 0.1, 0.8)
    _click_at(overlay, 0.5, 0.8)
    _click_at(overlay, 0.7, 0.1)  # a line has two points: a third click adds nothing
    expect(page.locator("circle.handle")).to_have_count(2)
    handle = page.locator("circle.handle[data-point='1']").bounding_box()
    box = overlay.bounding_box()
    assert handle is not None
    assert box is not None
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.8 * box["width"], box["y"] + 0.7 * box["height"], steps=5)
    page.mouse.up()
    expect(page.get_by_label("Point 2 — x")).to_have_value("0.8")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text(f"« {line_name} » est enregistrée.")).to_be_visible(timeout=15_000)
    expect(page.locator(".shape-line .arrow")).not_to_have_count(0)

    saved = {zone["name"]: zone for zone in _api(page, "GET", f"/cameras/{camera_id}/zones")}
    assert saved[zone_name]["kind"] == "zone"
    assert _points_near(saved[zone_name]["points"], zone_points)
    assert saved[line_name]["kind"] == "line"
    assert _points_near(saved[line_name]["points"], [(0.1, 0.8), (0.8, 0.7)])

    # The keyboard's way: a self-intersecting polygon typed in the coordinates list is refused, next to the list.
    page.get_by_role("button", name="Dessiner une zone").click()
    page.get_by_label("Nom", exact=True).fill(f"Noeud {uuid.uuid4().hex[:6]}")
    for _ in range(4):
        page.get_by_role("button", name="Ajouter un point").click()
    for index, (x, y) in enumerate([(0.1, 0.1), (0.5, 0.5), (0.5, 0.1), (0.1, 0.5)], start=1):
        page.get_by_label(f"Point {index} — x").fill(str(x))
        page.get_by_label(f"Point {index} — y").fill(str(y))
    page.get_by_role("button", name="Enregistrer").click()
    problem = page.locator("#shape-points-error")
    expect(problem).to_be_visible()
    expect(page.locator("fieldset.coordinates")).to_have_attribute("aria-describedby", "shape-points-error")
    page.get_by_role("button", name="Annuler").click()

    # Legal gating: no wrong_way grant on this camera, so "Contresens" is greyed out with the reason and the text.
    wrong_way = page.locator(".rule-option[data-rule-type='wrong_way']")
    expect(wrong_way.get_by_role("radio")).to_be_disabled()
    expect(wrong_way.locator(".reason")).to_contain_text("circulation à contresens")
    expect(wrong_way.locator(".reason")).to_contain_text("décret n° 2023-828")
    intrusion = page.locator(".rule-option[data-rule-type='intrusion']")
    expect(intrusion.get_by_role("radio")).to_be_enabled()
    intrusion.get_by_role("radio").check()
    page.get_by_label("Zone", exact=True).select_option(label=zone_name)
    page.get_by_role("button", name="Ajouter l’analyse").click()
    expect(page.get_by_text("Analyse « Intrusion » ajoutée.")).to_be_visible()
    rules = _api(page, "GET", f"/cameras/{camera_id}/rules")
    assert any(rule["rule_type"] == "intrusion" and rule["zone_id"] == saved[zone_name]["id"] for rule in rules)
    _check_page(page, portal_artifacts, "zones-editor")

    # A privacy mask, drawn the same way, is stored on the camera (then removed: masks re-encode the recording).
    page.get_by_role("button", name="Dessiner un masque de confidentialité").click()
    for x, y in [(0.85, 0.05), (0.98, 0.05), (0.98, 0.3), (0.85, 0.3)]:
        _click_at(overlay, x, y)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text("Les masques de la caméra sont enregistrés.")).to_be_visible()
    masks = _api(page, "GET", f"/cameras/{camera_id}")["privacy_masks"]
    assert _points_near(masks[-1]["points"], [(0.85, 0.05), (0.98, 0.05), (0.98, 0.3), (0.85, 0.3)])
    _check_page(page, portal_artifacts, "zones-mask")
    page.get_by_role("button", name=f"Supprimer le masque {len(masks)}").click()
    expect(page.get_by_text(f"Le masque {len(masks)} est supprimé.")).to_be_visible()
    assert len(_api(page, "GET", f"/cameras/{camera_id}")["privacy_masks"]) == len(masks) - 1


def test_admin_invites_a_person_and_sees_the_enrolment_link(
    signed_in: SignIn, portal_artifacts: Path, portal_platform: DemoPlatform,
) -> None:
    page = signed_in(ADMIN)
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Utilisateurs").click()
    expect(page.get_by_role("heading", name="Utilisateurs et habilitations")).to_be_visible()
    expect(page.locator("tr[data-user-email='operateur1@valdoise.demo']")).to_be_visible()

    form = page.locator("form[aria-labelledby='invite-title']")
    form.get_by_label("Collectivité").select_option(label="Département du Val-d'Oise")
    form.get_by_label("Rôle").select_option("operator")
    form.get_by_label("Adresse électronique").fill("pas-une-adresse")
    form.get_by_label("Nom affiché").fill("Opératrice Nouvelle")
    form.get_by_role("button", name="Inviter").click()
    email_input = form.get_by_label("Adresse électronique")
    expect(form.locator("#invite-email-error")).to_be_visible()
    expect(email_input).to_have_attribute("aria-invalid", "true")

    email = f"nouvelle-{uuid.uuid4().hex[:8]}@valdoise.demo"
    email_input.fill(email)
    form.get_by_label("Numéro d’agrément").fill("AGR-2026-42")
    form.get_by_label("Date de l’enquête administrative").fill((date.today() - timedelta(days=30)).isoformat())
    form.get_by_label("Fin de validité de l’habilitation").fill((date.today() + timedelta(days=10)).isoformat())
    form.get_by_role("button", name="Inviter").click()
    link = page.get_by_label("Lien d’inscription", exact=True)
    expect(link).to_be_visible()
    # The console's enrolment page, the token in the fragment; it opens in the person's own browser, no session.
    value = link.input_value() or ""
    assert value.startswith(f"{portal_platform.api_url}/console/#/inscription?jeton=")
    browser = page.context.browser
    assert browser is not None
    person = browser.new_context(locale="fr-FR")
    try:
        enrolment = person.new_page()
        enrolment.goto(value)
        expect(enrolment.get_by_role("heading", name="Activer votre accès à Vigie")).to_be_visible()
        expect(enrolment.locator("dl.facts")).to_contain_text(email)
        expect(enrolment.get_by_role("img", name="Code QR du second facteur à scanner")).to_be_visible()
    finally:
        person.close()
    expect(page.locator(f"tr[data-invitation-email='{email}']")).to_contain_text("en attente")
    invitations = _api(page, "GET", "/invitations?limit=200")["items"]
    assert any(item["email"] == email and item["status"] == "pending" for item in invitations)
    _check_page(page, portal_artifacts, "users-invite")

    # A habilitation ending in ten days is warned about at the top of the page.
    page.get_by_role("button", name="Gérer Karim Opérateur").click()
    panel = page.locator("[data-user-panel='operateur2@valdoise.demo']")
    expect(panel.get_by_role("button", name="Forcer la réinscription")).to_be_visible()
    expect(panel.get_by_role("button", name="Verrouiller le compte")).to_be_visible()
    ends = date.today() + timedelta(days=10)
    panel.get_by_label("Fin de validité de l’habilitation").fill(ends.isoformat())
    panel.get_by_role("button", name="Enregistrer l’habilitation").click()
    warning = page.locator(".warning-box")
    expect(warning).to_contain_text("Karim Opérateur")
    expect(warning).to_contain_text(f"expire le {ends:%d/%m/%Y} (dans 10 jour(s))")
    expect(page.locator("tr[data-user-email='operateur2@valdoise.demo'] .habilitation-expiring")).to_be_visible()

    # Lock, then reactivate (the account is shared with other tests: it ends as it began).
    row = page.locator("tr[data-user-email='operateur2@valdoise.demo']")
    panel.get_by_role("button", name="Verrouiller le compte").click()
    expect(row).to_contain_text("verrouillé")
    assert _api(page, "GET", f"/users/{_user_id(page, 'operateur2@valdoise.demo')}")["status"] == "disabled"
    panel.get_by_role("button", name="Réactiver le compte").click()
    expect(row).to_contain_text("actif")
    assert _api(page, "GET", f"/users/{_user_id(page, 'operateur2@valdoise.demo')}")["status"] == "active"
    _check_page(page, portal_artifacts, "users-account")


def test_admin_edits_routing_and_alert_policies(signed_in: SignIn, portal_artifacts: Path) -> None:
    page = signed_in(ADMIN)
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Forces et routage").click()
    expect(page.locator("tr[data-force-name='Police municipale de Marines']")).to_contain_text("Marines")

    # Hours past the end of the day: the API's problem shows next to the field.
    form = page.locator("form[aria-labelledby='routing-add-title']")
    form.get_by_label("Force").select_option(label="Police municipale de Marines")
    form.get_by_label("Commune").select_option("95370")
    form.get_by_label("Type d’événement").select_option("abandoned_object")
    form.get_by_label("De (HH:MM)").fill("22:00")
    form.get_by_label("À (HH:MM, 24:00 pour minuit)").fill("25:30")
    form.get_by_role("button", name="Ajouter la règle").click()
    expect(form.locator("#routing-end-error")).to_be_visible()

    note = f"Nuit {uuid.uuid4().hex[:6]}"
    form.get_by_label("À (HH:MM, 24:00 pour minuit)").fill("24:00")
    form.get_by_label("Note").fill(note)
    form.get_by_role("button", name="Ajouter la règle").click()
    expect(page.get_by_role("row", name=note)).to_contain_text("22:00–24:00")
    rules = _api(page, "GET", "/routing-rules")
    assert any(r["note"] == note and r["start_minute"] == 22 * 60 and r["end_minute"] == 1440 for r in rules)

    # An alert policy needs its severity: without one the API's refusal shows next to it.
    policy = page.locator("form[data-policy='intrusion']")
    policy.get_by_label("Gravité (1 à 5)").fill("")
    policy.get_by_label("Délai de prise en charge (secondes)").fill("90")
    policy.get_by_role("button", name="Enregistrer « Intrusion »").click()
    expect(policy.locator("#policy-intrusion-severity-error")).to_be_visible()
    policy.get_by_label("Gravité (1 à 5)").fill("4")
    policy.get_by_role("button", name="Enregistrer « Intrusion »").click()
    expect(page.get_by_text("Politique « Intrusion » enregistrée.")).to_be_visible()
    policies = {p["rule_type"]: p for p in _api(page, "GET", "/alert-policies")}
    assert policies["intrusion"]["sla_claim_s"] == 90
    assert policies["intrusion"]["severity"] == 4
    _check_page(page, portal_artifacts, "forces-routing")


def test_a_mayor_neither_sees_nor_opens_the_admin_pages(signed_in: SignIn, portal_artifacts: Path) -> None:
    page = signed_in(MAYOR)
    navigation = page.get_by_role("navigation", name="Navigation principale")
    for label in ADMIN_PAGES:
        expect(navigation.get_by_role("link", name=label)).to_have_count(0)
    for path in ("/admin/zones", "/admin/utilisateurs", "/admin/forces"):
        page.evaluate(f"location.hash = '#{path}'")
        expect(page.get_by_role("alert")).to_have_text("Votre rôle ne donne pas accès à cette page.")
    _check_page(page, portal_artifacts, "zones-forbidden-mayor")
