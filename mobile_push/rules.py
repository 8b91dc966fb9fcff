"""Pure decisions of the push domain: token shape and fingerprint, TTL by urgency, the FCM error policy, status order,
staleness."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mobile_push.events import ResponderStatus
from mobile_push.model import FcmError

# An alarm that arrives after this is worse than none: it would send an officer to a scene long resolved.
TTL_CAP_S = {"immediate": 60, "urgent": 300, "routine": 900}
MIN_TTL_S = 5
# FCM registration tokens: base64url characters and a colon, about 140 to 200 long; FCM itself judges validity.
_TOKEN = re.compile(r"^[A-Za-z0-9_:\-]{100,4096}$")
# The purpose a registration token is sealed under with the data key (SecretBox).
TOKEN_PURPOSE = "fcm-token"


def valid_token(token: str) -> bool:
    return bool(_TOKEN.match(token))


def token_digest(token: str) -> bytes:
    """Finds a token again (duplicates) without opening the sealed ones."""
    return hashlib.sha256(token.encode()).digest()


def ttl_for(urgency: str, ordered_ttl_s: int, elapsed_s: float) -> int:
    """The FCM TTL of a message: the order's TTL capped by urgency, minus the time already spent trying."""
    cap = min(ordered_ttl_s, TTL_CAP_S.get(urgency, TTL_CAP_S["urgent"]))
    return max(0, int(cap - elapsed_s))


class Action(StrEnum):
    ACCEPTED = "accepted"
    DELETE_TOKEN = "delete_token"
    RETRY = "retry"
    FAIL = "fail"  # permanent for this message, the token stays (our payload was refused)
    ALARM = "alarm"  # our credentials: the token stays, operators are told, we retry after a pause


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_s: float = 0.0


_DELETE = {FcmError.UNREGISTERED, FcmError.SENDER_ID_MISMATCH, FcmError.INVALID_TOKEN}
_TRANSIENT = {FcmError.QUOTA_EXCEEDED, FcmError.UNAVAILABLE, FcmError.INTERNAL, FcmError.TIMEOUT, FcmError.UNKNOWN}
_CREDENTIALS = {FcmError.CREDENTIALS, FcmError.THIRD_PARTY_AUTH}


def decide(
    error: FcmError | None,
    *,
    attempt: int,
    retry_after_s: float | None,
    backoff_s: tuple[float, ...],
    max_attempts: int,
) -> Decision:
    """What to do after attempt number `attempt` (1-based) ended with `error` (None: FCM accepted)."""
    if error is None:
        return Decision(Action.ACCEPTED)
    if error in _DELETE:
        return Decision(Action.DELETE_TOKEN)
    if error is FcmError.INVALID_ARGUMENT:
        return Decision(Action.FAIL)
    if attempt >= max_attempts:
        return Decision(Action.FAIL)
    delay = backoff_s[min(attempt - 1, len(backoff_s) - 1)] if backoff_s else 1.0
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    if error in _CREDENTIALS:
        return Decision(Action.ALARM, delay)
    assert error in _TRANSIENT
    return Decision(Action.RETRY, delay)


def failure_reason(error: FcmError | None) -> str:
    """Why an officer is unreachable after a permanent failure, in PushFailed's words."""
    if error in _CREDENTIALS:
        return "credentials"
    return "tokens_rejected" if error is FcmError.INVALID_ARGUMENT else "expired"


def alarm_kind(error: FcmError | None) -> str:
    """The health alarm a refused credential raises: APNs/web-push keys behind FCM, or our service account."""
    return "third_party_auth" if error is FcmError.THIRD_PARTY_AUTH else "credentials"


def alarms_cleared_by(platform: str) -> list[str]:
    """An accepted message proves our service account; on iOS it proves the APNs key behind FCM too."""
    return ["credentials", "third_party_auth"] if platform == "ios" else ["credentials"]


# Each status may follow only these; `acknowledged` may come without a `delivered` (the human answer implies it).
_NEXT: dict[ResponderStatus | None, frozenset[ResponderStatus]] = {
    None: frozenset({ResponderStatus.DELIVERED, ResponderStatus.ACKNOWLEDGED}),
    ResponderStatus.DELIVERED: frozenset({ResponderStatus.ACKNOWLEDGED}),
    ResponderStatus.ACKNOWLEDGED: frozenset(
        {ResponderStatus.EN_ROUTE, ResponderStatus.ON_SCENE, ResponderStatus.CLOSED}
    ),
    ResponderStatus.EN_ROUTE: frozenset({ResponderStatus.ON_SCENE, ResponderStatus.CLOSED}),
    ResponderStatus.ON_SCENE: frozenset({ResponderStatus.CLOSED}),
    ResponderStatus.CLOSED: frozenset(),
}
_ORDER = list(ResponderStatus)


class StatusVerdict(StrEnum):
    OK = "ok"
    REPLAY = "replay"
    OUT_OF_ORDER = "out_of_order"


def check_transition(current: ResponderStatus | None, new: ResponderStatus) -> StatusVerdict:
    if new in _NEXT[current]:
        return StatusVerdict.OK
    if current is not None and _ORDER.index(new) <= _ORDER.index(current):
        return StatusVerdict.REPLAY if new is current else StatusVerdict.OUT_OF_ORDER
    return StatusVerdict.OUT_OF_ORDER


def is_stale(last_seen_at: datetime, now: datetime, stale_after_s: int) -> bool:
    return now - last_seen_at > timedelta(seconds=stale_after_s)
