"""Events alerts publishes through its outbox on JetStream stream ALERTS, subjects alerts.<tenant>.<kind>."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from core.bus import StreamSpec, tenant_subject
from core.events import AwareDatetime, Event

# The relay publishes every event below with Nats-Msg-Id = event_id = the outbox row's id, so a relay that
# republishes after a crash is dropped by the server's duplicate window, and consumers key on event_id too.
ALERTS_STREAM = StreamSpec("ALERTS", ["alerts.>"], max_age_s=30 * 86400, duplicate_window_s=600.0)
SUBJECT_PREFIX = "alerts"


class AlertState(StrEnum):
    """Life of an alert. `verified` means a human looked at the images: only then may it reach a force
    (unless the rule is marked auto-dispatch by a department admin, which is recorded on the alert)."""

    NEW = "new"
    CLAIMED = "claimed"
    VERIFIED = "verified"
    DISPATCHED = "dispatched"
    DISMISSED = "dismissed"
    CLOSED = "closed"


class Urgency(StrEnum):
    """How a dispatch order should be presented on the officer's phone."""

    ROUTINE = "routine"
    URGENT = "urgent"
    IMMEDIATE = "immediate"


ForceKind = Literal["police_nationale", "gendarmerie", "police_municipale", "sdis"]


class AlertRaised(Event, frozen=True, kw_only=True):
    """A detection became a new alert waiting for an operator (a signalement d'attention, not a decision)."""

    alert_id: uuid.UUID
    camera_id: uuid.UUID
    site_id: uuid.UUID | None = None
    insee_code: str | None = None
    rule_id: uuid.UUID | None = None
    rule_type: str
    legal_event_type: str | None = None
    severity: int  # 1 (info) .. 5 (critical)
    priority: int  # queue order: higher first
    source_event_id: uuid.UUID
    snapshot_key: str | None = None
    # When the detection happened; the alert's clip is centred on it. Added as an optional field, which every
    # consumer of schema version 1 reads (unknown fields are ignored), so the version stays 1; an event without it
    # falls back to occurred_at.
    first_seen_at: AwareDatetime | None = None


class AlertClipAttached(Event, frozen=True, kw_only=True):
    """The recorder's clip of the alert is stored: operators can open it (journaled, with a motive)."""

    alert_id: uuid.UUID
    camera_id: uuid.UUID
    clip_id: uuid.UUID
    start_at: AwareDatetime
    end_at: AwareDatetime


class AlertClipUnavailable(Event, frozen=True, kw_only=True):
    """No clip can be made for the alert (nothing was recorded over its interval): operators stop waiting for one."""

    alert_id: uuid.UUID
    camera_id: uuid.UUID
    reason: str


class AlertStateChanged(Event, frozen=True, kw_only=True):
    """An operator (or the engine, actor_id None) moved an alert from one state to another."""

    alert_id: uuid.UUID
    camera_id: uuid.UUID
    from_state: AlertState
    to_state: AlertState
    actor_id: uuid.UUID | None = None
    reason: str | None = None  # dismissal reason, close outcome, or "auto_dispatch"
    verdict: Literal["true_positive", "false_positive"] | None = None


class DispatchOrdered(Event, frozen=True, kw_only=True):
    """Order to alert a force's officers about an alert. Push payloads carry only the opaque alert id.

    `officer_ids` empty means every officer of the force that has a registered device. A re-push at a higher
    `escalation_level` keeps the same `dispatch_id` and gets a new event_id.
    """

    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    camera_id: uuid.UUID
    force_id: uuid.UUID
    force_kind: ForceKind
    officer_ids: tuple[uuid.UUID, ...] = ()
    urgency: Urgency = Urgency.URGENT
    ttl_s: int = 300
    escalation_level: int = 0
    auto: bool = False  # True only for rules a department admin marked auto-dispatch


class DispatchWithdrawn(Event, frozen=True, kw_only=True):
    """The alert was closed or dismissed: phones should drop the pending order for this dispatch."""

    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    reason: str


class EscalationRaised(Event, frozen=True, kw_only=True):
    """An escalation timer fired: no receipt (re-push, next officer) or no acknowledgement (call the force)."""

    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    level: int
    action: Literal["repush_next_officer", "call_force_by_phone"]


class ResponderStatusChanged(Event, frozen=True, kw_only=True):
    """An officer's phone reported a new status for a dispatch (the receipt, then the human statuses): relayed on the
    alert's stream so that the operators' queue shows it as it comes, without asking."""

    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    officer_id: uuid.UUID
    status: Literal["delivered", "acknowledged", "en_route", "on_scene", "closed"]


ALERT_EVENTS: tuple[type[Event], ...] = (
    AlertRaised, AlertStateChanged, DispatchOrdered, DispatchWithdrawn, EscalationRaised, AlertClipAttached,
    AlertClipUnavailable, ResponderStatusChanged,
)

_KINDS: dict[type[Event], str] = {
    AlertRaised: "raised",
    AlertStateChanged: "state_changed",
    DispatchOrdered: "dispatch_ordered",
    DispatchWithdrawn: "dispatch_withdrawn",
    EscalationRaised: "escalation_raised",
    AlertClipAttached: "clip_attached",
    AlertClipUnavailable: "clip_unavailable",
    ResponderStatusChanged: "responder_status",
}


def kind_of(event_type: type[Event]) -> str:
    return _KINDS[event_type]


def subject_for(event: Event) -> str:
    """alerts.<tenant>.<kind>: consumers filter e.g. alerts.*.dispatch_ordered."""
    return tenant_subject(SUBJECT_PREFIX, event.tenant_id, _KINDS[type(event)])
