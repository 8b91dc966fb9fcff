"""Live gateway units: tickets, the fMP4 reader on real ffmpeg output, viewers' queues, session and offline rules."""

from __future__ import annotations

import base64
import random
import subprocess
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from pydantic import ValidationError

from cli.secrets import generate_secrets
from core.masks import cover_filter
from live.errors import TicketRejected
from live.fmp4 import FragmentSplitter, StreamError, track_info
from live.model import CameraSource, SessionState, Stream, TicketClaims
from live.remuxer import Closing, Viewer, ffmpeg_command, input_script
from live.rules import (
    backoff_delay,
    mask_polygons,
    offline_reason,
    playable,
    session_refusal,
    url_with_credentials,
)
from live.settings import LiveSettings
from live.tickets import TicketSigner

KEY = "k" * 40


def _claims(exp: float) -> TicketClaims:
    return TicketClaims(jti=uuid.uuid4(), tid=uuid.uuid4(), cam=uuid.uuid4(), stream=Stream.SUB, sub=uuid.uuid4(),
                        sid=uuid.uuid4(), exp=int(exp))


def test_a_ticket_verifies_under_its_key_only_and_until_it_expires() -> None:
    signer = TicketSigner(KEY)
    claims = _claims(time.time() + 30)
    ticket = signer.sign(claims)
    assert signer.verify(ticket, now=time.time()) == claims
    with pytest.raises(TicketRejected, match="signature"):
        TicketSigner("x" * 40).verify(ticket, now=time.time())
    head, _payload, mac = ticket.split(".")
    forged = _claims(time.time() + 30)
    other = base64.urlsafe_b64encode(msgspec.json.encode(forged)).decode().rstrip("=")
    with pytest.raises(TicketRejected, match="signature"):
        signer.verify(f"{head}.{other}.{mac}", now=time.time())
    for garbage in ("", "v1.", "v2.a.b", "v1.!!.??", "v1.a.b.c", "x" * 5000):
        with pytest.raises(TicketRejected, match=r"malformed|signature"):
            signer.verify(garbage, now=time.time())
    with pytest.raises(TicketRejected, match="expired"):
        signer.verify(signer.sign(_claims(time.time() - 60)), now=time.time())


def test_the_ticket_key_is_long_and_its_development_default_is_refused_outside_dev_and_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="32"):
        TicketSigner("short")
    monkeypatch.setenv("VIGIE_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="VIGIE_LIVE_TICKET_KEY"):
        LiveSettings()
    fresh = dict(line.split("=", 1) for line in generate_secrets() if not line.startswith("#"))
    monkeypatch.setenv("VIGIE_LIVE_TICKET_KEY", fresh["VIGIE_LIVE_TICKET_KEY"])
    assert LiveSettings().ticket_key.get_secret_value() == fresh["VIGIE_LIVE_TICKET_KEY"]
    TicketSigner(fresh["VIGIE_LIVE_TICKET_KEY"])  # long enough
    monkeypatch.setenv("VIGIE_LIVE_TICKET_TTL_S", "120")
    with pytest.raises(ValidationError):
        LiveSettings()


def _fmp4(tmp_path: Path, encoder: str, tag: str) -> bytes:
    out = tmp_path / f"{encoder}.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=176x144:rate=10:duration=2",
         "-c:v", encoder, "-g", "10", "-pix_fmt", "yuv420p", "-tag:v", tag, "-f", "mp4",
         "-movflags", "frag_keyframe+empty_moov+default_base_moof", str(out)],
        check=True, timeout=60)
    return out.read_bytes()


@pytest.mark.parametrize(("encoder", "tag", "entry"), [("libx264", "avc1", "avc1"), ("libx265", "hvc1", "hvc1")])
def test_the_splitter_cuts_init_and_fragments_and_reads_the_codec(
    tmp_path: Path, encoder: str, tag: str, entry: str
) -> None:
    data = _fmp4(tmp_path, encoder, tag)
    splitter = FragmentSplitter()
    units = []
    # Fed in odd-sized pieces, as a pipe delivers them.
    for start in range(0, len(data), 777):
        units += splitter.feed(data[start:start + 777])
    assert [u.kind for u in units[:1]] == ["init"]
    assert len(units) >= 3
    assert all(u.kind == "fragment" for u in units[1:])
    # Everything but the random-access index ffmpeg appends when it ends (mfra) is passed on, in order.
    passed = b"".join(u.data for u in units)
    assert data.startswith(passed)
    assert data[len(passed) + 4:len(passed) + 8] in (b"mfra", b"")
    track = track_info(units[0].data)
    assert (track.sample_entry, track.width, track.height) == (entry, 176, 144)
    assert playable(track) == (entry == "avc1")
    if entry == "avc1":
        assert track.codec.startswith("avc1.")
        assert len(track.codec) == 11


