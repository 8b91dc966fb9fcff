"""Use cases of the push API: officers' devices, dispatches and statuses; staff's dispatch reports and alarms."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from core.crypto import FCM_TOKENS, SecretBox
from core.db import Database
from core.errors import PermissionDenied, VigieError
from core.events import Event
from core.ids import new_id
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
from mobile_push.events import PushDelivered, ResponderStatus, ResponderStatusReported
from mobile_push.model import (
    Device,
    DeviceRegistration,
    DispatchReport,
    DispatchView,
    HealthAlarm,
    ResponderState,
    StatusReport,
    TokenRefresh,
)
from mobile_push.repository import PUSH_OUTBOX, PushRepository
from mobile_push.settings import PushSettings

OFFICERS = frozenset({Role.OFFICER})
Target = tuple[str, object | None]


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
        key_bound=row["key_thumbprint"] is not None,
    )


class PushService:
    """What the API does for officers (devices, fetches, statuses) and staff (dispatch reports, alarms).

    Every transaction is the principal's. An officer's devices live in their home tenant (`with_home_tenant`); the
    dispatches sent to them live in the tenants their force covers, which their scope already holds.
    """

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

    async def _note_refusal(
        self,
        conn: asyncpg.Connection,
        principal: Principal,
        tenant_id: uuid.UUID,
        action: str,
        target: Target,
        error: VigieError,
        **details: object,
    ) -> None:
        await self._journal.note(conn, principal, f"{action}.refused", target, tenant_id=tenant_id, camera_id=None,
                                 reason=error.detail, **details)

    async def _refused(
        self,
        principal: Principal,
        tenant_id: uuid.UUID,
        action: str,
        target: Target,
        error: VigieError,
        **details: object,
    ) -> VigieError:
        """Journal a refused request in its own transaction (nothing else changed), and hand the error back."""
        async with self._db.transaction(principal, with_home_tenant=True) as conn:
            await self._note_refusal(conn, principal, tenant_id, action, target, error, **details)
        return error

    def _officer(self, principal: Principal, action: str) -> uuid.UUID:
        require_role(principal, OFFICERS, action)
        if principal.force_id is None:
            raise PermissionDenied("this officer account belongs to no force")
        return principal.force_id

    def _seal(self, token: str, device_id: uuid.UUID) -> bytes:
        return self._secrets.seal(token.encode(), column=FCM_TOKENS, row_id=device_id)

    # --- devices (rows live in the officer's home tenant, like their sign-in)
    async def register_device(self, principal: Principal, data: DeviceRegistration) -> Device:
        force_id = self._officer(principal, "register a device")
        tenant_id = principal.home_tenant_id
        if not rules.valid_token(data.fcm_token):
            raise await self._refused(principal, tenant_id, "device.register", ("device", None),
                                      InvalidTokenShape(), platform=data.platform)
        device_id = new_id()
        try:
            async with self._db.transaction(principal, with_home_tenant=True) as conn:
                row = await self._repo.insert_device(conn, {
                    "id": device_id,
                    "tenant_id": tenant_id,
                    "user_id": principal.user_id,
                    "force_id": force_id,
                    "platform": data.platform,
                    "token_sealed": self._seal(data.fcm_token, device_id),
                    "token_hash": rules.token_digest(data.fcm_token),
                    "app_version": data.app_version,
                    # The phone's key, when its session proved one: the device is bound to it from now on.
                    "key_thumbprint": principal.key_thumbprint,
                })
                await self._journal.note(conn, principal, "device.register", ("device", device_id),
                                         tenant_id=tenant_id, platform=data.platform, force_id=str(force_id))
        except asyncpg.UniqueViolationError:
            # One live registration per token across the platform: the unique index sees every tenant, RLS or not.
            raise await self._refused(principal, tenant_id, "device.register", ("device", None),
                                      DuplicateToken()) from None
        return _device(row, self._settings.stale_after_s)

    async def _own_device(
        self, conn: asyncpg.Connection, principal: Principal, device_id: uuid.UUID
    ) -> asyncpg.Record | None:
        row = await self._repo.device(conn, device_id, lock=True)
        # Another officer's device, or one registered under a force this officer no longer belongs to: not theirs.
        if row is None or row["user_id"] != principal.user_id or row["force_id"] != principal.force_id:
            return None
        # A device bound to a phone's key answers only to a session proving that key (a stolen token of another
        # session of the same officer, or the officer signed in elsewhere, cannot act for that phone).
        if row["key_thumbprint"] is not None and row["key_thumbprint"] != principal.key_thumbprint:
            return None
        return row

    async def refresh_token(self, principal: Principal, device_id: uuid.UUID, data: TokenRefresh) -> Device:
        self._officer(principal, "refresh a device token")
        tenant_id = principal.home_tenant_id
        target: Target = ("device", device_id)
        if not rules.valid_token(data.fcm_token):
            raise await self._refused(principal, tenant_id, "device.refresh", target, InvalidTokenShape())
        refusal: VigieError | None = None
        row = None
        try:
            async with self._db.transaction(principal, with_home_tenant=True) as conn:
                current = await self._own_device(conn, principal, device_id)
                if current is None or current["removed_at"] is not None:
                    refusal = DeviceNotFound()
                else:
                    row = await self._repo.replace_token(conn, device_id, self._seal(data.fcm_token, device_id),
                                                         rules.token_digest(data.fcm_token))
                    if row is None:
                        refusal = DuplicateToken()
                    else:
                        await self._journal.note(conn, principal, "device.token_refresh", target, tenant_id=tenant_id)
                if refusal is not None:
                    await self._note_refusal(conn, principal, tenant_id, "device.refresh", target, refusal)
        except asyncpg.UniqueViolationError:
            raise await self._refused(principal, tenant_id, "device.refresh", target, DuplicateToken()) from None
        if refusal is not None:
            raise refusal
        assert row is not None
        return _device(row, self._settings.stale_after_s)

    async def heartbeat(self, principal: Principal, device_id: uuid.UUID) -> Device:
        self._officer(principal, "send a heartbeat")
        async with self._db.transaction(principal, with_home_tenant=True) as conn:
            current = await self._own_device(conn, principal, device_id)
            if current is None or current["removed_at"] is not None:
                row = None
                await self._note_refusal(conn, principal, principal.home_tenant_id, "device.heartbeat",
                                         ("device", device_id), DeviceNotFound())
            else:
                row = await self._repo.touch_device(conn, device_id)
        if row is None:
            raise DeviceNotFound()
        return _device(row, self._settings.stale_after_s)

    async def remove_device(self, principal: Principal, device_id: uuid.UUID) -> None:
        """The officer signs out of the app on that phone: it gets no more pushes."""
        self._officer(principal, "remove a device")
        async with self._db.transaction(principal, with_home_tenant=True) as conn:
            current = await self._own_device(conn, principal, device_id)
            removed = current is not None and await self._repo.remove_device(conn, device_id, "signed out")
            if removed:
                await self._journal.note(conn, principal, "device.remove", ("device", device_id),
                                         tenant_id=principal.home_tenant_id)
        if not removed:
            raise DeviceNotFound()

    async def list_devices(self, principal: Principal, after: uuid.UUID | None, limit: int) -> list[Device]:
        """Officers see their own devices; staff see those of their scope (never a token)."""
        if principal.role is Role.OFFICER:
            async with self._db.transaction(principal, readonly=True, with_home_tenant=True) as conn:
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
        # Row-level security keeps the officer to the tenants their force covers; the query, to what was sent to them.
        async with self._db.transaction(principal, readonly=alert_id is None) as conn:
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
        async with self._db.transaction(principal) as conn:
            rows = await self._repo.dispatch_for_officer(
                conn, user_id=principal.user_id, dispatch_id=dispatch_id, alert_id=None, limit=1
            )
            if not rows:
                raise NotDispatchedToYou()
            view = DispatchView(**dict(rows[0]))
            await self._journal_fetch(conn, principal, view)
        return view

    async def _journal_fetch(self, conn: asyncpg.Connection, principal: Principal, view: DispatchView) -> None:
        await self._journal.note(conn, principal, "alert.fetch", ("alert", view.alert_id), tenant_id=view.tenant_id,
                                 camera_id=view.camera_id, dispatch_id=str(view.dispatch_id))

    async def report_status(self, principal: Principal, dispatch_id: uuid.UUID, data: StatusReport) -> ResponderState:
        """A receipt (`delivered`) or a responder status; refused ones change nothing and are journaled."""
        self._officer(principal, "report a status")
        # The dispatch lives in a tenant the officer's force covers; their devices and journal, in their home tenant.
        refusal: VigieError | None
        async with self._db.transaction(principal, with_home_tenant=True) as conn:
            target = await self._repo.target(conn, dispatch_id, principal.user_id)
            if target is None:
                tenant_id, refusal = principal.home_tenant_id, NotDispatchedToYou()
            else:
                tenant_id = target["tenant_id"]
                refusal = await self._apply_status(conn, principal, dispatch_id, target, data)
            if refusal is not None:
                await self._note_refusal(conn, principal, tenant_id, "dispatch.status", ("dispatch", dispatch_id),
                                         refusal, status=data.status.value)
        if refusal is not None:
            raise refusal
        return ResponderState(
            officer_id=principal.user_id,
            status=data.status,
            status_at=_now(),
            deliveries_accepted=0,
            deliveries_failed=0,
        )

    async def _apply_status(
        self,
        conn: asyncpg.Connection,
        principal: Principal,
        dispatch_id: uuid.UUID,
        target: asyncpg.Record,
        data: StatusReport,
    ) -> VigieError | None:
        """Record the status and its events, or say why it is refused."""
        current = None if target["status"] is None else ResponderStatus(target["status"])
        refusal: VigieError | None = None
        if data.device_id is not None:
            if await self._own_device(conn, principal, data.device_id) is None:
                refusal = ForeignDevice()
            else:
                await self._repo.touch_device(conn, data.device_id)
        verdict = rules.check_transition(current, data.status)
        if refusal is None and verdict is rules.StatusVerdict.REPLAY:
            refusal = StatusReplayed(data.status.value)
        elif refusal is None and verdict is rules.StatusVerdict.OUT_OF_ORDER:
            refusal = StatusOutOfOrder(None if current is None else current.value, data.status.value)
        if refusal is not None:
            return refusal
        tenant_id = target["tenant_id"]
        await self._repo.set_status(conn, tenant_id=tenant_id, dispatch_id=dispatch_id, user_id=principal.user_id,
                                    status=data.status, device_id=data.device_id, receipt_id=new_id(),
                                    outcome=data.outcome)
        common = {"tenant_id": tenant_id, "dispatch_id": dispatch_id, "alert_id": target["alert_id"],
                  "officer_id": principal.user_id}
        events: list[Event] = []
        if data.status is ResponderStatus.DELIVERED and data.device_id is not None:
            events.append(PushDelivered(**common, device_id=data.device_id))
        events.append(ResponderStatusReported(**common, device_id=data.device_id, status=data.status))
        await PUSH_OUTBOX.add(conn, events)
        await self._journal.note(conn, principal, "dispatch.status", ("dispatch", dispatch_id), tenant_id=tenant_id,
                                 camera_id=None, status=data.status.value,
                                 **{"from": None if current is None else current.value},
                                 device_id=None if data.device_id is None else str(data.device_id),
                                 alert_id=str(target["alert_id"]))
        return None

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
