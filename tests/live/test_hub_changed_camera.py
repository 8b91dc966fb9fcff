"""A lingering upstream session is not handed to a viewer once the camera changed (credentials, address, masks,
transcode): the next viewer gets a session on the camera as it is now; an unchanged camera keeps its session."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from live import hub as hub_module
from live.hub import ViewerHub
from live.model import CameraSource, Stream
from live.settings import LiveSettings


class FakeRemuxer:
    """Records the source it was started with; no ffmpeg."""

    def __init__(self, source: CameraSource, settings: LiveSettings, *, on_done: Any) -> None:
        self.source = source
        self.viewers: set[Any] = set()
        self.finished = False
        self.stopped = False

    def start(self) -> None:
        pass

    def add(self, viewer: Any) -> None:
        self.viewers.add(viewer)

    def remove(self, viewer: Any) -> None:
        self.viewers.discard(viewer)

    async def stop(self) -> None:
        self.stopped = True


async def test_a_lingering_session_of_a_changed_camera_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "StreamRemuxer", FakeRemuxer)
    hub = ViewerHub(LiveSettings())
    camera = uuid.uuid4()
    old = CameraSource(camera_id=camera, stream=Stream.SUB, url="rtsp://viewer:wrong@10.0.0.5/s", transcode=False)
    first_viewer, second_viewer, third_viewer = object(), object(), object()
    first = hub.join(old, first_viewer)  # type: ignore[arg-type]
    hub.leave(first_viewer)  # type: ignore[arg-type]

    # Same camera, unchanged: the lingering session is reused.
    assert hub.join(old, second_viewer) is first  # type: ignore[arg-type]
    hub.leave(second_viewer)  # type: ignore[arg-type]

    # The password changed while it lingered: a fresh session on the new source, the old one stopped.
    new = CameraSource(camera_id=camera, stream=Stream.SUB, url="rtsp://viewer:demo@10.0.0.5/s", transcode=False)
    second = hub.join(new, third_viewer)  # type: ignore[arg-type]
    assert second is not first
    assert second.source == new
    assert hub.sessions[new.key] is second
    for task in list(hub._stopping):
        await task
    assert isinstance(first, FakeRemuxer)
    assert first.stopped
