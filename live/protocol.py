"""The socket's text frames: JSON status and error messages (binary frames carry the fMP4 init segment and fragments).

Every text frame is an object with `type`: `status` (`state`: connecting, online, offline, codec_unsupported) or
`error` (just before the gateway closes the socket with the same code and reason). docs/live.md describes them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from live.model import Stream, TrackInfo
from live.rules import mime_type


def _encode(message: dict[str, Any]) -> str:
    return msgspec.json.encode(message).decode()


def connecting(camera_id: uuid.UUID, stream: Stream) -> str:
    return _encode({"type": "status", "state": "connecting", "camera_id": str(camera_id), "stream": stream.value})


def online(camera_id: uuid.UUID, stream: Stream, track: TrackInfo, *, transcoded: bool, masked: bool) -> str:
    """Sent before every init segment: the client (re)creates its SourceBuffer with `mime`, then appends."""
    return _encode({
        "type": "status", "state": "online", "camera_id": str(camera_id), "stream": stream.value,
        "codec": track.codec, "mime": mime_type(track), "width": track.width, "height": track.height,
        "transcoded": transcoded, "masked": masked,
    })


def offline(camera_id: uuid.UUID, stream: Stream, reason: str, since: datetime) -> str:
    return _encode({"type": "status", "state": "offline", "camera_id": str(camera_id), "stream": stream.value,
                    "reason": reason, "since": since.astimezone(UTC).isoformat()})


def codec_unsupported(camera_id: uuid.UUID, stream: Stream, track: TrackInfo) -> str:
    name = f"H.265 ({track.sample_entry})" if track.sample_entry in ("hvc1", "hev1") else track.sample_entry
    return _encode({
        "type": "status", "state": "codec_unsupported", "camera_id": str(camera_id), "stream": stream.value,
        "codec": track.codec,
        "reason": f"{name} does not play in browsers' Media Source Extensions; set the camera's live_transcode "
                  "option to have the gateway transcode it to H.264",
    })


def error(code: int, reason: str) -> str:
    return _encode({"type": "error", "code": code, "reason": reason})
