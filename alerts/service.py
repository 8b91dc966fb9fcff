"""Alert use cases: the operators' workflow from the alarm queue up to dispatch and close, the main courante and the
department's routing rules and policies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from alerts import rules
from alerts.dispatch import create_dispatch
from alerts.errors import AlertNotFound, AlreadyClaimed, InvalidTransition, SnapshotMissing, UnknownForce
from alerts.events import AlertState, AlertStateChanged, DispatchWithdrawn
from alerts.model import (
    Alert,
    AlertDetail,
    CloseInput,
    DismissInput,
    Dispatch,
    DispatchInput,
    ForceRecommendation,
    Handover,
    HandoverInput,
    LogbookEntry,
    LogbookInput,
    PolicyInput,
    PolicyRecord,
    PrecisionRow,
    Responders,
    RoutingRuleInput,
    RoutingRuleRecord,
    SlaBreach,
    Snapshot,
    SopStepInput,
    VerifyInput,
)
from alerts.repository import ALERT_OUTBOX, AlertRepository
from core.db import Database
from core.errors import InvalidInput, NotFound, PermissionDenied, Unavailable
from core.ids import new_id
from core.objectstore import ObjectStore
from core.outbox import Outbox
from core.tenancy import DEPARTMENT_ADMINS, HABILITATED_ROLES, Principal, Role, require_role
from journal.service import JournalService

OPERATORS = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.DEPARTMENT_ADMIN})
QUEUE_READERS = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.DEPARTMENT_ADMIN, Role.AUDITOR, Role.OFFICER})
EVALUATION_READERS = frozenset({Role.SUPERVISOR, Role.DEPARTMENT_ADMIN, Role.AUDITOR, Role.TENANT_ADMIN})
SUPERVISORS = frozenset({Role.SUPERVISOR, Role.DEPARTMENT_ADMIN})
# Who may open an alert's picture: the roles that may open its clip (an officer only once it was sent to their force).
SNAPSHOT_VIEWERS = HABILITATED_ROLES | {Role.DEPARTMENT_ADMIN, Role.OFFICER}
OPEN_STATES = ["new", "claimed", "verified", "dispatched"]
_MEDIA_ACTION = {"live": "media.live", "snapshot": "media.snapshot", "clip": "media.clip"}


def _verdict_for_dismissal(reason: str) -> str | None:
    """For the evaluation report: a false positive is the detector's error; known or authorised activity means the
    detector saw something real that needed no action; duplicates and tests are not judged."""
    if reason == "false_positive":
        return "false_positive"
    if reason in ("duplicate", "test"):
        return None
    return "true_positive"


class AlertService:
    """The operators' workflow. Every action: one transaction with the state change, its journal entry,
    its main courante line and its outbox event."""

    def __init__(self, db: Database, journal: JournalService, *, repo: AlertRepository | None = None,
                 outbox: Outbox = ALERT_OUTBOX, store: ObjectStore | None = None) -> None:
        self._db = db
        self.store = store
        self._journal = journal
        self._repo = repo or AlertRepository()
        self._outbox = outbox

    # --- reading ------------------------------------------------------------------------------------------------

    async def queue(self, principal: Principal, *, states: list[str] | None, tenant_id: uuid.UUID | None,
                    after: uuid.UUID | None, limit: int) -> list[Alert]:
        require_role(principal, QUEUE_READERS, "read the alarm queue")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.queue(conn, states=states or OPEN_STATES, tenant_id=tenant_id, after=after,
                                          limit=limit, force_id=principal.force_id
                                          if principal.role is Role.OFFICER else None)

    async def _visible(self, conn: asyncpg.Connection, principal: Principal, alert_id: uuid.UUID, *,
                       for_update: bool = False) -> Alert:
        alert = await self._repo.get(conn, alert_id, for_update=for_update)
        if alert is None:
            raise AlertNotFound("no such alert")
        if principal.role is Role.OFFICER and (
                principal.force_id is None or not await self._repo.dispatched_to(conn, alert_id, principal.force_id)):
            # An officer sees an alert only once a human sent it to their force; before that it is not theirs.
            raise AlertNotFound("no such alert")
        return alert

    async def get(self, principal: Principal, alert_id: uuid.UUID) -> AlertDetail:
        require_role(principal, QUEUE_READERS, "read alerts")
        async with self._db.transaction(principal, readonly=True) as conn:
            alert = await self._visible(conn, principal, alert_id)
            sop = await self._repo.sop_rows(conn, alert_id, rules.sop_for(alert.legal_event_type or alert.rule_type))
            return AlertDetail(alert=alert, sop=sop, dispatches=await self._repo.dispatches(conn, alert_id))

    async def view_snapshot(self, principal: Principal, alert_id: uuid.UUID, *, motive: str) -> Snapshot:
        """The alert's picture, journaled as a media access with its motive (the rule of the clip view: an officer
        reaches it only once the alert was sent to their force; outside the caller's scope it does not exist)."""
        require_role(principal, SNAPSHOT_VIEWERS, "view alert snapshots")
        if not motive.strip():
            raise InvalidInput("viewing images needs a motive", field="motive")
        if self.store is None:
            raise Unavailable("the object store is not configured: snapshots are unavailable")
        async with self._db.transaction(principal) as conn:
            alert = await self._visible(conn, principal, alert_id)
            if alert.snapshot_key is None:
                raise SnapshotMissing("this alert has no snapshot: the detector stored none when it fired")
            await self._journal.record(conn, tenant_id=alert.tenant_id, actor=principal, action="media.snapshot",
                                       target_type="alert", target_id=alert.id, camera_id=alert.camera_id,
                                       range_start=alert.first_seen_at, motive=motive.strip(),
                                       details={"view": "snapshot"})
            # Read inside the transaction: a picture the store no longer has leaves no journal line of a viewing.
            try:
                content = await self.store.get(alert.tenant_id, alert.snapshot_key)
            except NotFound as exc:
                raise SnapshotMissing("this alert's snapshot is no longer stored (retention)") from exc
        return Snapshot(alert_id=alert.id, camera_id=alert.camera_id, taken_at=alert.first_seen_at, content=content)

    async def responders(self, principal: Principal, alert_id: uuid.UUID) -> Responders:
        require_role(principal, QUEUE_READERS, "follow responders")
        async with self._db.transaction(principal, readonly=True) as conn:
            await self._visible(conn, principal, alert_id)
            return Responders(dispatches=await self._repo.dispatches(conn, alert_id),
                              statuses=await self._repo.responder_statuses(conn, alert_id))

    async def recommendations(self, principal: Principal, alert_id: uuid.UUID) -> list[ForceRecommendation]:
        require_role(principal, OPERATORS, "see the competent forces")
        async with self._db.transaction(principal, readonly=True) as conn:
            alert = await self._visible(conn, principal, alert_id)
            forces = await self._route(conn, alert)
        return [ForceRecommendation(force_id=f.id, kind=f.kind, name=f.name, phone=f.phone) for f in forces]

    async def _route(self, conn: asyncpg.Connection, alert: Alert) -> list[rules.ForceRef]:
        opt_in = await self._repo.municipal_police_opt_in(conn, alert.tenant_id)
        return rules.route(insee_code=alert.insee_code, event_type=alert.legal_event_type or alert.rule_type,
                           tenant_id=alert.tenant_id, municipal_police_opt_in=opt_in,
                           local_minute=rules.local_minute(datetime.now(UTC)), forces=await self._repo.forces(conn),
                           rules=AlertRepository.as_rules(await self._repo.routing_rules(conn)))

    # --- acting ---------------------------------------------------------------------------------------------------

    async def _change(self, conn: asyncpg.Connection, principal: Principal, alert: Alert, action: str,
                      changes: dict[str, Any], *, text: str, reason: str | None = None,
                      verdict: str | None = None, journal: dict[str, object] | None = None) -> Alert:
        target = rules.transition(alert.state, action)
        if rules.requires_own_claim(action) and alert.claimed_by != principal.user_id:
            raise InvalidTransition(f"only the operator who claimed the alert may {action} it; claim it first")
        updated = await self._repo.update(conn, alert.id, {"state": target.value, **changes})
        if target.value != alert.state:
            await self._outbox.add(conn, [AlertStateChanged(
                event_id=new_id(), tenant_id=alert.tenant_id, alert_id=alert.id, camera_id=alert.camera_id,
                from_state=AlertState(alert.state), to_state=target, actor_id=principal.user_id, reason=reason,
                verdict=verdict)])  # type: ignore[arg-type]
        details: dict[str, object] = {"from": alert.state, "to": target.value, **(journal or {})}
        await self._journal.note(conn, principal, f"alert.{action}", ("alert", alert.id), tenant_id=alert.tenant_id,
                                 camera_id=alert.camera_id, **details)
        await self._repo.log(conn, tenant_id=alert.tenant_id, alert_id=alert.id, author_id=principal.user_id,
                             kind="auto", action=f"alert.{action}", text=text)
        return updated

    async def claim(self, principal: Principal, alert_id: uuid.UUID) -> Alert:
        require_role(principal, OPERATORS, "claim alerts")
        async with self._db.transaction(principal) as conn:
            alert = await self._visible(conn, principal, alert_id, for_update=True)
            if alert.state == AlertState.CLAIMED and principal.role is not Role.OPERATOR \
                    and alert.claimed_by != principal.user_id:
                # A supervisor takes an alert over from an operator: journaled as such.
                return await self._repo.update(conn, alert_id, {"claimed_by": principal.user_id,
                                                                "claimed_at": datetime.now(UTC)})
            if alert.state == AlertState.CLAIMED:
                raise AlreadyClaimed("the alert is already claimed" + (
                    " by you" if alert.claimed_by == principal.user_id else " by another operator"))
            return await self._change(conn, principal, alert, "claim",
                                      {"claimed_by": principal.user_id, "claimed_at": datetime.now(UTC)},
                                      text=f"Prise en compte par {principal.display_name or principal.user_id}")

    async def release(self, principal: Principal, alert_id: uuid.UUID) -> Alert:
        require_role(principal, OPERATORS, "release alerts")
        async with self._db.transaction(principal) as conn:
            alert = await self._visible(conn, principal, alert_id, for_update=True)
            return await self._change(conn, principal, alert, "release", {"claimed_by": None, "claimed_at": None},
                                      text="Alerte remise dans la file")

    async def verify(self, principal: Principal, alert_id: uuid.UUID, data: VerifyInput) -> Alert:
        """The human check (levée de doute): opening the images is journaled with its motive, then the alert may go
        to a force. Verified means the operator confirms the event is real."""
        require_role(principal, OPERATORS, "verify alerts")
        async with self._db.transaction(principal) as conn:
            alert = await self._visible(conn, principal, alert_id, for_update=True)
            rules.transition(alert.state, "verify")
            if alert.claimed_by != principal.user_id:
                raise InvalidTransition("only the operator who claimed the alert may verify it; claim it first")
            await self._journal.record(conn, tenant_id=alert.tenant_id, actor=principal,
                                       action=_MEDIA_ACTION[data.media], target_type="alert", target_id=alert.id,
                                       camera_id=alert.camera_id, motive=data.motive,
                                       range_start=alert.first_seen_at, range_end=alert.last_seen_at)
            return await self._change(conn, principal, alert, "verify",
                                      {"verified_by": principal.user_id, "verified_at": datetime.now(UTC),
                                       "verdict": "true_positive"},
                                      text=f"Levée de doute ({data.media}) : événement confirmé. Motif : {data.motive}",
                                      verdict="true_positive", journal={"media": data.media})

    async def dismiss(self, principal: Principal, alert_id: uuid.UUID, data: DismissInput) -> Alert:
        require_role(principal, OPERATORS, "dismiss alerts")
        async with self._db.transaction(principal) as conn:
            alert = await self._visible(conn, principal, alert_id, for_update=True)
            verdict = _verdict_for_dismissal(data.reason)
            note = f" — {data.note}" if data.note else ""
            updated = await self._change(conn, principal, alert, "dismiss",
                                         {"dismissed_reason": data.reason, "verdict": verdict,
                                          "closed_at": datetime.now(UTC), "closed_by": principal.user_id},
                                         text=f"Alerte écartée : {data.reason}{note}", reason=data.reason,
                                         verdict=verdict, journal={"reason": data.reason})
            await self._withdraw(conn, alert, "dismissed")
            return updated

    async def dispatch(self, principal: Principal, alert_id: uuid.UUID, data: DispatchInput) -> list[Dispatch]:
        """Send a verified alert to forces competent for its commune. Nothing reaches a force unverified."""
        require_role(principal, OPERATORS, "dispatch alerts")
        async with self._db.transaction(principal) as conn:
            alert = await self._visible(conn, principal, alert_id, for_update=True)
            if alert.state in (AlertState.NEW, AlertState.CLAIMED):
                raise InvalidTransition("an alert must be verified by a human before it is sent to a force")
            rules.transition(alert.state, "dispatch")
            if alert.rule_type in rules.NON_DISPATCHABLE:
                raise InvalidTransition("equipment alerts go to the maintainer, not to a force")
            forces = {f.id: f for f in await self._repo.forces(conn)}
            created: list[Dispatch] = []
            for force_id in dict.fromkeys(data.force_ids):
                force = forces.get(force_id)
                if force is None:
                    raise UnknownForce("no such force in your department", field="force_ids")
                if not rules.municipal_police_may_receive(force, alert.tenant_id):
                    raise UnknownForce("a municipal police may only receive alerts of its own commune",
                                       field="force_ids")
                if force.kind != "police_municipale" and alert.insee_code not in force.communes:
                    raise UnknownForce(f"{force.name} is not competent for commune {alert.insee_code}",
                                       field="force_ids")
                officers = set(await self._repo.officers_of_force(conn, force_id))
                named = [o for o in data.officer_ids if o in officers]
                if data.officer_ids and not named and len(data.force_ids) == 1:
                    raise InvalidInput("none of officer_ids belongs to that force", field="officer_ids")
                dispatch = await create_dispatch(
                    self._repo, self._outbox, conn, alert, force, officer_ids=named,
                    urgency=data.urgency or rules.urgency_for(alert.severity), ttl_s=data.ttl_s,
                    ordered_by=principal.user_id, auto=False)
                if dispatch is not None:
                    created.append(dispatch)
            if not created:
                raise InvalidTransition("every named force was already sent this alert")
            await self._change(conn, principal, alert, "dispatch", {},
                               text="Envoi aux forces : " + ", ".join(forces[d.force_id].name for d in created),
                               journal={"forces": [str(d.force_id) for d in created]})
            return created

    async def close(self, principal: Principal, alert_id: uuid.UUID, data: CloseInput) -> Alert:
        require_role(principal, OPERATORS, "close alerts")
        async with self._db.transaction(principal) as conn:
            alert = await self._visible(conn, principal, alert_id, for_update=True)
            note = f" — {data.note}" if data.note else ""
            updated = await self._change(conn, principal, alert, "close",
                                         {"outcome": data.outcome, "closed_at": datetime.now(UTC),
                                          "closed_by": principal.user_id},
                                         text=f"Clôture : {data.outcome}{note}", reason=data.outcome,
                                         journal={"outcome": data.outcome})
            await self._withdraw(conn, alert, "closed")
            return updated

    async def _withdraw(self, conn: asyncpg.Connection, alert: Alert, reason: str) -> None:
        await self._repo.cancel_alert_timers(conn, alert.id)
        withdrawn: list[DispatchWithdrawn] = []
        for dispatch in await self._repo.dispatches(conn, alert.id):
            if dispatch.status in ("closed", "withdrawn"):
                continue
            await self._repo.update_dispatch(conn, dispatch.id, "withdrawn")
            withdrawn.append(DispatchWithdrawn(event_id=new_id(), tenant_id=alert.tenant_id, dispatch_id=dispatch.id,
                                               alert_id=alert.id, reason=reason))
        await self._outbox.add(conn, withdrawn)

    async def record_step(self, principal: Principal, alert_id: uuid.UUID, data: SopStepInput) -> AlertDetail:
        require_role(principal, OPERATORS, "record procedure steps")
        async with self._db.transaction(principal) as conn:
            alert = await self._visible(conn, principal, alert_id, for_update=True)
            rules.transition(alert.state, "sop")
            steps = rules.sop_for(alert.legal_event_type or alert.rule_type)
            if data.step not in steps:
                raise InvalidInput(f"the procedure for {alert.rule_type} has no step {data.step!r}; "
                                   f"steps: {', '.join(steps)}", field="step")
            if not await self._repo.insert_sop_step(conn, alert.tenant_id, alert_id, data.step, principal.user_id,
                                                    data.note):
                raise InvalidTransition(f"step {data.step} is already recorded")
            await self._journal.note(conn, principal, "alert.sop_step", ("alert", alert_id), tenant_id=alert.tenant_id,
                                     step=data.step)
            await self._repo.log(conn, tenant_id=alert.tenant_id, alert_id=alert_id, author_id=principal.user_id,
                                 kind="auto", action="alert.sop_step", text=f"Procédure : {data.step}"
                                 + (f" — {data.note}" if data.note else ""))
            sop = await self._repo.sop_rows(conn, alert_id, steps)
            return AlertDetail(alert=alert, sop=sop, dispatches=await self._repo.dispatches(conn, alert_id))

    # --- supervision and evaluation ---------------------------------------------------------------------------

    async def sla_breaches(self, principal: Principal, limit: int = 100) -> list[SlaBreach]:
        require_role(principal, SUPERVISORS, "see SLA breaches")
        async with self._db.transaction(principal, readonly=True) as conn:
            rows = await self._repo.sla_breaches(conn, limit)
        return [SlaBreach(alert_id=r["alert_id"], tenant_id=r["tenant_id"], rule_type=r["rule_type"],
                          severity=r["severity"], raised_at=r["raised_at"], due_at=r["due_at"],
                          overdue_s=float(r["overdue_s"]), kind=r["kind"]) for r in rows]

    async def precision(self, principal: Principal, group_by: str, days: int) -> list[PrecisionRow]:
        require_role(principal, EVALUATION_READERS, "read the evaluation")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.precision(conn, group_by, datetime.now(UTC) - timedelta(days=days))

    # --- main courante -------------------------------------------------------------------------------------------

    async def logbook(self, principal: Principal, *, hours: int, before: uuid.UUID | None,
                      limit: int, search: str | None = None) -> list[LogbookEntry]:
        require_role(principal, OPERATORS | {Role.AUDITOR}, "read the main courante")
        now = datetime.now(UTC)
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.logbook(conn, since=now - timedelta(hours=hours), until=now + timedelta(seconds=1),
                                            before=before, limit=limit, search=search)

    async def add_entry(self, principal: Principal, data: LogbookInput) -> LogbookEntry:
        require_role(principal, OPERATORS, "write in the main courante")
        async with self._db.transaction(principal) as conn:
            tenant_id = principal.home_tenant_id
            if data.alert_id is not None:
                tenant_id = (await self._visible(conn, principal, data.alert_id)).tenant_id
            return await self._repo.log(conn, tenant_id=tenant_id, alert_id=data.alert_id,
                                        author_id=principal.user_id, kind="free", action="logbook.entry",
                                        text=data.text)

    async def handover(self, principal: Principal, data: HandoverInput) -> Handover:
        require_role(principal, OPERATORS, "hand over a shift")
        now = datetime.now(UTC)
        since = now - timedelta(hours=data.hours)
        async with self._db.transaction(principal) as conn:
            summary = await self._repo.shift_summary(conn, since, now)
            handover = await self._repo.insert_handover(conn, {
                "id": new_id(), "tenant_id": principal.home_tenant_id, "author_id": principal.user_id,
                "period_start": since, "period_end": now, "summary": summary, "notes": data.notes})
            await self._repo.log(conn, tenant_id=principal.home_tenant_id, alert_id=None,
                                 author_id=principal.user_id, kind="auto", action="shift.handover",
                                 text=f"Relève : {summary['still_open']} alerte(s) ouverte(s) transmise(s)"
                                 + (f" — {data.notes}" if data.notes else ""))
            return handover

    async def handovers(self, principal: Principal, limit: int) -> list[Handover]:
        require_role(principal, OPERATORS | {Role.AUDITOR}, "read shift handovers")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.handovers(conn, limit)

    # --- department configuration --------------------------------------------------------------------------

    async def routing_rules(self, principal: Principal) -> list[RoutingRuleRecord]:
        require_role(principal, OPERATORS | {Role.AUDITOR}, "read routing rules")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.routing_rules(conn)

    async def add_routing_rule(self, principal: Principal, data: RoutingRuleInput) -> RoutingRuleRecord:
        require_role(principal, DEPARTMENT_ADMINS, "change routing rules")
        async with self._db.transaction(principal) as conn:
            if not any(f.id == data.force_id for f in await self._repo.forces(conn)):
                raise InvalidInput("no such force in your department", field="force_id")
            if data.insee_code is not None and not await self._repo.commune_exists(conn, data.insee_code):
                raise InvalidInput(f"no commune with INSEE code {data.insee_code}", field="insee_code")
            try:
                record = await self._repo.insert_routing_rule(conn, {
                    "id": new_id(), "department_id": principal.department_id, "insee_code": data.insee_code,
                    "event_type": data.event_type, "start_minute": data.start_minute, "end_minute": data.end_minute,
                    "force_id": data.force_id, "effect": data.effect, "note": data.note,
                    "created_by": principal.user_id})
            except asyncpg.ForeignKeyViolationError as exc:
                # A force or commune removed between the check above and the insert.
                field = "insee_code" if "insee" in (exc.constraint_name or "") else "force_id"
                raise InvalidInput(f"{field} names nothing that exists any more", field=field) from exc
            await self._journal.note(conn, principal, "routing_rule.create", ("routing_rule", record.id),
                                     tenant_id=principal.home_tenant_id, **msgspec.to_builtins(data))
            return record

    async def delete_routing_rule(self, principal: Principal, rule_id: uuid.UUID) -> None:
        require_role(principal, DEPARTMENT_ADMINS, "change routing rules")
        async with self._db.transaction(principal) as conn:
            if not await self._repo.delete_routing_rule(conn, rule_id):
                raise NotFound("no such routing rule")
            await self._journal.note(conn, principal, "routing_rule.delete", ("routing_rule", rule_id),
                                     tenant_id=principal.home_tenant_id)

    async def policies(self, principal: Principal) -> list[PolicyRecord]:
        require_role(principal, OPERATORS | {Role.AUDITOR}, "read alert policies")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.policies(conn)

    async def set_policy(self, principal: Principal, data: PolicyInput) -> PolicyRecord:
        """Only a department admin may mark a rule auto-dispatch; the change is journaled."""
        if principal.role is not Role.DEPARTMENT_ADMIN:
            raise PermissionDenied("only a department admin may change alert policies")
        record = PolicyRecord(rule_type=data.rule_type, severity=data.severity, dedupe_window_s=data.dedupe_window_s,
                              cooldown_s=data.cooldown_s, sla_claim_s=data.sla_claim_s,
                              auto_dispatch=data.auto_dispatch)
        async with self._db.transaction(principal) as conn:
            await self._repo.upsert_policy(conn, principal.department_id, record, principal.user_id)
            await self._journal.note(conn, principal, "alert_policy.set", ("alert_policy", data.rule_type),
                                     tenant_id=principal.home_tenant_id, **msgspec.to_builtins(data))
        return record
