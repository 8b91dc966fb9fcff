"""The console's video pages end to end in Debian's Chromium against the running platform: the camera wall lists
the cameras with their condition, a live tile plays within seconds (its video's currentTime advances) and its full
view plays the main stream, a camera
killed in the simulator shows offline within seconds and comes back by itself once restarted, and the playback page
shows the outage as a gap in the timeline and plays the recording; axe-core finds no serious or critical violation
on any of these pages; screenshots kept as artifacts."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from cli.seed import DEMO_PASSWORD
from core.settings import PROJECT_ROOT
from tests.console.browser import accessibility_violations, sign_in
from tests.console.platform import DemoPlatform

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
OPERATOR = "operateur2@valdoise.demo"
CAMERA_NAME, SIMULATED = "Entrée principale", "cam-1"  # the seed's camera c1, simulated camera 1
MOTIVE = "levée de doute sur appel 17"


def _new_page(browser: Browser, security_errors: list[str]) -> Page:
    page = browser.new_context(viewport={"width": 1440, "height": 900}, locale="fr-FR").new_page()

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            security_errors.append(message.text)

    page.on("console", watch)
    return page


def _accessible(page: Page, name: str, artifacts: Path) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    violations = accessibility_violations(page)
    assert not violations, f"{name}: {violations}"


def _camsim(platform: DemoPlatform, action: str) -> None:
    done = subprocess.run([sys.executable, "-m", "camsim", "ctl", action, SIMULATED], cwd=PROJECT_ROOT,
                          env=platform.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _advancing(page: Page, selector: str, timeout_s: float) -> float:
    """Seconds until the video's currentTime moved forward by more than one second (fails past the timeout)."""
    began = time.monotonic()
    first = page.eval_on_selector(selector, "v => v.currentTime")
    while time.monotonic() - began < timeout_s:
        if page.eval_on_selector(selector, "v => v.currentTime") > first + 1.0:
            return time.monotonic() - began
        page.wait_for_timeout(250)
    raise AssertionError(f"{selector} did not advance within {timeout_s} s")


def test_live_tile_plays_goes_offline_with_the_camera_and_the_gap_shows_in_playback(
    demo_platform: DemoPlatform, browser: Browser, artifacts: Path
) -> None:
    security_errors: list[str] = []
    page = _new_page(browser, security_errors)
    sign_in(page, demo_platform, OPERATOR, DEMO_PASSWORD)

    # The camera wall: every camera in scope, by commune and site, with its condition.
    page.get_by_role("link", name="Caméras").click()
    tile = page.locator(".camera-tile", has_text=CAMERA_NAME)
    expect(tile).to_be_visible(timeout=20_000)
    camera_id = tile.get_attribute("data-camera-id")
    expect(page.locator(".camera-tile")).to_have_count(7)  # Magny records only: not in the CSU's scope
    expect(tile).to_have_attribute("data-condition", "online", timeout=60_000)
    _accessible(page, "video-01-camera-wall", artifacts)

    # Live: the tile plays within seconds.
    page.goto(f"{demo_platform.api_url}/console/#/direct?camera={camera_id}")
    page.get_by_label("Motif de la consultation").fill(MOTIVE)
    page.get_by_role("button", name="Ouvrir le mur").click()
    live = page.locator(f".live-tile[data-camera-id='{camera_id}']")
    expect(live).to_have_attribute("data-state", "online", timeout=20_000)
    started_s = _advancing(page, f".live-tile[data-camera-id='{camera_id}'] video", 15)
    _accessible(page, "video-02-live-tile", artifacts)

    # The full view: the camera's main stream, then back to the wall.
    live.get_by_role("button", name=f"Plein écran : {CAMERA_NAME}").click()
    full = page.locator(".live-full .live-tile")
    expect(full).to_have_attribute("data-state", "online", timeout=20_000)
    _advancing(page, ".live-full .live-tile video", 15)
    assert page.eval_on_selector(".live-full .live-tile video", "v => v.videoWidth") > 0
    _accessible(page, "video-02b-live-full-view", artifacts)
    page.get_by_role("button", name="Fermer le plein écran").click()
    expect(live).to_have_attribute("data-state", "online", timeout=20_000)

    # The camera dies: the tile says so within seconds, and comes back by itself once the camera does.
    killed_at = datetime.now(UTC)
    _camsim(demo_platform, "kill")
    expect(live).to_have_attribute("data-state", "offline", timeout=10_000)
    expect(live.get_by_role("status")).to_contain_text("hors ligne")
    _accessible(page, "video-03-live-offline", artifacts)
    page.wait_for_timeout(15_000)  # longer than a segment: the recorder leaves a hole
    _camsim(demo_platform, "restart")
    restarted_at = datetime.now(UTC)
    expect(live).to_have_attribute("data-state", "online", timeout=45_000)
    _advancing(page, f".live-tile[data-camera-id='{camera_id}'] video", 20)
    page.screenshot(path=str(artifacts / "video-04-live-back.png"), full_page=True)
    page.get_by_role("button", name="Fermer le mur").click()

    # Playback: the outage is a gap of the timeline; the recording around it plays.
    page.goto(f"{demo_platform.api_url}/console/#/relecture?camera={camera_id}")
    page.wait_for_timeout(20_000)  # the first segment after the restart is uploaded and indexed
    start = (killed_at - timedelta(seconds=40)).astimezone()
    end = datetime.now(UTC).astimezone()
    page.get_by_label("Début").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Fin").fill((end + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Motif de la relecture").fill("relecture après coupure de la caméra")
    page.get_by_role("button", name="Charger").click()
    expect(page.get_by_test_id("timeline")).to_be_visible(timeout=20_000)
    gaps = page.get_by_test_id("gap-item")
    expect(gaps.first).to_be_visible()
    spans = [(datetime.fromisoformat(item.get_attribute("data-start") or ""),
              datetime.fromisoformat(item.get_attribute("data-end") or "")) for item in gaps.all()]
    assert any(a <= killed_at + timedelta(seconds=12) and b >= killed_at + timedelta(seconds=5) for a, b in spans), (
        spans, killed_at, restarted_at)
    expect(page.get_by_test_id("playback-error")).to_have_count(0)
    _advancing(page, "[data-testid='playback-video']", 20)
    page.get_by_label("Vitesse").select_option("4")
    rates = "v => [v.playbackRate, v.defaultPlaybackRate]"
    assert page.eval_on_selector("[data-testid='playback-video']", rates) == [4, 4]
    page.wait_for_timeout(2_000)  # the player keeps the speed while it loads further segments
    assert page.eval_on_selector("[data-testid='playback-video']", rates) == [4, 4]
    _accessible(page, "video-05-playback", artifacts)
    assert not security_errors, security_errors
    print(f"\nlive tile advancing {started_s:.1f} s after it said online")
