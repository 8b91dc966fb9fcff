"""Live viewing records: tickets' claims, what the API hands out, a viewing as the gateway holds it, live_views rows."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import date, datetime

import msgspec


class Stream(enum.StrEnum):
    """The camera's main stream (full view) or its sub stream (wall tiles)."""

    MAIN = "main"
    SUB = "sub"


class TicketClaims(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a viewing ticket binds: the viewing (its live_views id), tenant, camera, stream, user, session, expiry."""

    jti: uuid.UUID
    tid: uuid.UUID
    cam: uuid.UUID
    stream: Stream
    sub: uuid.UUID
    sid: uuid.UUID
    exp: int


class TicketGrant(msgspec.Struct, frozen=True, kw_only=True):
    """A signed, single-use ticket and the socket to present it on, before `expires_at`."""

    ticket: str
    url: str
    expires_at: datetime
    view_id: uuid.UUID
    stream: Stream


class LiveView(msgspec.Struct, frozen=True, kw_only=True):
    """One viewing: issued (journaled as media.live), started and ended by the gateway. A viewing whose gateway died
    keeps ended_at empty; last_seen_at bounds its end."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    user_id: uuid.UUID
    stream: Stream
    motive: str
    issued_at: datetime
    expires_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    last_seen_at: datetime | None


@dataclass(frozen=True)
class CameraSource:
    """The stream a viewing pulls: its URL carries the camera's credentials, so it is never logged or returned."""

    camera_id: uuid.UUID
    stream: Stream
    url: str
    transcode: bool
    # The camera's privacy-mask polygons (CSI L251-3, normalised points); a masked camera is always encoded with them
    # burnt in (core.masks: the same cover as its recordings).
    masks: tuple[tuple[tuple[float, float], ...], ...] = ()

    @property
    def encoded(self) -> bool:
        """Whether the gateway encodes this stream (a transcode profile, or masks to burn in) rather than copy it."""
        return self.transcode or bool(self.masks)

    @property
    def key(self) -> tuple[uuid.UUID, Stream]:
        return self.camera_id, self.stream


@dataclass(frozen=True)
class Viewing:
    """A redeemed ticket: who watches which camera's stream, from when."""

    claims: TicketClaims
    source: CameraSource
    started_at: datetime

    @property
    def view_id(self) -> uuid.UUID:
        return self.claims.jti


@dataclass(frozen=True)
class SessionState:
    """What the sign-in function says of the session a ticket names, re-read while the viewing lasts."""

    expires_at: datetime
    revoked_at: datetime | None
    status: str
    role: str | None
    habilitation_expires_on: date | None


@dataclass(frozen=True)
class TrackInfo:
    """The video track an init segment describes: sample entry (avc1, hvc1…), MSE codec string, picture size."""

    sample_entry: str
    codec: str
    width: int
    height: int
