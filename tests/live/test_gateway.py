"""The live gateway end to end: `python -m live` against real RTSP cameras (camsim, and an H.265 one), real ffmpeg,
real Postgres; a WebSocket client as a browser's Media Source Extensions would be fed."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid

import asyncpg
import av
import pytest

from camsim.simulator import CameraSimulator, CameraSpec
from live.fmp4 import opens_on_keyframe
from live.model import Stream, TicketClaims
from live.service import LiveService
from live.settings import LiveSettings
from live.tickets import TicketSigner
from tests.camsim_fixture import FOOTAGE_CACHE
from tests.live.conftest import Gateway, LiveWorld, hevc_camera, ticket, watch
from tests.mask_check import MIN_PSNR_DB, CameraPicture, judge

pytestmark = pytest.mark.integration

# What the docs promise: a killed camera shows offline within this, and is back (online + init) within that once it
# serves again (backoff capped at 1 s here, 5 s by default).
OFFLINE_WITHIN_S = 5.0
RESUME_WITHIN_S = 10.0
# The upstream ffmpeg stops this soon after its last viewer left (linger 1 s here, 3 s by default).
IDLE_STOP_WITHIN_S = 5.0


def decoded_sizes(init: bytes, fragments: list[bytes]) -> list[tuple[int, int]]:
    """Decode what a Media Source Extensions buffer would be given: the init segment, then fragments."""
    with av.open(io.BytesIO(init + b"".join(fragments)), format="mp4") as container:
        return [(frame.width, frame.height) for frame in container.decode(video=0)]


async def ended_view(world: LiveWorld, view_id: uuid.UUID) -> asyncpg.Record:
    deadline = time.monotonic() + 5
    row = await world.view(view_id)
    while row["ended_at"] is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        row = await world.view(view_id)
    return row


async def wait_until(predicate: object, within: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not within {within} s")


async def test_a_viewer_gets_an_init_segment_and_fragments_that_decode_at_the_stream_size(
    gateway: Gateway, live_world: LiveWorld, live_service: LiveService, camera_simulator: CameraSimulator,
) -> None:
    camera_id = await live_world.sim_camera(camera_simulator.camera("vtest"))
    for stream, size in ((Stream.SUB, (384, 288)), (Stream.MAIN, (768, 576))):
        grant = await ticket(live_service, live_world, camera_id, stream)
        assert grant.url == gateway.url(camera_id, stream.value)
        async with watch(grant.url, grant.ticket) as viewer:
            # About two seconds: fragments are cut every 100 ms and at each keyframe (every second in the footage).
            online, init, fragments = await viewer.init_and_fragments(20)
            assert online["codec"].startswith("avc1.")
            # The client offered permessage-deflate (browsers always do): compressing video once per viewer would
            # cost the gateway most of its CPU for nothing, so it declines.
            assert viewer.ws.response is not None
            assert "permessage-deflate" not in viewer.ws.response.headers.get("Sec-WebSocket-Extensions", "")
            assert online["mime"] == f'video/mp4; codecs="{online["codec"]}"'
            assert (online["width"], online["height"], online["transcoded"]) == (*size, False)
            assert init[4:8] == b"ftyp"
            assert all(f[4:8] == b"moof" for f in fragments)
            # The first opens on a keyframe (the decoder starts there); others are cut within the keyframe interval,
            # so no frame waits a whole interval in the gateway.
            assert opens_on_keyframe(fragments[0])
            assert sum(not opens_on_keyframe(f) for f in fragments) >= len(fragments) // 2
            sizes = decoded_sizes(init, fragments)
            assert len(sizes) >= 5
            assert set(sizes) == {size}
            started = await live_world.view(grant.view_id)
            assert started["started_at"] is not None
            assert started["ended_at"] is None
        # The end of the viewing is recorded when the socket closes.
        ended = await ended_view(live_world, grant.view_id)
        assert ended["ended_at"] >= ended["started_at"]
        assert ended["end_reason"] == "client_closed"
        assert ended["gateway_id"]


async def test_viewers_of_one_camera_share_one_upstream_ffmpeg_which_stops_after_the_last_leaves(
    gateway: Gateway, live_world: LiveWorld, live_service: LiveService, camera_simulator: CameraSimulator,
) -> None:
    camera_id = await live_world.sim_camera(camera_simulator.camera("bikes"))
    before = set(gateway.ffmpeg_children())
    first = await ticket(live_service, live_world, camera_id)
    second = await ticket(live_service, live_world, camera_id)
    async with watch(first.url, first.ticket) as one:
        await one.init_and_fragments(1)
        mine = set(gateway.ffmpeg_children()) - before
        assert len(mine) == 1
        # A late joiner: the status, the same init segment, then fragments from the next keyframe interval.
        async with watch(second.url, second.ticket) as two:
            online, init, fragments = await two.init_and_fragments(1)
            assert online["state"] == "online"
            assert opens_on_keyframe(fragments[0])
            assert set(decoded_sizes(init, fragments)) == {(320, 136)}
            assert set(gateway.ffmpeg_children()) - before == mine
            # The main stream is another upstream session.
            full = await ticket(live_service, live_world, camera_id, Stream.MAIN)
            async with watch(full.url, full.ticket) as three:
                await three.init_and_fragments(1)
                assert len(set(gateway.ffmpeg_children()) - before) == 2
    await wait_until(lambda: not (set(gateway.ffmpeg_children()) & mine), IDLE_STOP_WITHIN_S,
                     "the upstream ffmpeg stopping after its last viewer left")
    await wait_until(lambda: gateway.metric("vigie_live_viewers") == 0, 5, "viewers back to 0")


async def test_the_viewer_cap_refuses_the_next_viewer_with_a_clear_message(
    gateway: Gateway, live_world: LiveWorld, live_service: LiveService, camera_simulator: CameraSimulator,
) -> None:
    camera_id = await live_world.sim_camera(camera_simulator.camera("vtest"))
    grants = [await ticket(live_service, live_world, camera_id, stream)
              for stream in (Stream.SUB, Stream.SUB, Stream.MAIN, Stream.SUB)]
    async with watch(grants[0].url, grants[0].ticket) as a, watch(grants[1].url, grants[1].ticket) as b, \
            watch(grants[2].url, grants[2].ticket) as c:
        for viewer in (a, b, c):
            await viewer.until_status("online")
        # The cap (3 here) counts the camera's viewers of both streams.
        async with watch(grants[3].url, grants[3].ticket) as refused:
            code, reason, texts = await refused.closed()
        assert code == 4429
        assert "3 viewers" in reason
        assert json.loads(texts[-1]) == {"type": "error", "code": 4429, "reason": reason}
        row = await ended_view(live_world, grants[3].view_id)
        assert row["end_reason"] == "viewer_cap"
        # The others keep watching.
        frame = await a.recv()
        assert isinstance(frame, bytes)


async def test_a_killed_camera_shows_offline_within_seconds_and_resumes_by_itself(
    gateway: Gateway, live_world: LiveWorld, live_service: LiveService, camera_simulator: CameraSimulator,
) -> None:
    camera = camera_simulator.add_camera(CameraSpec(f"live-kill-{uuid.uuid4().hex[:6]}", "vtest"))
    try:
        camera_id = await live_world.sim_camera(camera)
        grant = await ticket(live_service, live_world, camera_id)
        async with watch(grant.url, grant.ticket) as viewer:
            await viewer.init_and_fragments(1)
            camera.kill()
            killed = time.monotonic()
            offline = await viewer.until_status("offline", within=OFFLINE_WITHIN_S)
            assert time.monotonic() - killed <= OFFLINE_WITHIN_S
            assert offline["reason"]
            assert offline["since"]
            camera.start()
            back = time.monotonic()
            _, init, fragments = await viewer.init_and_fragments(1, within=RESUME_WITHIN_S)
            assert time.monotonic() - back <= RESUME_WITHIN_S + 2
            # A fresh init segment, which a decoder starts from again.
            assert set(decoded_sizes(init, fragments)) == {(384, 288)}
    finally:
        camera_simulator.remove_camera(camera.name)


async def test_tickets_forged_expired_replayed_or_for_another_camera_or_stream_are_refused(
    gateway: Gateway, live_world: LiveWorld, live_service: LiveService, camera_simulator: CameraSimulator,
) -> None:
    camera_a = await live_world.sim_camera(camera_simulator.camera("vtest"))
    camera_b = await live_world.sim_camera(camera_simulator.camera("bikes"))

    async def refusal(url: str, ticket_text: str | None) -> tuple[int, str]:
        async with watch(url, ticket_text) as viewer:
            code, reason, _ = await viewer.closed()
        return code, reason

    grant = await ticket(live_service, live_world, camera_a)
    signer = TicketSigner(LiveSettings().ticket_key.get_secret_value())
    claims = signer.verify(grant.ticket, now=time.time())
    head, payload, mac = grant.ticket.split(".")
    assert await refusal(grant.url, f"{head}.{payload}.{mac[:-2]}AA") == (4401, "ticket signature is not valid")
    assert await refusal(grant.url, "not a ticket") == (4401, "malformed ticket")
    # Signed with another key: an API of another platform, or a guess.
    other = TicketSigner("another-platform-key-of-forty-characters!!")
    assert await refusal(grant.url, other.sign(claims)) == (4401, "ticket signature is not valid")
    # Expired: signed by the right key, but its time has passed.
    stale = TicketClaims(jti=claims.jti, tid=claims.tid, cam=claims.cam, stream=claims.stream, sub=claims.sub,
                         sid=claims.sid, exp=int(time.time()) - 120)
    assert await refusal(grant.url, signer.sign(stale)) == (4401, "ticket expired")
    # Camera A's ticket does not open camera B, nor A's other stream.
    assert await refusal(gateway.url(camera_b), grant.ticket) == (4403, "this ticket was issued for another camera")
    assert (await refusal(gateway.url(camera_a, "main"), grant.ticket))[0] == 4403
    assert (await refusal(gateway.url(camera_a, "hd"), grant.ticket))[0] == 4400
    # None of those used it up: it opens its own viewing once, and once only.
    async with watch(grant.url, grant.ticket) as viewer:
        await viewer.until_status("online")
        assert await refusal(grant.url, grant.ticket) == (
            4409, "this ticket was already used: ask the API for a new one")
    # A socket that never says its ticket is closed; one whose first frame is not the ticket too.
    code, reason = await refusal(grant.url, None)
    assert code == 4400
    assert "ticket" in reason
    async with watch(grant.url, None) as viewer:
        await viewer.ws.send(b"\x00\x01 binary")
        code, reason, _ = await viewer.closed()
    assert (code, reason) == (4400, 'the first frame must be {"ticket": "..."}')
    # A ticket whose viewing row does not exist (a key holder's forgery) opens nothing either.
    forged = TicketClaims(jti=uuid.uuid4(), tid=claims.tid, cam=claims.cam, stream=claims.stream, sub=claims.sub,
                          sid=claims.sid, exp=int(time.time()) + 30)
    assert await refusal(grant.url, signer.sign(forged)) == (4401, "unknown ticket")


async def test_a_revoked_session_cannot_start_and_stops_watching(
    gateway: Gateway, live_world: LiveWorld, live_service: LiveService, camera_simulator: CameraSimulator,
) -> None:
    camera_id = await live_world.sim_camera(camera_simulator.camera("vtest"))
    watching = await ticket(live_service, live_world, camera_id)
    pending = await ticket(live_service, live_world, camera_id)
    try:
        async with watch(watching.url, watching.ticket) as viewer:
            await viewer.until_status("online")
            async with live_world.pool.acquire() as conn:
                await conn.execute("UPDATE auth_sessions SET revoked_at = now() WHERE id = $1", live_world.session_id)
            # The heartbeat (1 s here, 30 s by default) re-reads the session.
            code, reason, _ = await viewer.closed(within=5)
            assert (code, reason) == (4401, "session revoked")
        async with watch(pending.url, pending.ticket) as late:
            code, reason, _ = await late.closed()
            assert (code, reason) == (4401, "session revoked")
        # The gateway records the end once the socket is closed: waited for, like every other ended viewing.
        row = await ended_view(live_world, watching.view_id)
        assert row["end_reason"] == "closed 4401: session revoked"
        assert row["last_seen_at"] >= row["started_at"]
    finally:
        async with live_world.pool.acquire() as conn:
            await conn.execute("UPDATE auth_sessions SET revoked_at = NULL WHERE id = $1", live_world.session_id)


async def test_camera_credentials_open_the_stream_but_never_reach_the_log(
    gateway: Gateway, live_world: LiveWorld, live_service: LiveService, camera_simulator: CameraSimulator,
) -> None:
    camera = camera_simulator.camera("vtest-auth")
    good = await live_world.sim_camera(camera, credentials=("user", "secret"))
    wrong = await live_world.camera("vtest-auth-wrong", camera.main_url, camera.sub_url,
                                    credentials=("user", "wr0ng-pa55word"))
    grant = await ticket(live_service, live_world, good)
    async with watch(grant.url, grant.ticket) as viewer:
        _, init, fragments = await viewer.init_and_fragments(1)
        assert set(decoded_sizes(init, fragments)) == {(384, 288)}
    grant = await ticket(live_service, live_world, wrong)
    async with watch(grant.url, grant.ticket) as viewer:
        offline = await viewer.until_status("offline")
        assert "401" in offline["reason"] or "nauthorized" in offline["reason"]
        assert "wr0ng-pa55word" not in offline["reason"]
    await asyncio.sleep(0.5)
    log = gateway.process.log_path.read_text(errors="replace")
    assert "live.offline" in log
    assert "wr0ng-pa55word" not in log
    assert "secret@" not in log


async def test_an_h265_camera_is_flagged_and_plays_once_its_transcode_profile_is_set(
    gateway: Gateway, live_world: LiveWorld, live_service: LiveService,
) -> None:
    with hevc_camera() as base:
        plain = await live_world.camera("hevc", f"{base}/main", f"{base}/sub")
        grant = await ticket(live_service, live_world, plain)
        async with watch(grant.url, grant.ticket) as viewer:
            status = await viewer.until_status("codec_unsupported")
            assert status["codec"] in ("hvc1", "hev1")
            assert "live_transcode" in status["reason"]
            code, _, _ = await viewer.closed()
            assert code == 4415
        transcoded = await live_world.camera("hevc-transcoded", f"{base}/main", f"{base}/sub", transcode=True)
        grant = await ticket(live_service, live_world, transcoded)
        async with watch(grant.url, grant.ticket) as viewer:
            online, init, fragments = await viewer.init_and_fragments(2, within=30)
            assert online["codec"].startswith("avc1.")
            assert online["transcoded"] is True
            assert set(decoded_sizes(init, fragments)) == {(320, 240)}


async def test_a_camera_with_privacy_masks_is_streamed_with_them_blacked_out(
    gateway: Gateway, live_world: LiveWorld, live_service: LiveService, camera_simulator: CameraSimulator,
) -> None:
    camera = camera_simulator.camera("vtest")
    # The left half of the picture (a dwelling's windows, say) is masked (CSI L251-3).
    masked = await live_world.camera("vtest-masked", camera.main_url, camera.sub_url,
                                     masks=[[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]])
    grant = await ticket(live_service, live_world, masked)
    async with watch(grant.url, grant.ticket) as viewer:
        online, init, fragments = await viewer.init_and_fragments(1, within=30)
    assert (online["masked"], online["transcoded"]) == (True, True)
    with av.open(io.BytesIO(init + b"".join(fragments)), format="mp4") as container:
        lumas = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    assert lumas
    for luma in lumas:
        assert luma.shape == (288, 384)
        assert luma[:, :192].max() <= 20  # black, whatever the scene does there
        assert luma[:, 200:].std() > 10  # the rest of the scene is seen


async def test_a_live_fragment_hides_each_polygon_and_keeps_the_scene_around_it(
    gateway: Gateway, live_world: LiveWorld, live_service: LiveService, camera_simulator: CameraSimulator,
) -> None:
    camera = camera_simulator.camera("vtest")
    # A doorway (no rectangle) and a window (a triangle), hidden with the same cover as the recordings.
    polygons = [[(0.05, 0.10), (0.35, 0.05), (0.40, 0.55), (0.10, 0.60)], [(0.60, 0.15), (0.90, 0.20), (0.75, 0.45)]]
    masked = await live_world.camera("vtest-polygons", camera.main_url, camera.sub_url, masks=polygons)
    grant = await ticket(live_service, live_world, masked)
    async with watch(grant.url, grant.ticket) as viewer:
        online, init, fragments = await viewer.init_and_fragments(2, within=30)
    assert online["masked"] is True
    with av.open(io.BytesIO(init + b"".join(fragments)), format="mp4") as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    picture = CameraPicture(FOOTAGE_CACHE, "vtest", "sub")
    for frame in (frames[0], frames[-1]):
        verdict = judge(frame, polygons, picture)
        assert verdict.masked_pixels > 0
        assert verdict.leak_pixels == 0, verdict
        assert verdict.psnr_outside_db >= MIN_PSNR_DB, verdict
