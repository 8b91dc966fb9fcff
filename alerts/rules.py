"""Pure alert decisions: policies, dedupe and cooldown, priority, state machine, SOPs, routing, SLA, escalation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.errors import AlertClosed, InvalidTransition
from alerts.events import AlertState

# Defaults per rule type; a department overrides them in alert_policies.
# (severity 1..5, dedupe window s, cooldown s, SLA to claim s)
DEFAULT_POLICIES: dict[str, tuple[int, int, int, int]] = {
    "weapon": (5, 120, 30, 15),
    "fire_start": (5, 300, 60, 15),
    "person_on_ground": (4, 300, 60, 30),
    "crowd_movement": (4, 120, 60, 30),
    "excessive_density": (3, 300, 120, 60),
    "intrusion": (3, 120, 60, 60),
    "loitering": (2, 300, 120, 120),
    "line_crossing": (3, 60, 30, 60),
    "wrong_way": (3, 60, 30, 60),
    "abandoned_object": (3, 600, 120, 60),
    "camera_tamper": (2, 600, 300, 300),
    "camera_offline": (2, 3600, 600, 600),
}
FALLBACK_POLICY = (2, 120, 60, 120)

# Sites where the same event weighs more (children, crowds on platforms).
SITE_PRIORITY_BONUS: dict[str, int] = {"college": 2, "school": 2, "transport": 1, "sports": 1, "public_space": 0}

# Rules whose alerts the SDIS receives in addition to the police force.
SDIS_EVENT_TYPES = frozenset({"fire_start", "person_on_ground"})
# Equipment events are never sent to a force: the maintainer is called, not the police.
NON_DISPATCHABLE = frozenset({"camera_offline", "camera_tamper"})

# Standard operating procedures per event type: ordered checklist steps (Mission-Control-style).
SOP_STEPS: dict[str, tuple[str, ...]] = {
    "weapon": ("levee_de_doute", "call_17", "dispatch_forces", "follow_live", "preserve_clip"),
    "fire_start": ("levee_de_doute", "call_18", "dispatch_forces", "follow_live"),
    "person_on_ground": ("levee_de_doute", "call_15_or_18", "dispatch_forces", "follow_live"),
    "abandoned_object": ("levee_de_doute", "review_clip_for_owner", "call_17", "secure_perimeter"),
    "camera_offline": ("check_other_cameras_of_site", "call_maintainer"),
    "camera_tamper": ("check_image", "call_maintainer"),
}
DEFAULT_SOP = ("levee_de_doute", "qualify_event", "call_17_if_needed", "follow_live")

DISMISS_REASONS = frozenset({"false_positive", "known_activity", "authorised_presence", "duplicate", "test",
                             "out_of_perimeter", "other"})
VERIFY_MEDIA = frozenset({"live", "snapshot", "clip"})


@dataclass(frozen=True)
class Policy:
    rule_type: str
    severity: int
    dedupe_window_s: int
    cooldown_s: int
    sla_claim_s: int
    auto_dispatch: bool = False


def default_policy(rule_type: str) -> Policy:
    severity, window, cooldown, sla = DEFAULT_POLICIES.get(rule_type, FALLBACK_POLICY)
    return Policy(rule_type, severity, window, cooldown, sla)


def priority_for(severity: int, site_kind: str | None) -> int:
    """Queue order: severity dominates, the site adds a little (a weapon at a market beats a loiterer at a school)."""
    return severity * 10 + SITE_PRIORITY_BONUS.get(site_kind or "", 0)


@dataclass(frozen=True)
class Recent:
    """The newest alert of the same camera and rule type, as the dedupe decision needs it."""

    alert_id: uuid.UUID
    state: str
    track_ids: frozenset[int]
    raised_at: datetime  # the detection time of its first event (not the commit time: clocks differ)
    last_seen_at: datetime


def fold_into(recent: Recent | None, track_ids: frozenset[int], at: datetime, policy: Policy) -> uuid.UUID | None:
    """The alert a new detection should be folded into, or None to raise a new alert.

    Dedupe: same camera + rule + a shared track, seen within the window — it is the same situation.
    Cooldown: any detection of the same camera and rule shortly after an alert was raised is added to that
    alert rather than paging the operators again. A closed or dismissed alert does not absorb a new track.
    """
    if recent is None:
        return None
    if recent.state in (AlertState.DISMISSED, AlertState.CLOSED):
        # A dismissed alert still absorbs the very same track inside the window: the operator already judged it.
        same_track = bool(track_ids & recent.track_ids) and at - recent.last_seen_at <= timedelta(
            seconds=policy.dedupe_window_s)
        return recent.alert_id if same_track and recent.state == AlertState.DISMISSED else None
    if track_ids & recent.track_ids and at - recent.last_seen_at <= timedelta(seconds=policy.dedupe_window_s):
        return recent.alert_id
    if policy.cooldown_s and at - recent.raised_at <= timedelta(seconds=policy.cooldown_s):
        return recent.alert_id
    if not track_ids and not recent.track_ids and at - recent.last_seen_at <= timedelta(seconds=policy.dedupe_window_s):
        return recent.alert_id  # trackless events (camera health) dedupe on camera + rule alone
    return None


# State machine ------------------------------------------------------------------------------------------------

_ALLOWED: dict[str, frozenset[AlertState]] = {
    "claim": frozenset({AlertState.NEW}),
    "release": frozenset({AlertState.CLAIMED}),
    "verify": frozenset({AlertState.CLAIMED}),
    "dismiss": frozenset({AlertState.NEW, AlertState.CLAIMED, AlertState.VERIFIED}),
    "dispatch": frozenset({AlertState.VERIFIED, AlertState.DISPATCHED}),
    "close": frozenset({AlertState.VERIFIED, AlertState.DISPATCHED}),
    "sop": frozenset({AlertState.CLAIMED, AlertState.VERIFIED, AlertState.DISPATCHED}),
}
_TARGET: dict[str, AlertState] = {
    "claim": AlertState.CLAIMED,
    "release": AlertState.NEW,
    "verify": AlertState.VERIFIED,
    "dismiss": AlertState.DISMISSED,
    "dispatch": AlertState.DISPATCHED,
    "close": AlertState.CLOSED,
    "sop": AlertState.CLAIMED,  # unused: recording a step changes no state
}


def transition(state: str, action: str) -> AlertState:
    """The state after `action`, or a Conflict subtype: closed alerts refuse everything, others name the rule."""
    current = AlertState(state)
    if current in (AlertState.CLOSED, AlertState.DISMISSED):
        raise AlertClosed(f"the alert is {current.value}: no further action")
    if current not in _ALLOWED[action]:
        raise InvalidTransition(f"cannot {action} an alert that is {current.value}")
    return current if action == "sop" else _TARGET[action]


def requires_own_claim(action: str) -> bool:
    """Actions that only the operator holding the alert may take (a supervisor may take over by claiming)."""
    return action in ("verify", "release", "sop")


def sop_for(rule_type: str) -> tuple[str, ...]:
    return SOP_STEPS.get(rule_type, DEFAULT_SOP)


# Jurisdiction routing -------------------------------------------------------------------------------------------

# Routing rules name hours of the department's clock.
TIMEZONE = ZoneInfo("Europe/Paris")


def local_minute(at: datetime) -> int:
    """Minute of the local day, as routing rules' windows count it."""
    local = at.astimezone(TIMEZONE)
    return local.hour * 60 + local.minute



