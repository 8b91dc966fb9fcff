"""Escalation: responders' receipts and statuses from the PUSH stream, and durable timers fired from Postgres."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import asyncpg

from alerts import rules
from alerts.events import DispatchOrdered, EscalationRaised, ResponderStatusChanged, Urgency
from alerts.model import TimerRow
from alerts.repository import ALERT_OUTBOX, AlertRepository
from core.bus import Reject, Retry
from core.db import Database
from core.events import Event
from core.ids import new_id
from core.logging import get_logger
from core.outbox import Outbox
from journal.service import JournalService
from mobile_push.events import PushAccepted, PushDelivered, PushFailed, ResponderStatusReported

log = get_logger(__name__)

_ORDER = ["ordered", "delivered", "acknowledged", "en_route", "on_scene", "closed"]


class EscalationDispatcher:
    """Keeps each dispatch's status from the officers' phones and escalates when a receipt or an acknowledgement
    does not come in time: re-push to one more officer, then prompt the operator to call the force by phone."""

    def __init__(self, db: Database, *, journal: JournalService | None = None, repo: AlertRepository | None = None,
                 outbox: Outbox = ALERT_OUTBOX) -> None:
        self._db = db
        self._journal = journal or JournalService()
        self._repo = repo or AlertRepository()
        self._outbox = outbox
        self.fired = 0

    async def handle_push(self, event: Event, _msg: object = None) -> None:
        if isinstance(event, PushAccepted):
            return  # handed to Google is not a receipt; the receipt timer keeps running
        if not isinstance(event, PushDelivered | PushFailed | ResponderStatusReported):
            raise Reject(f"unexpected event type {type(event).__name__}")
        try:
            # Push events name no camera: the dispatch, read under the event's tenant, must exist.
            async with self._db.for_tenants([event.tenant_id]) as conn:
                dispatch = await self._repo.dispatch(conn, event.dispatch_id, for_update=True)
                if dispatch is None or dispatch.alert_id != event.alert_id:
                    raise Reject(f"unknown dispatch {event.dispatch_id} for tenant {event.tenant_id}")
                if isinstance(event, PushFailed):
                    # No device can be reached: escalate now rather than waiting for the receipt timer.
                    await self._repo.expedite_timers(conn, dispatch.id, "receipt")
                    return
                status = str(event.status)
                fresh = await self._repo.insert_responder_status(conn, {
                    "event_id": event.event_id, "tenant_id": event.tenant_id, "dispatch_id": dispatch.id,
                    "alert_id": dispatch.alert_id, "officer_id": event.officer_id, "device_id": event.device_id,
                    "status": status, "occurred_at": event.occurred_at})
                if not fresh or dispatch.status == "withdrawn":
                    return
                if _ORDER.index(status) > _ORDER.index(dispatch.status if dispatch.status in _ORDER else "ordered"):
                    await self._repo.update_dispatch(conn, dispatch.id, status)
                # A receipt ends the receipt timers; any human status ends them all.
                kinds = ["receipt"] if status == "delivered" else ["receipt", "acknowledgement"]
                await self._repo.cancel_timers(conn, dispatch.id, kinds)
                await self._repo.log(conn, tenant_id=event.tenant_id, alert_id=dispatch.alert_id, author_id=None,
                                     kind="auto", action=f"responder.{status}",
                                     text=f"Intervenant {event.officer_id} : {status}")
                # In the same transaction: the operators' queue hears of it exactly when it is recorded.
                await self._outbox.add(conn, [ResponderStatusChanged(
                    tenant_id=event.tenant_id, dispatch_id=dispatch.id, alert_id=dispatch.alert_id,
                    officer_id=event.officer_id, status=status)])  # type: ignore[arg-type]
        except (asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError) as exc:
            raise Retry(f"database: {exc}") from exc

    async def fire_due(self, limit: int = 100) -> int:
        """Fire the due timers (SKIP LOCKED: two processes never fire the same one). A department job: the timers of
        every tenant are due here, whoever's they are."""
        async with self._db.cross_tenant("escalation timers") as conn, conn.transaction():
            timers = await self._repo.due_timers(conn, limit)
            for timer in timers:
                await self._repo.mark_fired(conn, timer["id"])
                await self._fire(conn, timer)
        self.fired += len(timers)
        return len(timers)

    async def _fire(self, conn: asyncpg.Connection, timer: asyncpg.Record) -> None:
        dispatch = await self._repo.dispatch(conn, timer["dispatch_id"], for_update=True)
        if dispatch is None or dispatch.status in ("closed", "withdrawn"):
            return
        level = int(timer["level"]) + 1
        events: list[Event] = []
        if timer["kind"] == "receipt":
            if dispatch.delivered_at is not None or level > rules.MAX_REPUSH_LEVEL:
                return
            officers = await self._repo.officers_of_force(conn, dispatch.force_id)
            widened = rules.next_officers(officers, dispatch.officer_ids, level)
            await self._repo.update_dispatch(conn, dispatch.id, None, officer_ids=list(widened), level=level)
            camera_id = await self._repo.camera_of(conn, dispatch.alert_id)
            assert camera_id is not None  # a dispatch's alert exists (foreign key)
            events.append(DispatchOrdered(
                event_id=new_id(), tenant_id=dispatch.tenant_id, dispatch_id=dispatch.id, alert_id=dispatch.alert_id,
                camera_id=camera_id, force_id=dispatch.force_id,
                force_kind=dispatch.force_kind,  # type: ignore[arg-type]
                officer_ids=widened, urgency=Urgency(dispatch.urgency), ttl_s=dispatch.ttl_s, escalation_level=level,
                auto=dispatch.auto))
            action = "repush_next_officer"
            await self._repo.insert_timers(conn, [TimerRow(
                new_id(), dispatch.tenant_id, dispatch.id, dispatch.alert_id, "receipt", level,
                datetime.now(UTC) + timedelta(seconds=rules.RECEIPT_TIMEOUT_S))])
            text = f"Aucun accusé de réception : nouvel envoi (niveau {level})"
        else:
            if dispatch.acknowledged_at is not None:
                return
            await self._repo.update_dispatch(conn, dispatch.id, None, prompt=True)
            await self._repo.prompt_call(conn, dispatch.alert_id)
            action = "call_force_by_phone"
            text = "Aucune prise en compte par la force : appeler la force par téléphone"
        events.append(EscalationRaised(
            event_id=new_id(), tenant_id=dispatch.tenant_id, dispatch_id=dispatch.id, alert_id=dispatch.alert_id,
            level=level, action=action))  # type: ignore[arg-type]
        await self._outbox.add(conn, events)
        await self._journal.note(conn, None, "alert.escalated", ("dispatch", dispatch.id), tenant_id=dispatch.tenant_id,
                                 action=action, level=level, alert_id=str(dispatch.alert_id))
        await self._repo.log(conn, tenant_id=dispatch.tenant_id, alert_id=dispatch.alert_id, author_id=None,
                             kind="auto", action=f"escalation.{action}", text=text)

    async def run(self, stop: asyncio.Event, poll_s: float = 0.5) -> None:
        while not stop.is_set():
            try:
                if await self.fire_due():
                    continue
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
                # InternalClientError: a backend terminated under a pooled connection, seen before its close.
                log.warning("alerts.timers_retry", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
