"""Use cases of mobile push: devices and statuses for the API; the dispatcher and outbox relay for the process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg
from nats.aio.msg import Msg

from alerts.events import DispatchOrdered, DispatchWithdrawn
from core.bus import Bus
from core.crypto import SecretBox
from core.db import Database, tenant_transaction
from core.errors import PermissionDenied, VigieError
from core.events import Event, EventCodec
from core.ids import new_id
from core.logging import get_logger
from core.tenancy import DEPARTMENT_WIDE_ROLES, STAFF_READERS, Principal, Role, require_role
from journal.service import JournalService
from mobile_push import rules
from mobile_push.errors import (
    DeviceNotFound,
    DuplicateToken,
    ForeignDevice,
    InvalidTokenShape,
    NotDispatchedToYou,
    StatusOutOfOrder,
    StatusReplayed,
)
from mobile_push.events import (
    PushAccepted,
    PushDelivered,
    PushFailed,
    PushHealthAlarmRaised,
    ResponderStatus,
    ResponderStatusReported,
    subject_for,
)
from mobile_push.model import (
    Device,
    DeviceRegistration,
    DispatchReport,
    DispatchView,
    FcmError,
    HealthAlarm,
    PushMessage,
    ResponderState,
    SendOutcome,
    StatusReport,
    TokenRefresh,
)
from mobile_push.repository import PushRepository
from mobile_push.settings import PushSettings

log = get_logger(__name__)
TOKEN_PURPOSE = "fcm-token"
OFFICERS = frozenset({Role.OFFICER})
# A claimed delivery is leased for this long: a sender that dies mid-send leaves it to be retried, not lost.
CLAIM_LEASE_S = 30.0


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _now() -> datetime:
    return datetime.now(UTC)


def _device(row: asyncpg.Record, stale_after_s: int) -> Device:
    return Device(
        id=row["id"],
        officer_id=row["user_id"],
        force_id=row["force_id"],
        tenant_id=row["tenant_id"],
        platform=row["platform"],
        app_version=row["app_version"],
        registered_at=row["registered_at"],
        token_refreshed_at=row["token_refreshed_at"],
        last_seen_at=row["last_seen_at"],
        stale=rules.is_stale(row["last_seen_at"], _now(), stale_after_s),
        active=row["removed_at"] is None,
        removed_reason=row["removed_reason"],
    )


async def _enqueue(repo: PushRepository, conn: asyncpg.Connection, event: Event) -> None:
    await repo.enqueue(conn, event.event_id, event.tenant_id, subject_for(event), EventCodec.encode(event))


class PushService:
    """What the API does for officers (devices, fetches, statuses) and staff (dispatch reports, alarms)."""

    def __init__(
        self,
        db: Database,
        journal: JournalService,
        secrets: SecretBox,
        settings: PushSettings | None = None,
        repository: PushRepository | None = None,
    ) -> None:
        self._db = db
        self._journal = journal
        self._secrets = secrets
        self._settings = settings or PushSettings()
        self._repo = repository or PushRepository()

    async def _refused(
        self,
        principal: Principal,
        tenant_id: uuid.UUID,
        action: str,
        target_type: str,
        target_id: object,
        error: VigieError,
        **details: object,
    ) -> VigieError:
        """Journal a refused request in its own transaction (nothing else changed), and hand the error back."""
        async with tenant_transaction(self._db.app_pool, [tenant_id]) as conn:
            await self._journal.record(
                conn,
                tenant_id=tenant_id,
                actor=principal,
                action=f"{action}.refused",
                target_type=target_type,
                target_id=target_id,
                details={"reason": error.detail, **details},
            )
        return error

    def _officer(self, principal: Principal, action: str) -> uuid.UUID:
        require_role(principal, OFFICERS, action)
        if principal.force_id is None:
            raise PermissionDenied("this officer account belongs to no force")
        return principal.force_id

    # --- devices (rows live in the officer's home tenant, like their sign-in)
    async def register_device(self, principal: Principal, data: DeviceRegistration) -> Device:
        force_id = self._officer(principal, "register a device")
        tenant_id = principal.home_tenant_id
        if not rules.valid_token(data.fcm_token):
            raise await self._refused(
                principal,
                tenant_id,
                "device.register",
                "device",
                None,
                InvalidTokenShape(),
                platform=data.platform,
            )
        digest = token_digest(data.fcm_token)
        async with self._db.cross_tenant() as conn:
            duplicate = await self._repo.live_token_exists(conn, digest)
        if duplicate:
            raise await self._refused(principal, tenant_id, "device.register", "device", None, DuplicateToken())
        device_id = new_id()
        try:
            async with tenant_transaction(self._db.app_pool, [tenant_id]) as conn:
                row = await self._repo.insert_device(
                    conn,
                    {
                        "id": device_id,
                        "tenant_id": tenant_id,
                        "user_id": principal.user_id,
                        "force_id": force_id,
                        "platform": data.platform,
                        "token_sealed": self._secrets.seal(data.fcm_token.encode(), purpose=TOKEN_PURPOSE),
                        "token_hash": digest,
                        "app_version": data.app_version,
                    },
                )
                await self._journal.record(
                    conn,
                    tenant_id=tenant_id,
                    actor=principal,
                    action="device.register",
                    target_type="device",
                    target_id=device_id,
                    details={"platform": data.platform, "force_id": str(force_id)},
                )
        except asyncpg.UniqueViolationError:
            raise await self._refused(
                principal, tenant_id, "device.register", "device", None, DuplicateToken()
            ) from None
        return _device(row, self._settings.stale_after_s)

    async def _own_device(
        self, conn: asyncpg.Connection, principal: Principal, device_id: uuid.UUID
    ) -> asyncpg.Record | None:
        row = await self._repo.device(conn, device_id, lock=True)
        # Another officer's device, or one registered under a force this officer no longer belongs to: not theirs.
        if row is None or row["user_id"] != principal.user_id or row["force_id"] != principal.force_id:
            return None
        return row

    async def refresh_token(self, principal: Principal, device_id: uuid.UUID, data: TokenRefresh) -> Device:
        self._officer(principal, "refresh a device token")
        tenant_id = principal.home_tenant_id
        if not rules.valid_token(data.fcm_token):
            raise await self._refused(principal, tenant_id, "device.refresh", "device", device_id, InvalidTokenShape())
        digest = token_digest(data.fcm_token)
        async with self._db.cross_tenant() as conn:
            duplicate = await self._repo.live_token_exists(conn, digest)
        refusal: VigieError | None = DuplicateToken() if duplicate else None
        row = None
        if refusal is None:
            try:
                async with tenant_transaction(self._db.app_pool, [tenant_id]) as conn:
                    current = await self._own_device(conn, principal, device_id)
                    if current is None or current["removed_at"] is not None:
                        refusal = DeviceNotFound()
                    else:
                        row = await self._repo.replace_token(
                            conn, device_id, self._secrets.seal(data.fcm_token.encode(), purpose=TOKEN_PURPOSE), digest
                        )
                        await self._journal.record(
                            conn,
                            tenant_id=tenant_id,
                            actor=principal,
                            action="device.token_refresh",
                            target_type="device",
                            target_id=device_id,
                        )
            except asyncpg.UniqueViolationError:
                refusal = DuplicateToken()
        if refusal is not None:
            raise await self._refused(principal, tenant_id, "device.refresh", "device", device_id, refusal)
        assert row is not None
        return _device(row, self._settings.stale_after_s)

    async def heartbeat(self, principal: Principal, device_id: uuid.UUID) -> Device:
        self._officer(principal, "send a heartbeat")
        async with tenant_transaction(self._db.app_pool, [principal.home_tenant_id]) as conn:
            current = await self._own_device(conn, principal, device_id)
            if current is None or current["removed_at"] is not None:
                row = None
            else:
                row = await self._repo.touch_device(conn, device_id)
        if row is None:
            raise await self._refused(
                principal, principal.home_tenant_id, "device.heartbeat", "device", device_id, DeviceNotFound()
            )
        return _device(row, self._settings.stale_after_s)

    async def remove_device(self, principal: Principal, device_id: uuid.UUID) -> None:
        """The officer signs out of the app on that phone: it gets no more pushes."""
        self._officer(principal, "remove a device")
        async with tenant_transaction(self._db.app_pool, [principal.home_tenant_id]) as conn:
            current = await self._own_device(conn, principal, device_id)
            removed = current is not None and await self._repo.remove_device(conn, device_id, "signed out")
            if removed:
                await self._journal.record(
                    conn,
                    tenant_id=principal.home_tenant_id,
                    actor=principal,
                    action="device.remove",
                    target_type="device",
                    target_id=device_id,
                )
        if not removed:
            raise DeviceNotFound()

    async def list_devices(self, principal: Principal, after: uuid.UUID | None, limit: int) -> list[Device]:
        """Officers see their own devices; staff see those of their scope (never a token)."""
        if principal.role is Role.OFFICER:
            async with tenant_transaction(self._db.app_pool, [principal.home_tenant_id], readonly=True) as conn:
                rows = await self._repo.devices(conn, user_id=principal.user_id, after=after, limit=limit)
        else:
            require_role(principal, STAFF_READERS, "list devices")
            async with self._db.transaction(principal, readonly=True) as conn:
                rows = await self._repo.devices(conn, user_id=None, after=after, limit=limit)
        return [_device(r, self._settings.stale_after_s) for r in rows]

    # --- dispatches as the officer's app sees them
    async def my_dispatches(
        self, principal: Principal, *, alert_id: uuid.UUID | None, limit: int
    ) -> list[DispatchView]:
        """The app's fetch after a push (by the opaque alert id it carried): journaled per dispatch returned."""
        self._officer(principal, "read dispatches")
        async with self._db.cross_tenant() as conn:
            if alert_id is not None:
                tenants = await self._repo.target_tenants_for_alert(conn, alert_id, principal.user_id)
            else:
                tenants = await self._repo.recent_target_tenants(conn, principal.user_id, limit)
        if not tenants:
            return []
        # Only the tenants where this officer was actually dispatched: row-level security does the rest.
        async with tenant_transaction(self._db.app_pool, tenants) as conn:
            rows = await self._repo.dispatch_for_officer(
                conn, user_id=principal.user_id, dispatch_id=None, alert_id=alert_id, limit=limit
            )
            views = [DispatchView(**dict(r)) for r in rows]
            if alert_id is not None:
                for view in views:
                    await self._journal_fetch(conn, principal, view)
        return views

    async def fetch_dispatch(self, principal: Principal, dispatch_id: uuid.UUID) -> DispatchView:
        self._officer(principal, "read a dispatch")
        tenant_id = await self._target_tenant(principal, dispatch_id)
        if tenant_id is None:
            raise NotDispatchedToYou()
        async with tenant_transaction(self._db.app_pool, [tenant_id]) as conn:
            rows = await self._repo.dispatch_for_officer(
                conn, user_id=principal.user_id, dispatch_id=dispatch_id, alert_id=None, limit=1
            )
            if not rows:
                raise NotDispatchedToYou()
            view = DispatchView(**dict(rows[0]))
            await self._journal_fetch(conn, principal, view)
        return view

    async def _journal_fetch(self, conn: asyncpg.Connection, principal: Principal, view: DispatchView) -> None:
        await self._journal.record(
            conn,
            tenant_id=view.tenant_id,
            actor=principal,
            action="alert.fetch",
            target_type="alert",
            target_id=view.alert_id,
            camera_id=view.camera_id,
            details={"dispatch_id": str(view.dispatch_id)},
        )

    async def _target_tenant(self, principal: Principal, dispatch_id: uuid.UUID) -> uuid.UUID | None:
        async with self._db.cross_tenant() as conn:
            return await self._repo.target_tenant(conn, dispatch_id, principal.user_id)

    async def report_status(self, principal: Principal, dispatch_id: uuid.UUID, data: StatusReport) -> ResponderState:
        """A receipt (`delivered`) or a responder status; refused ones change nothing and are journaled."""
        self._officer(principal, "report a status")
        tenant_id = await self._target_tenant(principal, dispatch_id)
        if tenant_id is None:
            raise await self._refused(
                principal,
                principal.home_tenant_id,
                "dispatch.status",
                "dispatch",
                dispatch_id,
                NotDispatchedToYou(),
                status=data.status.value,
            )
        refusal: VigieError | None = None
        scope = {tenant_id, principal.home_tenant_id}
        async with tenant_transaction(self._db.app_pool, scope) as conn:
            target = await self._repo.target(conn, dispatch_id, principal.user_id)
            assert target is not None
            current = None if target["status"] is None else ResponderStatus(target["status"])
            if data.device_id is not None:
                device = await self._own_device(conn, principal, data.device_id)
                if device is None:
                    refusal = ForeignDevice()
                else:
                    await self._repo.touch_device(conn, data.device_id)
            verdict = rules.check_transition(current, data.status)
            if refusal is None and verdict is rules.StatusVerdict.REPLAY:
                refusal = StatusReplayed(data.status.value)
            elif refusal is None and verdict is rules.StatusVerdict.OUT_OF_ORDER:
                refusal = StatusOutOfOrder(None if current is None else current.value, data.status.value)
            if refusal is None:
                await self._repo.set_status(
                    conn,
                    tenant_id=tenant_id,
                    dispatch_id=dispatch_id,
                    user_id=principal.user_id,
                    status=data.status,
                    device_id=data.device_id,
                    receipt_id=new_id(),
                    outcome=data.outcome,
                )
                common: dict[str, Any] = {
                    "tenant_id": tenant_id,
                    "dispatch_id": dispatch_id,
                    "alert_id": target["alert_id"],
                    "officer_id": principal.user_id,
                }
                if data.status is ResponderStatus.DELIVERED and data.device_id is not None:
                    await _enqueue(self._repo, conn, PushDelivered(**common, device_id=data.device_id))
                await _enqueue(
                    self._repo, conn, ResponderStatusReported(**common, device_id=data.device_id, status=data.status)
                )
                await self._journal.record(
                    conn,
                    tenant_id=tenant_id,
                    actor=principal,
                    action="dispatch.status",
                    target_type="dispatch",
                    target_id=dispatch_id,
                    details={
                        "status": data.status.value,
                        "from": None if current is None else current.value,
                        "device_id": None if data.device_id is None else str(data.device_id),
                        "alert_id": str(target["alert_id"]),
                    },
                )
        if refusal is not None:
            raise await self._refused(
                principal, tenant_id, "dispatch.status", "dispatch", dispatch_id, refusal, status=data.status.value
            )
        return ResponderState(
            officer_id=principal.user_id,
            status=data.status,
            status_at=_now(),
            deliveries_accepted=0,
            deliveries_failed=0,
        )

    # --- what staff see
    async def dispatch_report(self, principal: Principal, dispatch_id: uuid.UUID) -> DispatchReport:
        require_role(principal, STAFF_READERS, "read dispatch reports")
        async with self._db.transaction(principal, readonly=True) as conn:
            row = await self._repo.dispatch(conn, dispatch_id)
            if row is None:
                raise NotDispatchedToYou()
            return DispatchReport(
                dispatch_id=row["id"],
                alert_id=row["alert_id"],
                force_id=row["force_id"],
                urgency=row["urgency"],
                escalation_level=row["escalation_level"],
                ordered_at=row["ordered_at"],
                responders=await self._repo.responders(conn, dispatch_id),
                attempts=await self._repo.attempts(conn, dispatch_id),
            )

    async def alarms(self, principal: Principal, *, open_only: bool, limit: int) -> list[HealthAlarm]:
        require_role(principal, DEPARTMENT_WIDE_ROLES, "read push health alarms")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.alarms(conn, open_only=open_only, limit=limit)