def test_the_splitter_refuses_what_is_not_fragmented_mp4() -> None:
    with pytest.raises(StreamError):
        FragmentSplitter().feed(b"\x00\x00\x00\x10mdat" + b"\x00" * 8)
    with pytest.raises(StreamError):
        FragmentSplitter().feed(b"\xff\xff\xff\xffmoof")
    with pytest.raises(StreamError):
        FragmentSplitter().feed(b"RTSP/1.0 401 Unauthorized\r\n")


def test_fragments_are_cut_every_tenth_of_a_second_and_those_opening_on_a_keyframe_say_so(tmp_path: Path) -> None:
    """The gateway's own muxer options on 3 s of 25 fps with a keyframe every second: about ten fragments a second
    (a frame waits in ffmpeg only until its fragment is cut), a cut at each keyframe, and the splitter marks exactly
    the fragments that open on one."""
    muxer = ffmpeg_command(LiveSettings(), CameraSource(uuid.uuid4(), Stream.SUB, "rtsp://cam/sub", transcode=False),
                           input_fd=7)
    muxer = muxer[muxer.index("-f", muxer.index("-c")):-1]
    out = tmp_path / "live.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=176x144:rate=25:duration=3",
         "-c:v", "libx264", "-g", "25", "-bf", "0", "-pix_fmt", "yuv420p", *muxer, str(out)], check=True, timeout=60)
    units = FragmentSplitter().feed(out.read_bytes())
    fragments = units[1:]
    assert units[0].kind == "init"
    assert len(fragments) >= 25  # 75 frames, at most 3 (120 ms) per fragment
    assert [n for n, unit in enumerate(fragments) if unit.keyframe] == [0, 9, 18]  # frames 0, 25 and 50


async def test_a_joining_viewer_starts_at_a_keyframe_and_never_loses_a_status_or_an_init() -> None:
    viewer = Viewer(max_fragments=10)
    viewer.send_text("online")
    viewer.send_init(b"init")
    viewer.send_fragment(b"p1", keyframe=False)  # joined mid-interval: nothing it could decode yet
    viewer.send_fragment(b"k1", keyframe=True)
    viewer.send_fragment(b"p2", keyframe=False)
    assert viewer.dropped == 1
    assert [await viewer.next() for _ in range(4)] == ["online", b"init", b"k1", b"p2"]
    viewer.send_fragment(b"old", keyframe=False)
    viewer.send_text("online again")
    viewer.send_init(b"init2")  # a new ffmpeg run: fragments of the previous one are useless
    viewer.send_fragment(b"p3", keyframe=False)
    viewer.close(4415, "codec")
    viewer.send_fragment(b"after close", keyframe=True)
    assert [await viewer.next() for _ in range(3)] == ["online again", b"init2", Closing(4415, "codec")]


async def test_a_slow_viewer_loses_whole_keyframe_intervals_and_resumes_on_a_keyframe() -> None:
    viewer = Viewer(max_fragments=4)
    for name, key in (("k1", True), ("p1", False), ("k2", True), ("p2", False), ("p3", False)):
        viewer.send_fragment(name.encode(), keyframe=key)
    # Full at p3: dropped up to the newest keyframe, k2, which the decoder can start at.
    assert viewer.dropped == 2
    assert [await viewer.next() for _ in range(3)] == [b"k2", b"p2", b"p3"]

    lagging = Viewer(max_fragments=3)
    for name, key in (("k1", True), ("p1", False), ("p2", False), ("p3", False), ("p4", False), ("k2", True)):
        lagging.send_fragment(name.encode(), keyframe=key)
    # Full at p3 with no later keyframe queued: all three go, then p3 and p4, until the next keyframe.
    assert lagging.dropped == 5
    lagging.send_fragment(b"p5", keyframe=False)
    assert await lagging.next() == b"k2"
    assert await lagging.next() == b"p5"


