"""The push dispatcher: dispatch orders in, one FCM message per device out, retried from Postgres until settled."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg
from nats.aio.msg import Msg

from alerts.events import DispatchOrdered, DispatchWithdrawn
from core.bus import Reject
from core.crypto import FCM_TOKENS, SecretBox
from core.db import Database
from core.errors import OutOfScope, VigieError
from core.events import Event
from core.ids import new_id
from core.logging import get_logger
from journal.service import JournalService
from mobile_push import rules
from mobile_push.delivery_repository import DeliveryRepository
from mobile_push.events import PushAccepted, PushFailed, PushHealthAlarmRaised
from mobile_push.model import FcmError, PushMessage, SendOutcome
from mobile_push.repository import PUSH_OUTBOX, PushRepository
from mobile_push.settings import PushSettings

log = get_logger(__name__)
# A claimed delivery is leased for this long: a sender that dies mid-send leaves it to be retried, not lost.
CLAIM_LEASE_S = 30.0


class Sender(Protocol):
    async def send(self, pushes: Sequence[PushMessage]) -> list[SendOutcome]: ...


def _now() -> datetime:
    return datetime.now(UTC)


def _tenants_of(claimed: Iterable[asyncpg.Record]) -> set[uuid.UUID]:
    """What recording a batch touches: each delivery's dispatch tenant and its device's home tenant."""
    return {t for r in claimed for t in (r["tenant_id"], r["device_tenant_id"])}


class PushDispatcher:
    """Turns dispatch orders into one delivery per device, sends them, applies the error policy, retries durably.

    An order's rows live in the alert's tenant, the officers' devices in their home tenants. Each transaction is
    scoped to what its work names: the order's tenant (its camera checked), plus the home tenants of the devices a
    batch sends to. Only two reads bypass row-level security: the force's device directory (the order names the
    alert's tenant, not where the force's officers belong) and the retry loop's scan for due deliveries.
    """

    def __init__(
        self,
        db: Database,
        sender: Sender,
        secrets: SecretBox,
        settings: PushSettings,
        journal: JournalService | None = None,
        *,
        committed: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._sender = sender
        self._secrets = secrets
        self._settings = settings
        self._journal = journal or JournalService()
        self._repo = DeliveryRepository()
        self._devices = PushRepository()
        # Called after a commit that wrote outbox rows: this process's relay publishes them now, not at its next poll.
        self._committed = committed or (lambda: None)
        self.wake = asyncio.Event()

    async def handle(self, event: Event, msg: Msg | None = None) -> None:
        """Bus handler for alerts.>: orders are recorded then sent at once; withdrawals stop pending sends."""
        try:
            if isinstance(event, DispatchOrdered):
                tenants = await self.accept_order(event)
                if tenants:
                    await self._send_order(event, tenants)
            elif isinstance(event, DispatchWithdrawn):
                await self.withdraw(event)
        except OutOfScope as exc:
            raise Reject(str(exc)) from exc

    async def accept_order(self, order: DispatchOrdered) -> frozenset[uuid.UUID]:
        """Record the order, its targets and deliveries (idempotent by event id). Returns the tenants to send under
        (the order's and its devices' home tenants), empty when there is nothing new to send."""
        async with self._db.cross_tenant("push force directory") as conn:
            competent = await self._repo.force_competent(conn, order.force_id, order.tenant_id, order.camera_id)
            devices = await self._repo.devices_of_force(conn, order.force_id, list(order.officer_ids) or None) \
                if competent else []
        async with self._db.for_tenants([order.tenant_id], camera_id=order.camera_id) as conn:
            if competent:
                events = await self._record(conn, order, devices)
            else:
                events = await self._refuse(conn, order)
        if events:
            self._committed()
        if not competent or events is None or not devices:
            return frozenset()
        return frozenset({order.tenant_id, *(d["tenant_id"] for d in devices)})

    async def _refuse(self, conn: asyncpg.Connection, order: DispatchOrdered) -> list[Event]:
        events: list[Event] = [PushFailed(
            tenant_id=order.tenant_id, dispatch_id=order.dispatch_id, alert_id=order.alert_id, officer_id=None,
            reason="force_not_competent",
            detail=f"force {order.force_id} may not act where camera {order.camera_id} is")]
        await PUSH_OUTBOX.add(conn, events)
        await self._journal.note(conn, None, "dispatch.refused", ("dispatch", order.dispatch_id),
                                 tenant_id=order.tenant_id, reason="force_not_competent", force_id=str(order.force_id))
        return events

    async def _record(
        self, conn: asyncpg.Connection, order: DispatchOrdered, devices: list[asyncpg.Record]
    ) -> list[Event] | None:
        """The order's rows and the events it gives at once; None when this order was already consumed."""
        common: dict[str, Any] = {"tenant_id": order.tenant_id, "dispatch_id": order.dispatch_id,
                                  "alert_id": order.alert_id}
        fresh = await self._repo.record_order(conn, {
            **common,
            "event_id": order.event_id,
            "camera_id": order.camera_id,
            "force_id": order.force_id,
            "urgency": order.urgency.value,
            "ttl_s": order.ttl_s,
            "escalation_level": order.escalation_level,
            "ordered_at": order.occurred_at,
            "expires_at": order.occurred_at + timedelta(seconds=order.ttl_s),
            "officer_ids": list(order.officer_ids),
        })
        if not fresh:
            return None
        officers = list(dict.fromkeys([*order.officer_ids, *(d["user_id"] for d in devices)]))
        await self._repo.add_targets(conn, order.tenant_id, order.dispatch_id, officers)
        await self._repo.add_deliveries(conn, {**common, "order_event_id": order.event_id},
                                        [(new_id(), d["id"], d["user_id"]) for d in devices])
        reachable = {d["user_id"] for d in devices}
        events: list[Event] = []
        for officer in officers:
            if officer not in reachable:
                await self._repo.mark_target_failed(conn, order.dispatch_id, officer, "no_device")
                events.append(PushFailed(**common, officer_id=officer, reason="no_device"))
        if not officers:
            events.append(PushFailed(**common, officer_id=None, reason="no_device",
                                     detail="no officer of this force has a registered device"))
        await PUSH_OUTBOX.add(conn, events)
        await self._journal.note(conn, None, "dispatch.received", ("dispatch", order.dispatch_id),
                                 tenant_id=order.tenant_id, alert_id=str(order.alert_id), force_id=str(order.force_id),
                                 level=order.escalation_level, officers=len(officers), devices=len(devices))
        return events

    async def withdraw(self, event: DispatchWithdrawn) -> None:
        """The alert was closed or dismissed: nothing still pending for it may reach a phone."""
        async with self._db.for_tenants([event.tenant_id]) as conn:
            await self._repo.withdraw(conn, event.dispatch_id, event.reason)

    async def _send_order(self, order: DispatchOrdered, tenants: frozenset[uuid.UUID]) -> int:
        """Send an order's fresh deliveries at once, scoped to the tenants the order and its devices name."""
        async with self._db.for_tenants(tenants) as conn:
            claimed = await self._claim(conn, order.event_id)
        return await self._send(claimed)

    async def send_due(self) -> int:
        """One round of the retry loop: claim the due deliveries of every tenant, send them, record every attempt."""
        async with self._db.cross_tenant("push retry scan") as conn, conn.transaction():
            claimed = await self._claim(conn, None)
        return await self._send(claimed)

    async def _claim(self, conn: asyncpg.Connection, order_event_id: uuid.UUID | None) -> list[asyncpg.Record]:
        claimed = await self._repo.claim_due(conn, self._settings.batch_size, order_event_id=order_event_id)
        if claimed:
            await self._repo.lease(conn, [r["id"] for r in claimed], CLAIM_LEASE_S)
        return claimed

    async def _send(self, claimed: list[asyncpg.Record]) -> int:
        """Send the claimed deliveries in one batch, then record every attempt and apply the policy."""
        if not claimed:
            return 0
        now = _now()
        pushes: list[PushMessage] = []
        to_send: list[asyncpg.Record] = []
        expired: list[tuple[asyncpg.Record, str]] = []
        for row in claimed:
            ttl = rules.ttl_for(row["urgency"], row["ttl_s"], (now - row["ordered_at"]).total_seconds())
            if row["removed_at"] is not None:
                expired.append((row, "device removed"))
            elif ttl < rules.MIN_TTL_S:
                expired.append((row, "expired"))
            else:
                token = self._secrets.open(row["token_sealed"], column=FCM_TOKENS, row_id=row["device_id"]).decode()
                pushes.append(PushMessage(delivery_id=row["id"], token=token, platform=row["platform"],
                                          alert_id=row["alert_id"], ttl_s=ttl,
                                          expires_at_epoch=int(time.time()) + ttl))
                to_send.append(row)
        started = _now()
        t0 = time.perf_counter()
        outcomes = await self._sender.send(pushes) if pushes else []
        duration_ms = (time.perf_counter() - t0) * 1000
        events: list[Event] = []
        async with self._db.for_tenants(_tenants_of(claimed)) as conn:
            for row, reason in expired:
                await self._repo.update_delivery(conn, row["id"], state="failed", attempts=row["attempts"],
                                                 delay_s=0, message_name=None, error=reason)
                await self._after_failure(conn, row, "expired" if reason == "expired" else "tokens_rejected",
                                          reason, events)
            for row, push, outcome in zip(to_send, pushes, outcomes, strict=True):
                await self._apply(conn, row, push, outcome, started, duration_ms, events)
            await PUSH_OUTBOX.add(conn, events)
        if events:
            self._committed()
        return len(claimed)

    async def _apply(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        push: PushMessage,
        outcome: SendOutcome,
        started: datetime,
        duration_ms: float,
        events: list[Event],
    ) -> None:
        attempt = row["attempts"] + 1
        decision = rules.decide(outcome.error, attempt=attempt, retry_after_s=outcome.retry_after_s,
                                backoff_s=self._settings.backoff_s, max_attempts=self._settings.max_attempts)
        await self._repo.record_attempt(conn, {
            "id": new_id(),
            "tenant_id": row["tenant_id"],
            "delivery_id": row["id"],
            "attempt": attempt,
            "started_at": started,
            "duration_ms": duration_ms,
            "outcome": decision.action.value,
            "error_code": None if outcome.error is None else outcome.error.value,
            "http_status": outcome.http_status,
            "retry_after_s": outcome.retry_after_s,
            "detail": outcome.detail[:500] or None,
        })
        action = decision.action
        if action is rules.Action.ACCEPTED:
            await self._repo.update_delivery(conn, row["id"], state="accepted", attempts=attempt, delay_s=0,
                                             message_name=outcome.message_name, error=None)
            await self._repo.clear_alarms(conn, rules.alarms_cleared_by(push.platform))
            events.append(PushAccepted(tenant_id=row["tenant_id"], dispatch_id=row["dispatch_id"],
                                       alert_id=row["alert_id"], officer_id=row["user_id"],
                                       device_id=row["device_id"], escalation_level=row["escalation_level"]))
            return
        error = f"{outcome.error}: {outcome.detail}"[:500]
        if action is rules.Action.DELETE_TOKEN:
            await self._repo.update_delivery(conn, row["id"], state="failed", attempts=attempt, delay_s=0,
                                             message_name=None, error=error)
            if await self._devices.remove_device(conn, row["device_id"], f"FCM {outcome.error}"):
                await self._journal.note(conn, None, "device.token_removed", ("device", row["device_id"]),
                                         tenant_id=row["device_tenant_id"], fcm_error=str(outcome.error),
                                         dispatch_id=str(row["dispatch_id"]))
            await self._after_failure(conn, row, "tokens_rejected", error, events)
        elif action is rules.Action.FAIL:
            await self._repo.update_delivery(conn, row["id"], state="failed", attempts=attempt, delay_s=0,
                                             message_name=None, error=error)
            if outcome.error is FcmError.INVALID_ARGUMENT:
                log.error("push.payload_refused", delivery_id=str(row["id"]), detail=outcome.detail)
            await self._after_failure(conn, row, rules.failure_reason(outcome.error), error, events)
        else:
            await self._repo.update_delivery(conn, row["id"], state="pending", attempts=attempt,
                                             delay_s=decision.delay_s, message_name=None, error=error)
            if action is rules.Action.ALARM:
                kind = rules.alarm_kind(outcome.error)
                if await self._repo.raise_alarm(conn, new_id(), kind, outcome.detail or str(outcome.error)):
                    log.error("push.health_alarm", kind=kind, detail=outcome.detail)
                    events.append(PushHealthAlarmRaised(tenant_id=row["tenant_id"], kind=kind,  # type: ignore[arg-type]
                                                        detail=outcome.detail[:500]))
            self.wake.set()

    async def _after_failure(
        self, conn: asyncpg.Connection, row: asyncpg.Record, reason: str, detail: str, events: list[Event]
    ) -> None:
        """When none of an officer's devices can still get this dispatch, tell alerts at once (no timer wait)."""
        if not await self._repo.officer_unreachable(conn, row["dispatch_id"], row["user_id"]):
            return
        if await self._repo.mark_target_failed(conn, row["dispatch_id"], row["user_id"], reason):
            events.append(PushFailed(tenant_id=row["tenant_id"], dispatch_id=row["dispatch_id"],
                                     alert_id=row["alert_id"], officer_id=row["user_id"],
                                     device_id=row["device_id"], reason=reason,  # type: ignore[arg-type]
                                     detail=detail[:500]))

    async def run_retries(self, stop: asyncio.Event) -> None:
        """Durable timers: pending deliveries live in Postgres with their next attempt time."""
        while not stop.is_set():
            try:
                sent = await self.send_due()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, VigieError) as exc:
                # InterfaceError: the connection died under the transaction (a primary lost, its standby promoted).
                log.warning("push.retry_loop_failed", error=str(exc))
                sent = 0
            if sent:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._settings.retry_poll_s)
