"""Pure decisions of live viewing: who may watch, whether a session still allows it, reconnect delays, why a stream
went offline, which codecs a browser plays."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date, datetime
from urllib.parse import quote, urlsplit, urlunsplit

from core.logging import redact_credentials
from core.tenancy import Role
from live.fmp4 import PLAYABLE_ENTRIES
from live.model import SessionState, TrackInfo

# Who may watch live video: the roles that may play recordings back (dvr.service EvidenceService.playback), i.e. the
# habilitated CSU agents and the department's administrators; officers, tenant admins and auditors may not.
LIVE_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.DEPARTMENT_ADMIN})
# Who reads the record of live viewings: the access journal's readers (api.routes.journal).
LIVE_VIEW_READERS = frozenset({Role.AUDITOR, Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.TENANT_ADMIN})
HABILITATED = frozenset({Role.OPERATOR.value, Role.SUPERVISOR.value})


def session_refusal(state: SessionState | None, *, now: datetime, today: date) -> str | None:
    """Why the session a ticket names may no longer watch (None when it may): revoked, expired, account disabled,
    membership withdrawn or no longer a live role, habilitation lapsed (CSI L132-14-1)."""
    if state is None:
        return "session not found"
    if state.revoked_at is not None:
        return "session revoked"
    if state.expires_at <= now:
        return "session expired"
    if state.status != "active":
        return "account disabled"
    if state.role is None or state.role not in {r.value for r in LIVE_ROLES}:
        return "role no longer allows live viewing"
    if state.role in HABILITATED and (state.habilitation_expires_on is None or state.habilitation_expires_on < today):
        return "habilitation expired"
    return None


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Capped exponential backoff with full jitter: viewers of many cameras that all dropped at once (a switch
    rebooting) do not reconnect in step."""
    return rng.uniform(0, min(cap_s, base_s * 2 ** min(attempt, 16)))


_ERROR_WORDS = ("error", "refused", "failed", "timed out", "timeout", "invalid", "not found", "401", "403", "404",
                "unauthorized", "no route", "unreachable", "end of file", "reset")


def offline_reason(stderr_lines: Iterable[str], *, stalled_s: float | None, returncode: int | None) -> str:
    """A short human reason for a stream that stopped, credentials redacted."""
    if stalled_s is not None:
        return f"no data from the camera for {stalled_s:g} s"
    lines = [line.strip() for line in stderr_lines if line.strip()]
    for line in reversed(lines):
        if any(word in line.lower() for word in _ERROR_WORDS):
            return redact_credentials(line)[:200]
    if lines:
        return redact_credentials(lines[-1])[:200]
    return "the camera ended the stream" if returncode == 0 else f"the stream stopped (ffmpeg exit {returncode})"


def playable(track: TrackInfo) -> bool:
    """Whether browsers' Media Source Extensions decode this track (Debian's Chromium: H.264 yes, H.265 no)."""
    return track.sample_entry in PLAYABLE_ENTRIES


def mime_type(track: TrackInfo) -> str:
    return f'video/mp4; codecs="{track.codec}"'


def url_with_credentials(url: str, username: str | None, password: str | None) -> str:
    """The stream URL with the camera's credentials as userinfo (credentials are stored apart, sealed)."""
    if not username:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{quote(username, safe='')}:{quote(password or '', safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_polygons(masks: Iterable[dict[str, object]]) -> tuple[tuple[tuple[float, float], ...], ...]:
    """The polygons of a camera's stored privacy masks (those of three points or more)."""
    polygons = []
    for mask in masks:
        points = mask.get("points")
        if isinstance(points, list) and len(points) >= 3:
            polygons.append(tuple((float(x), float(y)) for x, y in points))
    return tuple(polygons)