def test_a_session_allows_live_viewing_only_while_valid_and_habilitated() -> None:
    now = datetime.now(UTC)
    today = now.date()
    good = SessionState(expires_at=now + timedelta(hours=1), revoked_at=None, status="active", role="operator",
                        habilitation_expires_on=today + timedelta(days=30))
    assert session_refusal(good, now=now, today=today) is None

    def variant(**changes: object) -> SessionState:
        return SessionState(**{**good.__dict__, **changes})  # type: ignore[arg-type]

    cases = {
        "session not found": None,
        "session revoked": variant(revoked_at=now),
        "session expired": variant(expires_at=now - timedelta(seconds=1)),
        "account disabled": variant(status="disabled"),
        "role no longer allows live viewing": variant(role="tenant_admin"),
        "habilitation expired": variant(habilitation_expires_on=today - timedelta(days=1)),
    }
    for reason, state in cases.items():
        assert session_refusal(state, now=now, today=today) == reason
    admin = variant(role="department_admin", habilitation_expires_on=None)
    assert session_refusal(admin, now=now, today=date.today()) is None


def test_offline_reasons_are_short_and_never_carry_credentials() -> None:
    lines = ["[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized",
             "rtsp://admin:s3cr3t@10.0.0.5:554/main: Server returned 401 Unauthorized (authorization failed)"]
    reason = offline_reason(lines, stalled_s=None, returncode=1)
    assert "401" in reason
    assert "s3cr3t" not in reason
    assert "admin" not in reason
    assert offline_reason([], stalled_s=8.0, returncode=None) == "no data from the camera for 8 s"
    assert "exit 1" in offline_reason([], stalled_s=None, returncode=1)


def test_backoff_is_jittered_and_capped() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(a, base_s=0.5, cap_s=5.0, rng=rng) for a in range(40)]
    assert all(0 <= d <= 5.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 30


def test_ffmpeg_copies_unless_the_camera_asks_for_a_transcode_and_never_sees_credentials_in_argv() -> None:
    settings = LiveSettings()
    url = url_with_credentials("rtsp://10.0.0.5:554/main", "admin", "p@ss:wo'rd")
    assert url == "rtsp://admin:p%40ss%3Awo%27rd@10.0.0.5:554/main"
    copy = ffmpeg_command(settings, CameraSource(uuid.uuid4(), Stream.MAIN, url, transcode=False), input_fd=7)
    assert copy[copy.index("-c") + 1] == "copy"
    assert "libx264" not in copy
    assert "frag_keyframe+empty_moov+default_base_moof" in copy
    assert copy[copy.index("-frag_duration") + 1] == "100000"  # microseconds
    assert copy[-1] == "pipe:1"
    assert copy[copy.index("-i") + 1] == "pipe:7"
    assert not any("10.0.0.5" in arg or "admin" in arg for arg in copy)
    transcode = ffmpeg_command(settings, CameraSource(uuid.uuid4(), Stream.MAIN, url, transcode=True), input_fd=7)
    assert transcode[transcode.index("-c:v") + 1] == "libx264"
    assert {"veryfast", "zerolatency", "expr:gte(t,n_forced*1)"} <= set(transcode)
    script = input_script(settings, url).decode()
    assert script.splitlines()[:2] == ["ffconcat version 1.0", "file 'rtsp://admin:p%40ss%3Awo%27rd@10.0.0.5:554/main'"]
    assert "option rtsp_transport tcp" in script
    with pytest.raises(ValueError, match="control characters"):
        input_script(settings, "rtsp://10.0.0.5/main\nfile '/etc/passwd'")


def test_privacy_masks_are_burnt_in_with_the_recordings_cover() -> None:
    polygons = mask_polygons([{"points": [[0.2, 0.1], [0.6, 0.3], [0.4, 0.7]]}, {"points": [[0.1, 0.1], [0.2, 0.2]]},
                              {"points": [[-1, 0.5], [1.5, 0.5], [0.5, 2]]}])
    # A two-point "polygon" hides nothing and is dropped; the others keep their points.
    assert polygons == (((0.2, 0.1), (0.6, 0.3), (0.4, 0.7)), ((-1.0, 0.5), (1.5, 0.5), (0.5, 2.0)))
    assert mask_polygons([]) == ()
    masked = ffmpeg_command(LiveSettings(), CameraSource(uuid.uuid4(), Stream.SUB, "rtsp://h/s", transcode=False,
                                                         masks=polygons), input_fd=3)
    assert masked[masked.index("-vf") + 1] == cover_filter(polygons)
    assert masked[masked.index("-c:v") + 1] == "libx264"
    plain = ffmpeg_command(LiveSettings(), CameraSource(uuid.uuid4(), Stream.SUB, "rtsp://h/s", transcode=False),
                           input_fd=3)
    assert "-vf" not in plain
    assert plain[plain.index("-c") + 1] == "copy"
