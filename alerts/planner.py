"""The alert engine's decisions, without I/O: from detections and what the engine read, the rows, events and main
courante lines one transaction writes (a batch of rule hits and a single event are planned alike)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from alerts import dispatch, rules
from alerts.events import AlertRaised, AlertState, AlertStateChanged
from alerts.model import Alert, AlertRow, DispatchRow, FoldRow, LogbookRow, SourceRow, TimerRow
from core.events import Event
from core.ids import new_id
from inference.events import CameraWentOffline, RuleTriggered

# Auto-dispatched orders live as long as an operator's default.
AUTO_DISPATCH_TTL_S = 300


@dataclass(frozen=True)
class Detection:
    """What an alert is raised from: a rule hit, or a camera that went offline."""

    event_id: uuid.UUID
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    rule_type: str
    legal_event_type: str | None
    track_ids: frozenset[int]
    rule_id: uuid.UUID | None
    detail: str
    snapshot_key: str | None

    @classmethod
    def of(cls, event: RuleTriggered | CameraWentOffline) -> Detection:
        if isinstance(event, RuleTriggered):
            return cls(event.event_id, event.tenant_id, event.camera_id, "RuleTriggered", event.occurred_at,
                       event.rule_type, event.legal_event_type, frozenset(event.track_ids), event.rule_id,
                       event.detail, event.snapshot_key)
        return cls(event.event_id, event.tenant_id, event.camera_id, "CameraWentOffline", event.occurred_at,
                   "camera_offline", None, frozenset(), None, f"camera offline: {event.reason}", None)


class CameraContext(NamedTuple):
    id: uuid.UUID
    tenant_id: uuid.UUID
    site_id: uuid.UUID
    insee_code: str
    site_kind: str | None
    municipal_police_opt_in: bool


@dataclass(frozen=True)
class Known:
    """What the engine read, under the events' tenant scope, before deciding."""

    cameras: dict[uuid.UUID, CameraContext]
    seen: frozenset[uuid.UUID]  # events already handled (redeliveries)
    policies: dict[str, rules.Policy]  # the department's; defaults apply to the others
    recent: dict[tuple[uuid.UUID, str], rules.Recent]  # the newest alert per (camera, rule type)
    forces: list[rules.ForceRef]  # read only when a rule of the batch auto-dispatches
    routing: list[rules.RoutingRule]


@dataclass
class Plan:
    """Everything one transaction writes, in order, and what became of each detection."""

    alert_ids: list[uuid.UUID | None]  # the alert each detection went to; None: a redelivery or a rejection
    rejected: dict[int, str] = field(default_factory=dict)
    sources: list[SourceRow] = field(default_factory=list)
    alerts: dict[uuid.UUID, AlertRow] = field(default_factory=dict)
    folds: dict[uuid.UUID, FoldRow] = field(default_factory=dict)
    dispatches: list[DispatchRow] = field(default_factory=list)
    timers: list[TimerRow] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)  # for the outbox, each alert's in the order they happened
    logbook: list[LogbookRow] = field(default_factory=list)

    def log(self, tenant_id: uuid.UUID, alert_id: uuid.UUID, action: str, text: str) -> None:
        self.logbook.append(LogbookRow(new_id(), tenant_id, alert_id, None, "auto", action, text[:4000]))


def plan(detections: list[Detection], known: Known, *, now: datetime) -> Plan:
    """Dedupe and cooldown (fold into the newest alert), else a new alert with its priority, SLA and, for rules a
    department admin marked auto-dispatch, its dispatch orders to the forces routing chooses."""
    result = Plan(alert_ids=[None] * len(detections))
    recent = dict(known.recent)
    seen = set(known.seen)
    minute = rules.local_minute(now)
    for i, detection in enumerate(detections):
        camera = known.cameras.get(detection.camera_id)
        if camera is None or camera.tenant_id != detection.tenant_id:
            # Read under the events' tenant scope: an unknown camera and another tenant's look the same.
            result.rejected[i] = f"unknown camera {detection.camera_id} for tenant {detection.tenant_id}"
            continue
        if detection.event_id in seen:
            continue  # redelivery of an event already turned into (or folded into) an alert
        seen.add(detection.event_id)
        policy = known.policies.get(detection.rule_type) or rules.default_policy(detection.rule_type)
        key = (detection.camera_id, detection.rule_type)
        target = rules.fold_into(recent.get(key), detection.track_ids, detection.occurred_at, policy)
        alert_id = target or new_id()
        result.alert_ids[i] = alert_id
        result.sources.append(SourceRow(detection.tenant_id, detection.event_id, detection.event_type,
                                        detection.occurred_at, alert_id))
        if target is not None:
            _fold(result, recent, key, target, detection)
        else:
            _raise(result, recent, key, alert_id, detection, camera, policy, known, now, minute)
    return result


