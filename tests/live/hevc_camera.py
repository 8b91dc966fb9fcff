"""A simulated H.265 camera (camsim's cameras are H.264 only): GStreamer's RTSP server under the system python,
encoding a moving test pattern with x265 on /main and /sub. `python3 hevc_camera.py PORT`; prints "ready PORT"."""

from __future__ import annotations

import signal
import sys

import gi  # type: ignore[import-not-found]

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found]  # noqa: E402

WIDTH, HEIGHT = 320, 240


def main(port: str) -> int:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_shared(True)
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={WIDTH},height={HEIGHT},framerate=10/1 "
        "! x265enc speed-preset=ultrafast tune=zerolatency key-int-max=10 "
        "! h265parse config-interval=-1 ! rtph265pay name=pay0 pt=96 config-interval=-1 )"
    )
    for mount in ("/main", "/sub"):
        server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        sys.stderr.write(f"cannot listen on {port}\n")
        return 2
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    sys.stdout.write(f"ready {port}\n")
    sys.stdout.flush()
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
