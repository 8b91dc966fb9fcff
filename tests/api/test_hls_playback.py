"""Playback as HLS through the API: a journaled playlist over real recorded segments whose init sections and
fragments are byte ranges of signed links, gaps marked; the timeline of recorded spans and gaps; ranges on /media."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.routes.evidence import parse_byte_range
from cli.seed import SeedResult
from core.objectstore import FilesystemObjectStore
from dvr.settings import DvrSettings
from tests.api.conftest import Actor
from tests.recorded_segments import Recording, index_recording

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
async def recording(app: Litestar, seeded: SeedResult, department_pool: asyncpg.Pool,
                    tmp_path_factory: pytest.TempPathFactory) -> Recording:
    store = FilesystemObjectStore(Path(tmp_path_factory.mktemp("objects")), presign_secret=b"test-presign",
                                  presign_base_url="http://testserver.local/media")
    services = app.state.services
    services.store = store
    services.evidence = dataclasses.replace(services.evidence, store=store)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    return await index_recording(store, department_pool, seeded.tenants["cergy"], seeded.cameras["c5"],
                                 tmp_path_factory.mktemp("segments"), start, legacy_first=True)


def _local(url: str) -> str:
    return url.removeprefix("http://testserver.local")


async def test_the_playlist_is_journaled_and_its_ranges_rebuild_playable_fragments(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], recording: Recording,
    department_pool: asyncpg.Pool, tmp_path: Path,
) -> None:
    operator = actors["operateur1@valdoise.demo"]
    window = {"start": (recording.start + timedelta(seconds=1)).isoformat(),
              "end": (recording.end + timedelta(seconds=30)).isoformat()}
    no_motive = await client.post(f"/cameras/{recording.camera}/playback/hls", json=window, headers=operator.headers)
    assert no_motive.status_code == 400
    response = await client.post(f"/cameras/{recording.camera}/playback/hls", headers=operator.headers,
                                 json={**window, "motive": "relecture après dépôt de plainte"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["segments"] == 6
    assert [(g["cause"], g["detail"]) for g in body["gaps"]] == [("camera_unreachable", "connection refused")]
    text = body["playlist"]
    assert "#EXT-X-GAP" in text
    assert "#EXT-X-START:TIME-OFFSET=1.000,PRECISE=YES" in text
    maps = re.findall(r'#EXT-X-MAP:URI="([^"]+)",BYTERANGE="(\d+)@0"', text)
    parts = re.findall(r"#EXT-X-BYTERANGE:(\d+)@(\d+)\n(\S+)", text)
    assert len(maps) == len(parts) == 6
    for (map_url, head), (length, offset, url) in zip(maps, parts, strict=True):
        assert map_url == url
        assert head == offset
        served_head = await client.get(_local(url), headers={"Range": f"bytes=0-{int(head) - 1}"})
        last = int(offset) + int(length) - 1
        served_rest = await client.get(_local(url), headers={"Range": f"bytes={offset}-{last}"})
        assert (served_head.status_code, served_rest.status_code) == (206, 206)
        key = next(k for k in recording.files if k in url)
        assert served_head.content + served_rest.content == recording.files[key]
        assert served_rest.content[4:8] == b"moof"
        assert served_rest.headers["content-range"] == f"bytes {offset}-{last}/{len(recording.files[key])}"
    # The init section and one fragment, as a player appends them, decode.
    sample = tmp_path / "appended.mp4"
    first_head = await client.get(_local(parts[1][2]), headers={"Range": f"bytes=0-{int(maps[1][1]) - 1}"})
    first_rest = await client.get(_local(parts[1][2]), headers={"Range": f"bytes={parts[1][1]}-"})
    sample.write_bytes(first_head.content + first_rest.content)
    command = [DvrSettings().ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
               "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(sample)]
    probe = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, check=True)
    codec, frames = probe.stdout.strip().split(",")
    assert codec == "h264"
    assert int(frames) >= 10
    async with department_pool.acquire() as conn:
        line = await conn.fetchrow(
            "SELECT motive, actor_role, details FROM access_journal WHERE action = 'media.playback' "
            "AND camera_id = $1 AND details::jsonb->>'format' = 'hls'", recording.camera)
    assert line is not None
    assert (line["motive"], line["actor_role"]) == ("relecture après dépôt de plainte", "operator")


async def test_playback_needs_a_role_that_views_images_and_a_recorded_interval(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], recording: Recording,
) -> None:
    window = {"start": recording.start.isoformat(), "end": recording.end.isoformat(), "motive": "curiosité"}
    refused = await client.post(f"/cameras/{recording.camera}/playback/hls", json=window,
                                headers=actors["maire@cergy.demo"].headers)
    assert refused.status_code == 403
    before = {"start": (recording.start - timedelta(hours=2)).isoformat(),
              "end": (recording.start - timedelta(hours=1)).isoformat(), "motive": "relecture"}
    empty = await client.post(f"/cameras/{recording.camera}/playback/hls", json=before,
                              headers=actors["operateur1@valdoise.demo"].headers)
    assert empty.status_code == 404, empty.text
    assert empty.headers["content-type"].startswith("application/problem+json")


async def test_the_timeline_shows_recorded_spans_and_the_gap_with_its_cause(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], recording: Recording,
) -> None:
    params = {"start": (recording.start - timedelta(seconds=60)).isoformat(),
              "end": (recording.end + timedelta(seconds=60)).isoformat()}
    response = await client.get(f"/cameras/{recording.camera}/timeline", params=params,
                                headers=actors["operateur1@valdoise.demo"].headers)
    assert response.status_code == 200, response.text
    body = response.json()
    spans = [(datetime.fromisoformat(s["start_at"]), datetime.fromisoformat(s["end_at"])) for s in body["recorded"]]
    assert spans[0][0] == recording.start
    assert spans[-1][1] == recording.end
    assert len(spans) == 2
    gaps = [(datetime.fromisoformat(g["start_at"]), datetime.fromisoformat(g["end_at"]), g["cause"])
            for g in body["gaps"]]
    # Before the first segment (nothing known), the outage (its cause), after the last one (up to the end asked).
    assert gaps[0][:2] == (recording.start - timedelta(seconds=60), recording.start)
    assert gaps[0][2] is None
    assert gaps[1] == (*recording.gap, "camera_unreachable")
    assert gaps[2][0] == recording.end
    # A mayor sees when their cameras recorded (no image); an interval ending before it starts is refused.
    assert (await client.get(f"/cameras/{recording.camera}/timeline", params=params,
                             headers=actors["maire@cergy.demo"].headers)).status_code == 200
    backwards = await client.get(f"/cameras/{recording.camera}/timeline",
                                 params={"start": params["end"], "end": params["start"]},
                                 headers=actors["operateur1@valdoise.demo"].headers)
    assert backwards.status_code in (400, 422)


async def test_media_links_answer_byte_ranges(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], recording: Recording,
) -> None:
    window = {"start": recording.start.isoformat(), "end": recording.end.isoformat(), "motive": "relecture"}
    body = (await client.post(f"/cameras/{recording.camera}/playback/hls", json=window,
                              headers=actors["operateur1@valdoise.demo"].headers)).json()
    url = _local(re.findall(r"^(http\S+)$", body["playlist"], re.MULTILINE)[0])
    whole = await client.get(url)
    assert whole.status_code == 200
    assert whole.headers["accept-ranges"] == "bytes"
    size = len(whole.content)
    tail = await client.get(url, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206
    assert tail.content == whole.content[-100:]
    beyond = await client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    forged = await client.get(url.replace("signature=", "signature=0"), headers={"Range": "bytes=0-10"})
    assert forged.status_code == 404


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-99", (0, 99)), ("bytes=100-", (100, 999)), ("bytes=-10", (990, 999)), ("bytes=990-5000", (990, 999)),
    ("bytes=1000-", None), ("bytes=5-2", None), ("bytes=0-1,5-6", None), ("items=0-1", None), ("bytes=abc-5", None),
    ("bytes=-0", None), ("bytes=-", None), ("bytes=1-x", None),
])
def test_byte_ranges_are_parsed_as_http_counts_them(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_byte_range(header, 1000) == expected
