"""The gateway's upstream sessions: viewers of one camera and stream share one StreamRemuxer; a camera takes at most
`viewer_cap` viewers (both streams together); a session ends a few seconds after its last viewer left."""

from __future__ import annotations

import asyncio
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge

from live.errors import GOING_AWAY, ViewerCapReached
from live.model import CameraSource, Stream
from live.remuxer import StreamRemuxer, Viewer
from live.settings import LiveSettings


class ViewerHub:
    """Joins viewers to sessions, enforces the cap, stops idle sessions, and counts it all on its own registry."""

    def __init__(self, settings: LiveSettings) -> None:
        self.settings = settings
        self.sessions: dict[tuple[uuid.UUID, Stream], StreamRemuxer] = {}
        self._where: dict[Viewer, StreamRemuxer] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self.registry = CollectorRegistry()
        Gauge("vigie_live_upstream_sessions", "Upstream sessions (one ffmpeg each) open now", registry=self.registry
              ).set_function(lambda: len(self.sessions))
        Gauge("vigie_live_ffmpeg_running", "Upstream ffmpeg processes alive now", registry=self.registry
              ).set_function(lambda: sum(1 for s in self.sessions.values() if s.running))
        Gauge("vigie_live_viewers", "Viewers connected now", registry=self.registry
              ).set_function(lambda: len(self._where))
        self.refused = Counter("vigie_live_viewers_refused", "Viewers refused, by reason", ["reason"],
                               registry=self.registry)
        self.sessions_started = Counter("vigie_live_sessions_started", "Upstream sessions started",
                                        registry=self.registry)

    def viewers_of(self, camera_id: uuid.UUID) -> int:
        return sum(len(s.viewers) for (camera, _), s in self.sessions.items() if camera == camera_id)

    def join(self, source: CameraSource, viewer: Viewer) -> StreamRemuxer:
        """Attach a viewer to the camera stream's session, starting one if none runs. Synchronous, so two viewers
        joining at once cannot both take the last place."""
        if self.viewers_of(source.camera_id) >= self.settings.viewer_cap:
            self.refused.labels("viewer_cap").inc()
            raise ViewerCapReached(
                f"this camera already has {self.settings.viewer_cap} viewers, the most this gateway serves; "
                "close another view of it and retry")
        session = self.sessions.get(source.key)
        if session is not None and not session.viewers and session.source != source:
            # Lingering since before the camera changed (address, credentials, masks, transcode): not reused, or the
            # new viewer would get the old stream, e.g. an administrator's connection test after a password change.
            self._done(session)
            session = None
        if session is None or session.finished:
            session = StreamRemuxer(source, self.settings, on_done=self._done)
            self.sessions[source.key] = session
            self.sessions_started.inc()
            session.start()
        session.add(viewer)
        self._where[viewer] = session
        return session

    def leave(self, viewer: Viewer) -> None:
        session = self._where.pop(viewer, None)
        if session is not None:
            session.remove(viewer)

    def _done(self, session: StreamRemuxer) -> None:
        """The session lingered with no viewer, or ended by itself (a codec browsers cannot play)."""
        if self.sessions.get(session.source.key) is session:
            del self.sessions[session.source.key]
        task = asyncio.create_task(session.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def close(self) -> None:
        """Gateway shutdown: every viewer is told to go, every ffmpeg stopped."""
        for viewer in list(self._where):
            viewer.close(GOING_AWAY, "the live gateway is stopping")
        sessions = list(self.sessions.values())
        self.sessions.clear()
        await asyncio.gather(*(s.stop() for s in sessions), *self._stopping)
