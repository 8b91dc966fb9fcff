"""The auditor's desk in the console, as auditeur@valdoise.demo against the platform as `vigie demo` runs it: the
journal searched by camera, motive, person and period (a refused period shown on its field), the chains' integrity
and the last signed anchor, the registers, each search downloaded as CSV; an operator sees none of it."""

from __future__ import annotations

import csv
import io
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from cli.seed import DEMO_PASSWORD
from tests.console.browser import accessibility_violations
from tests.console.platform import DemoPlatform
from tests.console.portal.conftest import TOTP_STEP_S, SignIn, _steps_used

pytestmark = pytest.mark.integration

AUDITOR = "auditeur@valdoise.demo"
SUPERVISOR = "superviseur@valdoise.demo"


def _code(platform: DemoPlatform, email: str) -> str:
    """The account's current second-factor code; `vigie totp` is retried once when the loaded machine fails it."""
    for attempt in range(3):
        try:
            return platform.totp(email)
        except subprocess.CalledProcessError as exc:
            if attempt == 2:
                raise AssertionError(f"vigie totp {email}: {exc.stderr}") from exc
            time.sleep(2)
    raise AssertionError("unreachable")


def _api_client(platform: DemoPlatform, email: str) -> httpx.Client:
    """A client of the API signed in as `email` (JSON flow, second factor with the account's current code)."""
    while int(time.time() // TOTP_STEP_S) <= _steps_used.get(email, -1):
        time.sleep(0.5)
    client = httpx.Client(base_url=platform.api_url, timeout=30)
    login = client.post("/auth/login", json={"email": email, "password": DEMO_PASSWORD})
    assert login.status_code == 200, login.text
    second = client.post("/auth/login/totp", json={"challenge": login.json()["challenge"],
                                                    "code": _code(platform, email)})
    _steps_used[email] = int(time.time() // TOTP_STEP_S)
    assert second.status_code == 200, second.text
    client.headers["Authorization"] = f"Bearer {second.json()['access_token']}"
    return client


@pytest.fixture(scope="module")
def evidence(portal_platform: DemoPlatform) -> dict[str, Any]:
    """What the supervisor did through the API before the auditor looks: a playback of a camera's recordings with a
    motive of its own (journaled), and a requisition on that camera (registered, its OPJ's name a formula)."""
    client = _api_client(portal_platform, SUPERVISOR)
    try:
        cameras = client.get("/cameras", params={"limit": 200}).json()["items"]
        camera = next(c for c in cameras if c["name"] == "Parvis nord")
        motive = f"réquisition {uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + 180
        while True:
            # The recorder uploads its first segments a little after the demo started.
            now = datetime.now(UTC)
            played = client.post(f"/cameras/{camera['id']}/playback", json={
                "start": (now - timedelta(minutes=10)).isoformat(), "end": now.isoformat(), "motive": motive})
            if played.is_success or time.monotonic() > deadline:
                break
            time.sleep(5)
        assert played.is_success, played.text[:500]
        procedure = f"PV {uuid.uuid4().hex[:8]}"
        registered = client.post("/requisitions", json={
            "procedure_number": procedure, "legal_frame": "flagrance", "opj_name": "=Lt. Morel",
            "opj_service": "Commissariat de Cergy", "camera_ids": [camera["id"]],
            "start": (now - timedelta(minutes=10)).isoformat(), "end": now.isoformat(),
            "received_at": now.isoformat()})
        assert registered.status_code == 201, registered.text
    finally:
        client.close()
    return {"camera_id": camera["id"], "camera_name": camera["name"], "motive": motive, "procedure": procedure}


def _download(page: Page, button: str) -> list[list[str]]:
    with page.expect_download() as info:
        page.get_by_role("button", name=button).click()
    path = info.value.path()
    text = Path(path).read_text(encoding="utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def _accessible(page: Page, name: str, artifacts: Path) -> None:
    page.screenshot(path=str(artifacts / f"auditor-{name}.png"), full_page=True)
    assert accessibility_violations(page) == []


def test_the_auditor_searches_the_journal_and_downloads_it(
    signed_in: SignIn, evidence: dict[str, Any], portal_artifacts: Path
) -> None:
    page = signed_in(AUDITOR)
    page.get_by_role("link", name="Journal des accès").click()
    expect(page.get_by_role("heading", name="Journal des accès", level=1)).to_be_visible()
    lines = page.get_by_test_id("journal-lines").locator("tbody tr")
    expect(lines.first).to_be_visible()

    # By camera: every line shown is that camera's.
    page.get_by_label("Caméra", exact=True).select_option(evidence["camera_id"])
    page.get_by_role("button", name="Rechercher").click()
    other_cameras = page.locator(f"[data-testid=journal-lines] tbody tr:not([data-camera='{evidence['camera_id']}'])")
    expect(other_cameras).to_have_count(0)
    expect(lines.filter(has_text=evidence["motive"])).to_have_count(1)
    _accessible(page, "journal", portal_artifacts)

    # By motive, any camera: the one line with that motive, the supervisor's.
    page.get_by_label("Caméra", exact=True).select_option("")
    page.get_by_label("Motif (mots contenus)").fill(evidence["motive"].upper())
    page.get_by_role("button", name="Rechercher").click()
    expect(lines).to_have_count(1)
    expect(lines.first).to_contain_text("Hugo Superviseur")
    expect(lines.first).to_contain_text("media.playback")

    rows = _download(page, "Télécharger en CSV")
    header, body = rows[0], rows[1:]
    assert header[:3] == ["Date", "Commune", "Position"]
    assert len(body) == 1
    assert body[0][header.index("Motif")] == evidence["motive"]
    assert body[0][header.index("Personne")] == "Hugo Superviseur"

    # By person, then a period that ends before it starts: the API's refusal shown on its field.
    page.get_by_label("Motif (mots contenus)").fill("")
    page.get_by_label("Personne (nom ou adresse)").fill("hugo sup")
    page.get_by_role("button", name="Rechercher").click()
    # The supervisor's requisition is among his lines (the motive search before showed only his playback).
    expect(lines.filter(has_text="evidence.hold_placed")).not_to_have_count(0)
    expect(lines.filter(has_not_text="Hugo Superviseur")).to_have_count(0)
    page.get_by_label("Du", exact=True).fill("2026-06-02T10:00:00")
    page.get_by_label("Au", exact=True).fill("2026-06-01T10:00:00")
    page.get_by_role("button", name="Rechercher").click()
    error = page.locator("#audit-until-error")
    expect(error).to_contain_text("the period ends before it starts")
    expect(page.locator("#audit-until")).to_have_attribute("aria-invalid", "true")
    assert accessibility_violations(page) == []


def test_the_auditor_sees_the_chains_intact_and_the_last_anchor(
    signed_in: SignIn, evidence: dict[str, Any], portal_artifacts: Path
) -> None:
    page = signed_in(AUDITOR)
    page.get_by_role("link", name="Intégrité du journal").click()
    expect(page.get_by_test_id("journal-status")).to_contain_text("intact")
    anchor = page.locator("dl[data-testid=last-anchor]")
    deadline = time.monotonic() + 120
    # The demo's anchoring job writes its first anchor shortly after it starts.
    while not anchor.is_visible() and time.monotonic() < deadline:
        page.get_by_role("button", name="Vérifier à nouveau").click()
        page.wait_for_timeout(3000)
    expect(anchor).to_be_visible()
    expect(anchor).to_contain_text("journal-anchors/")
    hash_text = anchor.locator("dd code").first.inner_text()
    assert len(hash_text) == 64
    assert all(c in "0123456789abcdef" for c in hash_text)
    expect(page.get_by_test_id("journal-status")).to_contain_text("intact")
    cergy = page.get_by_test_id("chains").get_by_role("row", name="Cergy")
    expect(cergy).to_contain_text("intact")
    expect(cergy).to_contain_text("conforme")
    _accessible(page, "verification", portal_artifacts)


def test_the_auditor_reads_the_registers_and_downloads_them(
    signed_in: SignIn, evidence: dict[str, Any], portal_artifacts: Path
) -> None:
    page = signed_in(AUDITOR)
    page.get_by_role("link", name="Registres").click()
    table = page.get_by_test_id("register-requisitions")
    row = table.locator("tbody tr", has_text=evidence["procedure"])
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Parvis nord")
    expect(row).to_contain_text("=Lt. Morel")
    _accessible(page, "registers", portal_artifacts)

    rows = _download(page, "Télécharger en CSV")
    header = rows[0]
    assert header[:3] == ["Enregistrée le", "Commune", "Procédure"]
    mine = [r for r in rows[1:] if r[2] == evidence["procedure"]]
    assert len(mine) == 1
    # A cell a spreadsheet would run as a formula is kept as text.
    assert mine[0][header.index("OPJ")] == "'=Lt. Morel"

    # Over a period that ended before the requisition: not listed.
    page.get_by_label("Au", exact=True).fill("2020-01-01T00:00:00")
    page.get_by_role("button", name="Afficher").click()
    expect(page.get_by_text("Aucune ligne pour cette recherche.")).to_be_visible()
    page.get_by_label("Registre", exact=True).select_option("destructions")
    page.get_by_label("Au", exact=True).fill("")
    page.get_by_role("button", name="Afficher").click()
    expect(page.get_by_role("heading", name="Destructions", level=2)).to_be_visible()
    assert accessibility_violations(page) == []


def test_an_operator_does_not_see_the_auditor_pages(signed_in: SignIn, portal_platform: DemoPlatform) -> None:
    page = signed_in("operateur1@valdoise.demo")
    navigation = page.get_by_role("navigation", name="Navigation principale")
    for label in ("Journal des accès", "Intégrité du journal", "Registres"):
        expect(navigation.get_by_role("link", name=label)).to_have_count(0)
    for path in ("/audit/journal", "/audit/integrite", "/audit/registres"):
        page.goto(f"{portal_platform.api_url}/console/#{path}")
        expect(page.get_by_role("alert")).to_contain_text("Votre rôle ne donne pas accès à cette page.")
