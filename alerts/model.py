"""Alert records, the rows the engine writes, and the inputs of the operator workflow (the API decodes requests into
these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, NamedTuple

import msgspec

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
Motive = Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Step = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
Verdict = Literal["true_positive", "false_positive"]


class SopStep(msgspec.Struct, frozen=True, kw_only=True):
    step: str
    done_by: uuid.UUID | None = None
    done_at: datetime | None = None
    note: str | None = None


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """An alert as operators see it. `verified_*` set means a human looked at the images."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    site_id: uuid.UUID
    insee_code: str
    rule_id: uuid.UUID | None
    rule_type: str
    legal_event_type: str | None
    severity: int
    priority: int
    state: str
    detail: str
    snapshot_key: str | None
    clip_id: uuid.UUID | None
    clip_status: str
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    raised_at: datetime
    sla_claim_due_at: datetime
    claimed_by: uuid.UUID | None
    claimed_at: datetime | None
    verified_by: uuid.UUID | None
    verified_at: datetime | None
    verdict: str | None
    dismissed_reason: str | None
    outcome: str | None
    closed_at: datetime | None
    auto_dispatched: bool
    call_force_prompt_at: datetime | None


class AlertDetail(msgspec.Struct, frozen=True, kw_only=True):
    alert: Alert
    sop: list[SopStep]
    dispatches: list[Dispatch]


class Dispatch(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    alert_id: uuid.UUID
    force_id: uuid.UUID
    force_kind: str
    officer_ids: list[uuid.UUID]
    urgency: str
    ttl_s: int
    escalation_level: int
    status: str
    auto: bool
    ordered_by: uuid.UUID | None
    ordered_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    closed_at: datetime | None
    call_force_prompt_at: datetime | None


class ResponderStatus(msgspec.Struct, frozen=True, kw_only=True):
    dispatch_id: uuid.UUID
    officer_id: uuid.UUID | None
    device_id: uuid.UUID | None
    status: str
    occurred_at: datetime


class Responders(msgspec.Struct, frozen=True, kw_only=True):
    dispatches: list[Dispatch]
    statuses: list[ResponderStatus]


class ForceRecommendation(msgspec.Struct, frozen=True, kw_only=True):
    force_id: uuid.UUID
    kind: str
    name: str
    phone: str | None


class SlaBreach(msgspec.Struct, frozen=True, kw_only=True):
    alert_id: uuid.UUID
    tenant_id: uuid.UUID
    rule_type: str
    severity: int
    raised_at: datetime
    due_at: datetime
    overdue_s: float
    kind: Literal["unclaimed", "force_unacknowledged"]


class PrecisionRow(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    true_positives: int
    false_positives: int
    unjudged: int
    precision: float | None


class LogbookEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    alert_id: uuid.UUID | None
    author_id: uuid.UUID | None
    kind: str
    action: str
    text: str
    created_at: datetime


class Handover(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    author_id: uuid.UUID
    period_start: datetime
    period_end: datetime
    summary: dict[str, object]
    notes: str | None
    created_at: datetime


class RoutingRuleRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    insee_code: str | None
    event_type: str | None
    start_minute: int
    end_minute: int
    force_id: uuid.UUID
    effect: str
    note: str | None


class PolicyRecord(msgspec.Struct, frozen=True, kw_only=True):
    rule_type: str
    severity: int
    dedupe_window_s: int
    cooldown_s: int
    sla_claim_s: int
    auto_dispatch: bool


# Rows written as decided (plain tuples: the engine builds thousands a second) ---------------------------------


class AlertRow(NamedTuple):
    """A new alert, as the engine inserts it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    site_id: uuid.UUID
    insee_code: str
    rule_id: uuid.UUID | None
    rule_type: str
    legal_event_type: str | None
    track_ids: list[int]
    severity: int
    priority: int
    state: str
    auto_dispatched: bool
    detail: str
    snapshot_key: str | None
    source_event_id: uuid.UUID
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    sla_claim_due_at: datetime
    clip_status: str


class FoldRow(NamedTuple):
    """Occurrences added to an alert raised by an earlier transaction."""

    id: uuid.UUID
    added: int
    last_seen: datetime
    tracks: list[int]


class SourceRow(NamedTuple):
    """A handled event and the alert it went to (the unique key that makes redelivery harmless)."""

    tenant_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    alert_id: uuid.UUID | None


class DispatchRow(NamedTuple):
    id: uuid.UUID
    tenant_id: uuid.UUID
    alert_id: uuid.UUID
    force_id: uuid.UUID
    force_kind: str
    officer_ids: list[uuid.UUID]
    urgency: str
    ttl_s: int
    auto: bool
    ordered_by: uuid.UUID | None


class TimerRow(NamedTuple):
    id: uuid.UUID
    tenant_id: uuid.UUID
    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    kind: str
    level: int
    due_at: datetime


class LogbookRow(NamedTuple):
    """A main courante line as the engine writes it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    alert_id: uuid.UUID | None
    author_id: uuid.UUID | None
    kind: str
    action: str
    text: str


# Inputs ------------------------------------------------------------------------------------------------------


class VerifyInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Opening the images to verify is a media access: journaled with its motive."""

    media: Literal["live", "snapshot", "clip"]
    motive: Motive


class DismissInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Literal["false_positive", "known_activity", "authorised_presence", "duplicate", "test",
                    "out_of_perimeter", "other"]
    note: Short | None = None


class DispatchInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Forces to alert; officer_ids empty = every officer of each force with a device."""

    force_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=5)]
    officer_ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    urgency: Literal["routine", "urgent", "immediate"] | None = None
    ttl_s: Annotated[int, msgspec.Meta(ge=10, le=3600)] = 300


class CloseInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    outcome: Literal["intervention_done", "no_intervention_needed", "handed_to_force", "false_alarm_on_site", "other"]
    note: Short | None = None


class SopStepInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    step: Step
    note: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class LogbookInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Text
    alert_id: uuid.UUID | None = None


class HandoverInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = 8
    notes: Annotated[str, msgspec.Meta(max_length=4000)] | None = None


class RoutingRuleInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    force_id: uuid.UUID
    effect: Literal["add", "remove"]
    insee_code: Annotated[str, msgspec.Meta(pattern=r"^([0-9]{2}|2A|2B)[0-9]{3}$")] | None = None
    event_type: Annotated[str, msgspec.Meta(min_length=1, max_length=50)] | None = None
    start_minute: Annotated[int, msgspec.Meta(ge=0, le=1440)] = 0
    end_minute: Annotated[int, msgspec.Meta(ge=0, le=1440)] = 1440
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class PolicyInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rule_type: Literal["intrusion", "loitering", "line_crossing", "wrong_way", "excessive_density", "crowd_movement",
                       "abandoned_object", "person_on_ground", "camera_tamper", "fire_start", "weapon",
                       "camera_offline"]
    severity: Annotated[int, msgspec.Meta(ge=1, le=5)]
    dedupe_window_s: Annotated[int, msgspec.Meta(ge=0, le=86400)] = 120
    cooldown_s: Annotated[int, msgspec.Meta(ge=0, le=86400)] = 60
    sla_claim_s: Annotated[int, msgspec.Meta(ge=5, le=86400)] = 60
    auto_dispatch: bool = False


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """An alert's picture (JPEG) as the detector stored it at the instant the rule fired."""

    alert_id: uuid.UUID
    camera_id: uuid.UUID
    taken_at: datetime
    content: bytes