class Sender(Protocol):
    async def send(self, pushes: Sequence[PushMessage]) -> list[SendOutcome]: ...


class PushDispatcher:
    """Turns dispatch orders into one delivery per device, sends them, applies the error policy, retries durably.

    Runs on the department role: an order names a force, whose officers' devices live in their home tenants.
    """

    def __init__(
        self,
        db: Database,
        sender: Sender,
        secrets: SecretBox,
        settings: PushSettings,
        journal: JournalService | None = None,
        repository: PushRepository | None = None,
    ) -> None:
        self._db = db
        self._sender = sender
        self._secrets = secrets
        self._settings = settings
        self._journal = journal or JournalService()
        self._repo = repository or PushRepository()
        self.wake = asyncio.Event()

    async def handle(self, event: Event, msg: Msg | None = None) -> None:
        """Bus handler for alerts.>: orders are recorded then sent at once; withdrawals stop pending sends."""
        if isinstance(event, DispatchOrdered):
            if await self.accept_order(event):
                await self.send_due(order_event_id=event.event_id)
        elif isinstance(event, DispatchWithdrawn):
            await self.withdraw(event)

    async def accept_order(self, order: DispatchOrdered) -> bool:
        """Record the order, its targets and deliveries (idempotent by event id). True if there is anything new."""
        async with self._db.cross_tenant() as conn, conn.transaction():
            common: dict[str, Any] = {
                "tenant_id": order.tenant_id,
                "dispatch_id": order.dispatch_id,
                "alert_id": order.alert_id,
            }
            if not await self._repo.force_competent(conn, order.force_id, order.tenant_id, order.camera_id):
                await _enqueue(
                    self._repo,
                    conn,
                    PushFailed(
                        **common,
                        officer_id=None,
                        reason="force_not_competent",
                        detail=f"force {order.force_id} may not act where camera {order.camera_id} is",
                    ),
                )
                await self._journal.record(
                    conn,
                    tenant_id=order.tenant_id,
                    actor=None,
                    actor_role="system",
                    action="dispatch.refused",
                    target_type="dispatch",
                    target_id=order.dispatch_id,
                    details={"reason": "force_not_competent", "force_id": str(order.force_id)},
                )
                return False
            ordered_at = order.occurred_at
            fresh = await self._repo.record_order(
                conn,
                {
                    **common,
                    "event_id": order.event_id,
                    "camera_id": order.camera_id,
                    "force_id": order.force_id,
                    "urgency": order.urgency.value,
                    "ttl_s": order.ttl_s,
                    "escalation_level": order.escalation_level,
                    "ordered_at": ordered_at,
                    "expires_at": ordered_at + timedelta(seconds=order.ttl_s),
                    "officer_ids": list(order.officer_ids),
                },
            )
            if not fresh:
                return False
            devices = await self._repo.devices_of_force(conn, order.force_id, list(order.officer_ids) or None)
            officers = list(dict.fromkeys([*order.officer_ids, *(d["user_id"] for d in devices)]))
            for officer in officers:
                await self._repo.add_target(conn, order.tenant_id, order.dispatch_id, officer)
            for device in devices:
                await self._repo.add_delivery(
                    conn,
                    {
                        "id": new_id(),
                        "tenant_id": order.tenant_id,
                        "dispatch_id": order.dispatch_id,
                        "order_event_id": order.event_id,
                        "device_id": device["id"],
                        "user_id": device["user_id"],
                    },
                )
            reachable = {d["user_id"] for d in devices}
            for officer in officers:
                if officer not in reachable:
                    await self._repo.mark_target_failed(conn, order.dispatch_id, officer, "no_device")
                    await _enqueue(self._repo, conn, PushFailed(**common, officer_id=officer, reason="no_device"))
            if not officers:
                await _enqueue(
                    self._repo,
                    conn,
                    PushFailed(
                        **common,
                        officer_id=None,
                        reason="no_device",
                        detail="no officer of this force has a registered device",
                    ),
                )
            await self._journal.record(
                conn,
                tenant_id=order.tenant_id,
                actor=None,
                actor_role="system",
                action="dispatch.received",
                target_type="dispatch",
                target_id=order.dispatch_id,
                details={
                    "alert_id": str(order.alert_id),
                    "force_id": str(order.force_id),
                    "level": order.escalation_level,
                    "officers": len(officers),
                    "devices": len(devices),
                },
            )
        return bool(devices)

    async def withdraw(self, event: DispatchWithdrawn) -> None:
        """The alert was closed or dismissed: nothing still pending for it may reach a phone."""
        async with self._db.cross_tenant() as conn:
            await self._repo.withdraw(conn, event.dispatch_id, event.reason)

    async def send_due(self, *, order_event_id: uuid.UUID | None = None) -> int:
        """Claim due deliveries, send them in one batch, record every attempt and apply the policy."""
        now = _now()
        async with self._db.cross_tenant() as conn, conn.transaction():
            claimed = await self._repo.claim_due(conn, self._settings.batch_size, order_event_id=order_event_id)
            if claimed:
                await self._repo.lease(conn, [r["id"] for r in claimed], CLAIM_LEASE_S)
        if not claimed:
            return 0
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
                token = self._secrets.open(row["token_sealed"], purpose=TOKEN_PURPOSE).decode()
                pushes.append(
                    PushMessage(
                        delivery_id=row["id"],
                        token=token,
                        platform=row["platform"],
                        alert_id=row["alert_id"],
                        ttl_s=ttl,
                        expires_at_epoch=int(time.time()) + ttl,
                    )
                )
                to_send.append(row)
        started = _now()
        t0 = time.perf_counter()
        outcomes = await self._sender.send(pushes) if pushes else []
        duration_ms = (time.perf_counter() - t0) * 1000
        async with self._db.cross_tenant() as conn, conn.transaction():
            for row, reason in expired:
                await self._repo.update_delivery(
                    conn,
                    row["id"],
                    state="failed",
                    attempts=row["attempts"],
                    delay_s=0,
                    message_name=None,
                    error=reason,
                )
                await self._after_failure(conn, row, "expired" if reason == "expired" else "tokens_rejected", reason)
            for row, push, outcome in zip(to_send, pushes, outcomes, strict=True):
                await self._apply(conn, row, push, outcome, started, duration_ms)
        return len(claimed)

    async def _apply(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        push: PushMessage,
        outcome: SendOutcome,
        started: datetime,
        duration_ms: float,
    ) -> None:
        attempt = row["attempts"] + 1
        decision = rules.decide(
            outcome.error,
            attempt=attempt,
            retry_after_s=outcome.retry_after_s,
            backoff_s=self._settings.backoff_s,
            max_attempts=self._settings.max_attempts,
        )
        await self._repo.record_attempt(
            conn,
            {
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
            },
        )
        common: dict[str, Any] = {
            "tenant_id": row["tenant_id"],
            "dispatch_id": row["dispatch_id"],
            "alert_id": row["alert_id"],
            "officer_id": row["user_id"],
            "device_id": row["device_id"],
        }
        action = decision.action
        if action is rules.Action.ACCEPTED:
            await self._repo.update_delivery(
                conn,
                row["id"],
                state="accepted",
                attempts=attempt,
                delay_s=0,
                message_name=outcome.message_name,
                error=None,
            )
            await self._repo.clear_alarms(
                conn, ["credentials", "third_party_auth"] if push.platform == "ios" else ["credentials"]
            )
            await _enqueue(self._repo, conn, PushAccepted(**common, escalation_level=row["escalation_level"]))
            return
        error = f"{outcome.error}: {outcome.detail}"[:500]
        if action is rules.Action.DELETE_TOKEN:
            await self._repo.update_delivery(
                conn, row["id"], state="failed", attempts=attempt, delay_s=0, message_name=None, error=error
            )
            device = await self._repo.device(conn, row["device_id"])
            if await self._repo.remove_device(conn, row["device_id"], f"FCM {outcome.error}"):
                assert device is not None
                await self._journal.record(
                    conn,
                    tenant_id=device["tenant_id"],
                    actor=None,
                    actor_role="system",
                    action="device.token_removed",
                    target_type="device",
                    target_id=row["device_id"],
                    details={"fcm_error": str(outcome.error), "dispatch_id": str(row["dispatch_id"])},
                )
            await self._after_failure(conn, row, "tokens_rejected", error)
        elif action is rules.Action.FAIL:
            await self._repo.update_delivery(
                conn, row["id"], state="failed", attempts=attempt, delay_s=0, message_name=None, error=error
            )
            reason = (
                "credentials"
                if outcome.error in (FcmError.CREDENTIALS, FcmError.THIRD_PARTY_AUTH)
                else ("tokens_rejected" if outcome.error is FcmError.INVALID_ARGUMENT else "expired")
            )
            if outcome.error is FcmError.INVALID_ARGUMENT:
                log.error("push.payload_refused", delivery_id=str(row["id"]), detail=outcome.detail)
            await self._after_failure(conn, row, reason, error)
        else:
            await self._repo.update_delivery(
                conn,
                row["id"],
                state="pending",
                attempts=attempt,
                delay_s=decision.delay_s,
                message_name=None,
                error=error,
            )
            if action is rules.Action.ALARM:
                kind = "third_party_auth" if outcome.error is FcmError.THIRD_PARTY_AUTH else "credentials"
                if await self._repo.raise_alarm(conn, new_id(), kind, outcome.detail or str(outcome.error)):
                    log.error("push.health_alarm", kind=kind, detail=outcome.detail)
                    await _enqueue(
                        self._repo,
                        conn,
                        PushHealthAlarmRaised(
                            tenant_id=row["tenant_id"],
                            kind=kind,  # type: ignore[arg-type]
                            detail=outcome.detail[:500],
                        ),
                    )
            self.wake.set()

    async def _after_failure(self, conn: asyncpg.Connection, row: asyncpg.Record, reason: str, detail: str) -> None:
        """When none of an officer's devices can still get this dispatch, tell alerts at once (no timer wait)."""
        if not await self._repo.officer_unreachable(conn, row["dispatch_id"], row["user_id"]):
            return
        if await self._repo.mark_target_failed(conn, row["dispatch_id"], row["user_id"], reason):
            await _enqueue(
                self._repo,
                conn,
                PushFailed(
                    tenant_id=row["tenant_id"],
                    dispatch_id=row["dispatch_id"],
                    alert_id=row["alert_id"],
                    officer_id=row["user_id"],
                    device_id=row["device_id"],
                    reason=reason,  # type: ignore[arg-type]
                    detail=detail[:500],
                ),
            )

    async def run_retries(self, stop: asyncio.Event) -> None:
        """Durable timers: pending deliveries live in Postgres with their next attempt time."""
        while not stop.is_set():
            try:
                sent = await self.send_due()
            except (OSError, asyncpg.PostgresError, VigieError) as exc:
                log.warning("push.retry_loop_failed", error=str(exc))
                sent = 0
            if sent:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._settings.retry_poll_s)


class OutboxRelay:
    """Publishes committed push events to NATS (Nats-Msg-Id = event id), then marks them sent."""

    def __init__(
        self, db: Database, bus: Bus, settings: PushSettings, repository: PushRepository | None = None
    ) -> None:
        self._db = db
        self._bus = bus
        self._settings = settings
        self._repo = repository or PushRepository()

    async def relay_once(self) -> int:
        async with self._db.cross_tenant() as conn, conn.transaction():
            rows = await self._repo.unsent(conn, 500)
            if not rows:
                return 0
            await asyncio.gather(
                *(
                    self._bus.js.publish(r["subject"], bytes(r["payload"]), headers={"Nats-Msg-Id": str(r["id"])})
                    for r in rows
                )
            )
            await self._repo.mark_sent(conn, [r["id"] for r in rows])
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        # Polling, not LISTEN: a listening connection would hold one of the department pool's few connections.
        while not stop.is_set():
            try:
                if await self.relay_once():
                    continue
            except (OSError, asyncpg.PostgresError, VigieError, TimeoutError) as exc:
                log.warning("push.relay_failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.outbox_poll_s)
