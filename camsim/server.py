"""One simulated IP camera: a GStreamer RTSP server (system python + gi) serving /main and /sub like a live camera.

Run by camsim.simulator under /usr/bin/python3; it imports only the standard library and gi, never the project.
Frames advance on the wall clock whether or not anyone watches, as a real camera's do; a viewer joins on the
next keyframe. Like a camera's encoder, each frame is stamped on the frame clock (1/fps steps of the pipeline's running
time, strictly increasing) rather than with its jittery arrival time, and the parameter sets travel once per keyframe
(the footage carries them in-band; the payloader adds none, which it would do before every slice of a multi-slice
IDR, making a receiver see two access units with one timestamp). SIGTERM stops it cleanly, SIGUSR1 toggles a
blackout (lens covered), SIGUSR2 corrupts the stream's bytes (or stops), SIGSTOP freezes it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gi  # type: ignore[import-not-found]

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found]  # noqa: E402


class ClipFeed:
    """Plays one encoded clip on loop and pushes each access unit to every appsrc currently attached."""

    def __init__(self, clips: list[tuple[Path, Path]], *, max_seconds: float | None = None) -> None:
        self.units: list[tuple[bytes, bool]] = []
        for data_path, index_path in clips:
            index = json.loads(index_path.read_text())
            self.fps: int = int(index["fps"])
            data = data_path.read_bytes()
            units = [(data[o:o + n], bool(k)) for o, n, k in index["units"]]
            if max_seconds is not None:
                # Cut on a keyframe, so the next clip (another resolution, maybe) starts with a clean GOP.
                limit = int(max_seconds * self.fps)
                while limit < len(units) and not units[limit][1]:
                    limit -= 1
                units = units[:max(limit, 1)]
            self.units += units
        self.black_units: list[tuple[bytes, bool]] | None = None
        self.blackout = False
        self.corrupt = False
        self._blackout_active = False
        self._black_position = 0
        self._sources: dict[int, tuple[Any, bool]] = {}  # id(appsrc) -> (appsrc, has seen a keyframe)
        self._last_pts: dict[int, int] = {}  # id(appsrc) -> the last timestamp it was given (ns of running time)
        self._started = time.monotonic()
        self._sent = 0

    @property
    def caps(self) -> str:
        return f"video/x-h264,stream-format=byte-stream,alignment=au,framerate={self.fps}/1"

    def attach(self, appsrc: Any) -> None:
        self._sources[id(appsrc)] = (appsrc, False)

    def detach(self, appsrc: Any) -> None:
        self._sources.pop(id(appsrc), None)
        self._last_pts.pop(id(appsrc), None)

    def tick(self) -> bool:
        # Catch up on the wall clock after a stall (e.g. SIGSTOP): a live camera skips what it did not send.
        due = int((time.monotonic() - self._started) * self.fps)
        if due - self._sent > self.fps:
            self._sent = due - 1
        while self._sent < due:
            payload, is_key = self.units[self._sent % len(self.units)]
            self._sent += 1
            # Switch between the scene and black only on a keyframe, so no decoder gets a P-frame of the other clip.
            if is_key and self.blackout != self._blackout_active and self.black_units:
                self._blackout_active = self.blackout
                self._black_position = 0
            if self._blackout_active and self.black_units:
                payload, is_key = self.black_units[self._black_position % len(self.black_units)]
                self._black_position += 1
            if self.corrupt and len(payload) > 64:
                # Garbage in the middle of the slice data, as a flaky link or a failing encoder produces.
                middle = len(payload) // 2
                payload = payload[:middle] + bytes(range(37, 37 + 32)) + payload[middle + 32:]
            self._push(payload, is_key)
        return True

    def frame_timestamp(self, appsrc: Any) -> int | None:
        """The running time of the frame being sent, on the frame clock: rounded to whole frame periods and kept
        strictly increasing, so a frame sent late (the timer's jitter, a catch-up burst) keeps its own slot."""
        clock = appsrc.get_clock()
        if clock is None:
            return None
        period = int(Gst.SECOND) // self.fps
        running = int(clock.get_time()) - int(appsrc.get_base_time())
        pts = max(0, round(running / period) * period)
        last = self._last_pts.get(id(appsrc))
        if last is not None and pts <= last:
            pts = last + period
        self._last_pts[id(appsrc)] = pts
        return pts

    def _push(self, payload: bytes, is_key: bool) -> None:
        for key, (appsrc, synced) in list(self._sources.items()):
            if not synced and not is_key:
                continue
            buffer = Gst.Buffer.new_wrapped(payload)
            pts = self.frame_timestamp(appsrc)
            if pts is not None:
                buffer.pts = buffer.dts = pts
                buffer.duration = Gst.SECOND // self.fps
            result = appsrc.emit("push-buffer", buffer)
            if result == Gst.FlowReturn.OK:
                self._sources[key] = (appsrc, True)
            else:
                self._sources.pop(key, None)


def build_factory(feed: ClipFeed, auth_role: str | None) -> Any:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_shared(True)
    factory.set_launch(
        f'( appsrc name=src is-live=true format=time caps="{feed.caps}" '
        "! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=0 )"
    )

    def on_configure(_factory: Any, media: Any) -> None:
        appsrc = media.get_element().get_child_by_name("src")
        feed.attach(appsrc)
        media.connect("unprepared", lambda _media: feed.detach(appsrc))

    factory.connect("media-configure", on_configure)
    if auth_role is not None:
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role(auth_role, "media.factory.access", True)
        permissions.add_permission_for_role(auth_role, "media.factory.construct", True)
        factory.set_permissions(permissions)
    return factory


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--main", nargs=2, metavar=("DATA", "INDEX"), action="append", required=True)
    parser.add_argument("--sub", nargs=2, metavar=("DATA", "INDEX"), action="append", required=True,
                        help="repeat to play several clips in turn (e.g. of different resolutions)")
    parser.add_argument("--clip-seconds", type=float, help="play only the first seconds of each clip")
    parser.add_argument("--black-main", nargs=2, metavar=("DATA", "INDEX"))
    parser.add_argument("--black-sub", nargs=2, metavar=("DATA", "INDEX"))
    parser.add_argument("--username")
    parser.add_argument("--password")
    args = parser.parse_args(argv)

    Gst.init(None)
    feeds = {name: ClipFeed([(Path(d), Path(i)) for d, i in clips], max_seconds=args.clip_seconds)
             for name, clips in (("main", args.main), ("sub", args.sub))}
    for name, black in (("main", args.black_main), ("sub", args.black_sub)):
        if black is not None:
            feeds[name].black_units = ClipFeed([(Path(black[0]), Path(black[1]))]).units

    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    role = None
    if args.username:
        role = "viewer"
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", role)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.username, args.password or ""), token)
        server.set_auth(auth)
    mounts = server.get_mount_points()
    for name, feed in feeds.items():
        mounts.add_factory(f"/{name}", build_factory(feed, role))
        GLib.timeout_add(max(1, 500 // feed.fps), feed.tick)
    if server.attach(None) == 0:
        sys.stderr.write(f"cannot listen on {args.host}:{args.port}\n")
        return 2

    loop = GLib.MainLoop()

    def toggle_blackout() -> bool:
        for feed in feeds.values():
            feed.blackout = not feed.blackout
        return True

    def toggle_corruption() -> bool:
        for feed in feeds.values():
            feed.corrupt = not feed.corrupt
        return True

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, lambda: loop.quit() or False)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, toggle_blackout)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, toggle_corruption)
    sys.stdout.write(f"ready {args.port}\n")
    sys.stdout.flush()
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