def _fold(result: Plan, recent: dict[tuple[uuid.UUID, str], rules.Recent], key: tuple[uuid.UUID, str],
          target: uuid.UUID, detection: Detection) -> None:
    """Adds an occurrence to an alert: in its insert row when this plan raised it, else as an update."""
    at, tracks = detection.occurred_at, detection.track_ids
    before = recent[key]
    recent[key] = rules.Recent(target, before.state, before.track_ids | tracks, before.raised_at,
                               max(before.last_seen_at, at))
    fresh = result.alerts.get(target)
    if fresh is not None:
        result.alerts[target] = fresh._replace(occurrences=fresh.occurrences + 1,
                                               last_seen_at=max(fresh.last_seen_at, at),
                                               track_ids=sorted(set(fresh.track_ids) | tracks))
        return
    fold = result.folds.get(target)
    result.folds[target] = FoldRow(target, 1, at, sorted(tracks)) if fold is None else FoldRow(
        target, fold.added + 1, max(fold.last_seen, at), sorted(set(fold.tracks) | tracks))


def _raise(result: Plan, recent: dict[tuple[uuid.UUID, str], rules.Recent], key: tuple[uuid.UUID, str],
           alert_id: uuid.UUID, detection: Detection, camera: CameraContext, policy: rules.Policy, known: Known,
           now: datetime, minute: int) -> None:
    d = detection
    auto = policy.auto_dispatch and d.rule_type not in rules.NON_DISPATCHABLE
    state = AlertState.DISPATCHED if auto else AlertState.NEW
    priority = rules.priority_for(policy.severity, camera.site_kind)
    result.alerts[alert_id] = AlertRow(
        id=alert_id, tenant_id=d.tenant_id, camera_id=d.camera_id, site_id=camera.site_id,
        insee_code=camera.insee_code, rule_id=d.rule_id, rule_type=d.rule_type, legal_event_type=d.legal_event_type,
        track_ids=sorted(d.track_ids), severity=policy.severity, priority=priority, state=state.value,
        auto_dispatched=auto, detail=d.detail[:2000], snapshot_key=d.snapshot_key, source_event_id=d.event_id,
        occurrences=1, first_seen_at=d.occurred_at, last_seen_at=d.occurred_at,
        sla_claim_due_at=now + timedelta(seconds=policy.sla_claim_s),
        # Nothing is recorded while a camera is offline: no clip will come.
        clip_status="unavailable" if d.rule_type == "camera_offline" else "pending")
    recent[key] = rules.Recent(alert_id, state.value, d.track_ids, d.occurred_at, d.occurred_at)
    result.events.append(AlertRaised(
        event_id=new_id(), tenant_id=d.tenant_id, alert_id=alert_id, camera_id=d.camera_id, site_id=camera.site_id,
        insee_code=camera.insee_code, rule_id=d.rule_id, rule_type=d.rule_type, legal_event_type=d.legal_event_type,
        severity=policy.severity, priority=priority, source_event_id=d.event_id, snapshot_key=d.snapshot_key,
        first_seen_at=d.occurred_at))
    result.log(d.tenant_id, alert_id, "alert.raised",
               f"Signalement d'attention {d.rule_type} (gravité {policy.severity}) caméra {d.camera_id}")
    if auto:
        _auto_dispatch(result, alert_id, d, camera, policy.severity, known, now, minute)


def _auto_dispatch(result: Plan, alert_id: uuid.UUID, detection: Detection, camera: CameraContext, severity: int,
                   known: Known, now: datetime, minute: int) -> None:
    """A rule a department admin marked auto-dispatch: sent without human verification, recorded as such. Written
    right after its AlertRaised: the outbox keeps each alert's events in order."""
    d = detection
    chosen = rules.route(insee_code=camera.insee_code, event_type=d.legal_event_type or d.rule_type,
                         tenant_id=d.tenant_id, municipal_police_opt_in=camera.municipal_police_opt_in,
                         local_minute=minute, forces=known.forces, rules=known.routing)
    result.events.append(AlertStateChanged(
        event_id=new_id(), tenant_id=d.tenant_id, alert_id=alert_id, camera_id=d.camera_id,
        from_state=AlertState.NEW, to_state=AlertState.DISPATCHED, reason="auto_dispatch"))
    urgency = rules.urgency_for(severity)
    for force in chosen:
        ordered = dispatch.order(tenant_id=d.tenant_id, alert_id=alert_id, camera_id=d.camera_id, force=force,
                                 officer_ids=(), urgency=urgency, ttl_s=AUTO_DISPATCH_TTL_S, ordered_by=None,
                                 auto=True, now=now)
        result.dispatches.append(ordered.row)
        result.events.append(ordered.event)
        result.timers.extend(ordered.timers)
    result.log(d.tenant_id, alert_id, "alert.auto_dispatched",
               f"Envoi automatique (règle {d.rule_type} marquée auto-dispatch) à "
               f"{', '.join(f.name for f in chosen) or 'aucune force'}")


@dataclass(frozen=True)
class Closing:
    """An offline-camera alert nobody picked up, closed because the camera came back."""

    alert: Alert
    changes: dict[str, Any]
    event: AlertStateChanged
    text: str


def close_restored(alert: Alert, offline_for_s: float, now: datetime) -> Closing:
    return Closing(
        alert, {"state": AlertState.CLOSED.value, "outcome": "camera_restored", "closed_at": now},
        AlertStateChanged(event_id=new_id(), tenant_id=alert.tenant_id, alert_id=alert.id, camera_id=alert.camera_id,
                          from_state=AlertState(alert.state), to_state=AlertState.CLOSED, reason="camera_restored"),
        f"Caméra rétablie après {offline_for_s:.0f} s")
