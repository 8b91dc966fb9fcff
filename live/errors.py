"""Why the gateway refuses or ends a viewing: each error carries the WebSocket close code and reason it sends."""

from __future__ import annotations

from core.errors import VigieError

# Close codes (4000-4999 are the application's): the console tells the viewer why the tile stays dark.
BAD_REQUEST = 4400
TICKET_REJECTED = 4401
FORBIDDEN = 4403
CAMERA_NOT_FOUND = 4404
TICKET_USED = 4409
CODEC_UNSUPPORTED = 4415
VIEWER_CAP = 4429
GOING_AWAY = 1001
INTERNAL = 1011


class LiveRefused(VigieError):
    """A viewing refused or ended by the gateway; `code` and `detail` go in the close frame."""

    code = BAD_REQUEST

    def __init__(self, detail: str, *, code: int | None = None) -> None:
        # A close frame's reason is at most 123 bytes.
        super().__init__(detail.encode()[:123].decode(errors="ignore"))
        if code is not None:
            self.code = code


class TicketRejected(LiveRefused):
    """Malformed, forged or expired ticket, or its session has ended."""

    code = TICKET_REJECTED


class TicketMismatch(LiveRefused):
    """The ticket was issued for another camera or stream."""

    code = FORBIDDEN


class TicketUsed(LiveRefused):
    """A ticket opens one viewing only."""

    code = TICKET_USED


class CameraGone(LiveRefused):
    """The camera no longer exists in the ticket's tenant."""

    code = CAMERA_NOT_FOUND


class ViewerCapReached(LiveRefused):
    """The camera already has as many viewers as the gateway takes."""

    code = VIEWER_CAP
