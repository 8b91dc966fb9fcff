"""Events mobile_push publishes on JetStream stream PUSH, subjects push.<tenant>.<kind>: what became of each push."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from core.bus import StreamSpec, tenant_subject
from core.events import Event

# Published through mobile_push's outbox relay with Nats-Msg-Id = event_id = the outbox row's id.
PUSH_STREAM = StreamSpec("PUSH", ["push.>"], max_age_s=30 * 86400, duplicate_window_s=600.0)
SUBJECT_PREFIX = "push"


class ResponderStatus(StrEnum):
    """What an officer's app reports about one dispatch, in this order only. `delivered` is the device's
    receipt (the app got the push); the others are the officer's own actions."""

    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    CLOSED = "closed"


class PushAccepted(Event, frozen=True, kw_only=True):
    """FCM accepted the message for one device: handed to Google, not yet delivered (FCM guarantees nothing)."""

    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    officer_id: uuid.UUID
    device_id: uuid.UUID
    escalation_level: int = 0


class PushDelivered(Event, frozen=True, kw_only=True):
    """The officer's app confirmed it received the push (its `delivered` receipt)."""

    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    officer_id: uuid.UUID
    device_id: uuid.UUID
    status: ResponderStatus = ResponderStatus.DELIVERED  # always delivered; named like ResponderStatusReported's


class PushFailed(Event, frozen=True, kw_only=True):
    """No device of this officer can be reached for this dispatch: escalate now, without waiting for a timer.

    `reason`: no_device (none registered or all stale/removed), tokens_rejected (FCM refused every token),
    expired (still undelivered to FCM when the order's TTL ran out), credentials (our FCM credentials fail),
    force_not_competent (the force may not act in the alert's commune).
    """

    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    officer_id: uuid.UUID | None
    device_id: uuid.UUID | None = None
    reason: Literal["no_device", "tokens_rejected", "expired", "credentials", "force_not_competent"]
    detail: str = ""


class ResponderStatusReported(Event, frozen=True, kw_only=True):
    """An officer moved a dispatch forward (acknowledged → en_route → on_scene → closed); `delivered` too."""

    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    officer_id: uuid.UUID
    device_id: uuid.UUID | None
    status: ResponderStatus


class PushHealthAlarmRaised(Event, frozen=True, kw_only=True):
    """Our FCM credentials (service account, or APNs/web-push keys behind FCM) are refused: pushes cannot go."""

    kind: Literal["credentials", "third_party_auth"]
    detail: str


PUSH_EVENTS: tuple[type[Event], ...] = (
    PushAccepted,
    PushDelivered,
    PushFailed,
    ResponderStatusReported,
    PushHealthAlarmRaised,
)

_KINDS: dict[type[Event], str] = {
    PushAccepted: "accepted",
    PushDelivered: "delivered",
    PushFailed: "failed",
    ResponderStatusReported: "status_reported",
    PushHealthAlarmRaised: "health_alarm",
}


def kind_of(event_type: type[Event]) -> str:
    return _KINDS[event_type]


def subject_for(event: Event) -> str:
    """push.<tenant>.<kind>: the alerts engine filters push.*.delivered, push.*.failed, push.*.status_reported."""
    return tenant_subject(SUBJECT_PREFIX, event.tenant_id, _KINDS[type(event)])
