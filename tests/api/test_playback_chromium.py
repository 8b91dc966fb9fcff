"""Playback in Debian's Chromium: the API's HLS playlist over real recorded segments, played by hls.js through the
served API's signed byte-range links; the video advances through the segments' discontinuities and across a
recording gap, and the player's wall-clock date follows the recording's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from playwright.async_api import Browser, Page

from cli.seed import SeedResult
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from tests.api.conftest import sign_in
from tests.api.test_live_stream import ServedApi
from tests.browser.chromium import artifact, hls_js, launched_chromium
from tests.recorded_segments import Recording, index_recording

pytestmark = pytest.mark.integration

OPERATOR = "operateur2@valdoise.demo"
GAP_S = 8.0
PLAYER_PATH = "/__test-player"


@pytest.fixture(scope="module")
def objects_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served-objects")


@pytest.fixture(scope="module")
def served(api_settings: Settings, seeded: SeedResult, objects_root: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    server = ServedApi(api_settings, tmp_path_factory.mktemp("served-api") / "api.log")
    # The filesystem store's signed links are served by this API process under /media.
    server.env.update(VIGIE_OBJECTSTORE_BACKEND="fs", VIGIE_OBJECTSTORE_ROOT=str(objects_root),
                      VIGIE_OBJECTSTORE_PRESIGN_BASE_URL=f"{server.url}/media")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def recording(served: ServedApi, seeded: SeedResult, objects_root: Path, department_pool: object,
                    tmp_path_factory: pytest.TempPathFactory) -> Recording:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    return await index_recording(FilesystemObjectStore(objects_root), department_pool,  # type: ignore[arg-type]
                                 seeded.tenants["marines"], seeded.cameras["c6"], tmp_path_factory.mktemp("segments"),
                                 start, gap_s=GAP_S)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with launched_chromium() as launched:
        yield launched


async def _player(browser: Browser, served: ServedApi) -> Page:
    """A page on the API's origin (as the console is) holding a <video> and hls.js, no network beyond the API."""
    page = await browser.new_page()
    html = ('<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Relecture</title></head><body>'
            '<main><h1>Relecture</h1><video id="video" muted playsinline width="640" height="480"></video></main>'
            f"<script>{hls_js()}</script></body></html>")
    await page.route(f"{served.url}{PLAYER_PATH}", lambda route: route.fulfill(
        status=200, content_type="text/html; charset=utf-8", body=html))
    await page.goto(f"{served.url}{PLAYER_PATH}")
    return page


PLAY = """async ({playlist, rate}) => {
  const video = document.getElementById("video");
  window.playerErrors = [];
  const url = URL.createObjectURL(new Blob([playlist], {type: "application/vnd.apple.mpegurl"}));
  const hls = new Hls();
  window.hls = hls;
  hls.on(Hls.Events.ERROR, (_event, data) =>
    window.playerErrors.push(`${data.details}${data.fatal ? " (fatal)" : ""}`));
  const parsed = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
  hls.loadSource(url);
  hls.attachMedia(video);
  await parsed;
  video.playbackRate = rate;
  await video.play();
  return Hls.version;
}"""

STATE = """() => {
  const video = document.getElementById("video");
  const quality = video.getVideoPlaybackQuality();
  return {time: video.currentTime, frames: quality.totalVideoFrames, ended: video.ended, paused: video.paused,
          date: window.hls.playingDate ? window.hls.playingDate.toISOString() : null, errors: window.playerErrors,
          width: video.videoWidth};
}"""


async def test_hls_js_plays_the_recording_through_its_discontinuities_and_across_the_gap(
    served: ServedApi, seeded: SeedResult, recording: Recording, browser: Browser,
) -> None:
    async with httpx2.AsyncClient(base_url=served.url, timeout=10) as client:
        totp = next(u.totp_secret for u in seeded.users if u.email == OPERATOR)
        token = (await sign_in(client, OPERATOR, totp_secret=totp))["access_token"]  # type: ignore[arg-type]
        response = await client.post(
            f"/cameras/{recording.camera}/playback/hls", headers={"authorization": f"Bearer {token}"},
            json={"start": recording.start.isoformat(), "end": recording.end.isoformat(),
                  "motive": "relecture dans la console"})
    assert response.status_code == 201, response.text
    playlist = response.json()["playlist"]
    assert "#EXT-X-GAP" in playlist

    page = await _player(browser, served)
    version = await page.evaluate(PLAY, {"playlist": playlist, "rate": 2.0})
    assert version.startswith("1.")
    # Past the first run, the gap and into the second run: the playlist's time is wall-clock time.
    first_run_s = (recording.gap[0] - recording.start).total_seconds()
    target_s = first_run_s + GAP_S + 2.0
    deadline = time.monotonic() + 45
    states = []
    while time.monotonic() < deadline:
        state = await page.evaluate(STATE)
        states.append(state)
        if state["time"] >= target_s or state["ended"]:
            break
        await asyncio.sleep(0.5)
    await page.screenshot(path=str(artifact("hls-playback.png")))
    last = states[-1]
    assert last["time"] >= target_s, f"playback stalled at {last['time']:.1f} s of {target_s:.1f} s: {states[-3:]}"
    assert last["width"] == 320
    assert last["frames"] >= 40, last
    # The player's date is the recording's: it left the first run and the gap behind.
    assert last["date"] is not None
    assert datetime.fromisoformat(last["date"].replace("Z", "+00:00")) >= recording.gap[1]
    fatal = [e for e in last["errors"] if "fatal" in e]
    assert not fatal, last["errors"]
    await page.close()
