"""Camera URLs: the host is an IP address inside the department's camera networks (never link-local, multicast or
reserved), networks are declared narrowly, credentials follow a camera only to hosts it already had, and the
recorder hands ffmpeg the URL through a pipe, never on its command line."""

from __future__ import annotations

import ipaddress
import time
import uuid

import pytest

from core.errors import InvalidInput
from dvr.errors import InvalidCameraUrl
from dvr.recorder import ffconcat_script, ffmpeg_command
from dvr.rules import url_with_credentials
from dvr.settings import DvrSettings
from tenants import rules

NETWORKS = [ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("2001:db8:10::/48")]


@pytest.mark.parametrize("url", ["rtsp://10.20.3.4:554/main", "rtsps://10.20.0.9/h264", "rtsp://[2001:db8:10::5]/x"])
def test_a_camera_inside_the_department_networks_is_accepted(url: str) -> None:
    rules.check_camera_host(url, NETWORKS, field="main_stream_url")


@pytest.mark.parametrize("url", [
    "rtsp://169.254.169.254:80/x",          # the cloud metadata service
    "rtsp://[::ffff:169.254.169.254]/x",    # the same, IPv4-mapped
    "rtsp://[fd00:ec2::254]/x",             # its IPv6 address
    "rtsp://224.0.0.1/x", "rtsp://0.0.0.0/x", "rtsp://[fe80::1]/x",
])
def test_link_local_multicast_and_reserved_addresses_are_never_cameras(url: str) -> None:
    everything = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    with pytest.raises(InvalidInput, match="never a camera") as refused:
        rules.check_camera_host(url, everything, field="main_stream_url")
    assert refused.value.field == "main_stream_url"


@pytest.mark.parametrize("url", ["rtsp://cam.cergy.fr/x", "rtsp://2130706433/x", "rtsp://127.1/x",
                                 "rtsp://localhost:8554/x"])
def test_host_names_are_refused_rather_than_resolved(url: str) -> None:
    with pytest.raises(InvalidInput, match="IP address"):
        rules.check_camera_host(url, [ipaddress.ip_network("127.0.0.0/8")], field="sub_stream_url")


def test_an_address_outside_the_networks_is_refused() -> None:
    with pytest.raises(InvalidInput, match="none of the department's camera networks"):
        rules.check_camera_host("rtsp://10.21.0.1/x", NETWORKS, field="main_stream_url")
    with pytest.raises(InvalidInput, match="none of the department's camera networks"):
        rules.check_camera_host("rtsp://10.20.0.1/x", [], field="main_stream_url")  # none declared: none allowed


@pytest.mark.parametrize(("value", "why"), [
    ("0.0.0.0/0", "wider"), ("10.0.0.0/7", "wider"), ("2001::/16", "wider"), ("169.254.0.0/24", "overlaps"),
    ("169.0.0.0/8", "overlaps"), ("fe80::/32", "overlaps"), ("10.0.0.1/8", "CIDR"), ("not a network", "CIDR"),
])
def test_camera_networks_are_declared_narrowly(value: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        rules.check_camera_network(value)


def test_credentials_follow_a_camera_only_to_hosts_it_already_had() -> None:
    old = ["rtsp://10.20.0.5:554/main", "rtsp://10.20.0.5:554/sub"]
    assert rules.credentials_follow(old, ["rtsp://10.20.0.5:8554/main", None])  # another port, same camera
    assert not rules.credentials_follow(old, ["rtsp://10.20.0.6/main", "rtsp://10.20.0.5/sub"])
    assert not rules.credentials_follow(old, ["rtsp://10.20.0.5/main", "rtsp://10.20.9.9/sub"])


def test_the_recorder_never_puts_the_camera_url_on_ffmpegs_command_line() -> None:
    settings = DvrSettings()
    url = url_with_credentials("rtsp://10.20.0.5:554/main", "admin", "s3cret'pass")
    command = ffmpeg_command(settings, "/spool/x_%06d.mp4", input_fd=7)
    assert not any("s3cret" in part or "10.20.0.5" in part for part in command)
    assert command[command.index("-i") + 1] == "pipe:7"
    assert command[command.index("-protocol_whitelist") + 1] == "pipe,rtsp,rtsps,tcp,udp,rtp,tls"
    script = ffconcat_script(settings, url).decode()
    assert script.splitlines()[0] == "ffconcat version 1.0"
    assert f"file '{url}'" in script  # percent-encoded userinfo: no quote to escape here
    assert "option rtsp_transport tcp" in script
    assert "file 'rtsp://h/it'\\''s'" in ffconcat_script(settings, "rtsp://h/it's").decode()
    with pytest.raises(InvalidCameraUrl):
        ffconcat_script(settings, "rtsp://10.20.0.5/main'\nfile 'file:///etc/passwd")


def test_the_detectors_offline_reason_never_carries_the_cameras_password(monkeypatch: pytest.MonkeyPatch) -> None:
    import av

    from inference import rtsp

    url = "rtsp://viewer:hunter2@10.20.0.5:554/sub"

    def refused(*_args: object, **_kwargs: object) -> None:
        # libav names the URL it failed to open, credentials included.
        raise av.error.InvalidDataError(-1094995529, "Invalid data found when processing input", url)

    monkeypatch.setattr(rtsp.av, "open", refused)
    changes: list[rtsp.StreamChange] = []
    reader = rtsp.RtspCameraReader(uuid.uuid4(), url, rtsp.ReaderOptions(offline_after_s=0.0, reconnect_cap_s=0.05),
                                   on_change=changes.append)
    reader.start()
    try:
        deadline = time.monotonic() + 5
        while not changes and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        reader.stop()
    assert changes, "the reader never reported the camera offline"
    assert "hunter2" not in changes[0].reason
    assert "rtsp://***@10.20.0.5:554/sub" in changes[0].reason
    assert "hunter2" not in reader.last_error
