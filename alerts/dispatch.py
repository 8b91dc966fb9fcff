"""Dispatch orders: what one order to a force writes (decided without I/O, so the engine's batches and the operators'
dispatch build it alike) and its writing in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from alerts import rules
from alerts.events import DispatchOrdered, Urgency
from alerts.model import Alert, Dispatch, DispatchRow, TimerRow
from alerts.repository import AlertRepository
from core.ids import new_id
from core.outbox import Outbox


@dataclass(frozen=True)
class DispatchOrder:
    """The dispatch row, its DispatchOrdered event and its receipt and acknowledgement timers."""

    row: DispatchRow
    event: DispatchOrdered
    timers: tuple[TimerRow, ...]


def order(*, tenant_id: uuid.UUID, alert_id: uuid.UUID, camera_id: uuid.UUID, force: rules.ForceRef,
          officer_ids: Sequence[uuid.UUID], urgency: str, ttl_s: int, ordered_by: uuid.UUID | None, auto: bool,
          now: datetime) -> DispatchOrder:
    dispatch_id = new_id()
    row = DispatchRow(dispatch_id, tenant_id, alert_id, force.id, force.kind, list(officer_ids), urgency, ttl_s, auto,
                      ordered_by)
    event = DispatchOrdered(
        event_id=new_id(), tenant_id=tenant_id, dispatch_id=dispatch_id, alert_id=alert_id, camera_id=camera_id,
        force_id=force.id, force_kind=force.kind,  # type: ignore[arg-type]
        officer_ids=tuple(officer_ids), urgency=Urgency(urgency), ttl_s=ttl_s, escalation_level=0, auto=auto)
    timers = (
        TimerRow(new_id(), tenant_id, dispatch_id, alert_id, "receipt", 0,
                 now + timedelta(seconds=rules.RECEIPT_TIMEOUT_S)),
        TimerRow(new_id(), tenant_id, dispatch_id, alert_id, "acknowledgement", 0,
                 now + timedelta(seconds=rules.ACK_TIMEOUT_S)),
    )
    return DispatchOrder(row, event, timers)


async def create_dispatch(repo: AlertRepository, outbox: Outbox, conn: asyncpg.Connection, alert: Alert,
                          force: rules.ForceRef, *, officer_ids: list[uuid.UUID], urgency: str, ttl_s: int,
                          ordered_by: uuid.UUID | None, auto: bool) -> Dispatch | None:
    """The order written in the caller's transaction; None when this force was already sent the alert."""
    planned = order(tenant_id=alert.tenant_id, alert_id=alert.id, camera_id=alert.camera_id, force=force,
                    officer_ids=officer_ids, urgency=urgency, ttl_s=ttl_s, ordered_by=ordered_by, auto=auto,
                    now=datetime.now(UTC))
    dispatch = await repo.insert_dispatch(conn, planned.row)
    if dispatch is None:
        return None
    await outbox.add(conn, [planned.event])
    await repo.insert_timers(conn, planned.timers)
    return dispatch