@dataclass(frozen=True)
class ForceRef:
    id: uuid.UUID
    kind: str
    name: str
    tenant_id: uuid.UUID | None
    communes: frozenset[str]
    phone: str | None = None


@dataclass(frozen=True)
class RoutingRule:
    insee_code: str | None
    event_type: str | None
    start_minute: int
    end_minute: int
    force_id: uuid.UUID
    effect: str  # add | remove


def _in_window(minute: int, start: int, end: int) -> bool:
    if start == end:
        return True
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # spans midnight


def route(
    *,
    insee_code: str,
    event_type: str,
    tenant_id: uuid.UUID,
    municipal_police_opt_in: bool,
    local_minute: int,
    forces: list[ForceRef],
    rules: list[RoutingRule],
) -> list[ForceRef]:
    """The forces competent for an alert, most relevant first.

    Default: the state force (police nationale circonscription or gendarmerie brigade) covering the commune; the
    commune's municipal police if the commune opted in; the SDIS for fire and person-on-the-ground. Then routing
    rules for this commune, event type and hour add or remove forces. Equipment events go to nobody.
    """
    if event_type in NON_DISPATCHABLE:
        return []
    chosen: dict[uuid.UUID, ForceRef] = {}
    for force in forces:
        if force.kind in ("police_nationale", "gendarmerie") and insee_code in force.communes:
            chosen[force.id] = force
    for force in forces:
        if force.kind == "police_municipale" and municipal_police_opt_in and force.tenant_id == tenant_id:
            chosen[force.id] = force
    if event_type in SDIS_EVENT_TYPES:
        for force in forces:
            if force.kind == "sdis" and insee_code in force.communes:
                chosen[force.id] = force
    by_id = {f.id: f for f in forces}
    for rule in rules:
        if rule.insee_code not in (None, insee_code) or rule.event_type not in (None, event_type):
            continue
        if not _in_window(local_minute, rule.start_minute, rule.end_minute):
            continue
        if rule.effect == "remove":
            chosen.pop(rule.force_id, None)
        elif rule.force_id in by_id:
            chosen[rule.force_id] = by_id[rule.force_id]
    order = {"police_nationale": 0, "gendarmerie": 0, "police_municipale": 1, "sdis": 2}
    return sorted(chosen.values(), key=lambda f: (order.get(f.kind, 3), f.name))


def municipal_police_may_receive(force: ForceRef, alert_tenant: uuid.UUID) -> bool:
    """A municipal police may only be sent alerts (and so images) of its own commune (décret 2022-1152)."""
    return force.kind != "police_municipale" or force.tenant_id == alert_tenant


# SLA and escalation ------------------------------------------------------------------------------------------------

RECEIPT_TIMEOUT_S = 15
ACK_TIMEOUT_S = 60
MAX_REPUSH_LEVEL = 3


def next_officers(all_officers: list[uuid.UUID], already: list[uuid.UUID], level: int) -> tuple[uuid.UUID, ...]:
    """On a missing receipt, widen the order: the officers paged so far plus the next one not yet paged;
    an order to the whole force (empty list) stays the whole force."""
    if not already:
        return ()
    remaining = [o for o in all_officers if o not in already]
    return tuple(already) + tuple(remaining[:1])


def urgency_for(severity: int) -> str:
    return "immediate" if severity >= 5 else "urgent" if severity >= 3 else "routine"
