"""Devices, dispatches, deliveries, attempts and receipts of the push domain (frozen msgspec structs)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, NewType

import msgspec

from mobile_push.events import ResponderStatus

DeviceId = NewType("DeviceId", uuid.UUID)
DispatchId = NewType("DispatchId", uuid.UUID)

Platform = Literal["android", "ios"]
# Only bounded here: its shape is checked by the service, so that a malformed token is refused *and journaled*.
FcmToken = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
AppVersion = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._+\-]+$")]


class DeviceRegistration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the app sends once signed in. The token is write-only: no response ever carries it."""

    fcm_token: FcmToken
    platform: Platform
    app_version: AppVersion | None = None


class TokenRefresh(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """FCM rotated the app's token (onNewToken)."""

    fcm_token: FcmToken


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """A registered device as the API shows it: never its token."""

    id: uuid.UUID
    officer_id: uuid.UUID
    force_id: uuid.UUID
    tenant_id: uuid.UUID
    platform: Platform
    app_version: str | None
    registered_at: datetime
    token_refreshed_at: datetime
    last_seen_at: datetime
    stale: bool
    active: bool
    removed_reason: str | None = None
    # Registered by a session bound to the phone's key (DPoP): only a session proving that key may act for it.
    key_bound: bool = False


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its first or next attempt
    ACCEPTED = "accepted"  # FCM returned a message name: handed to Google, not delivered
    FAILED = "failed"  # permanently: token removed, payload refused, expired or out of attempts


# What the responder found on scene, reported with `closed` only.
ResponderOutcome = Literal["arrest_in_flagrante_delicto", "people_found", "nobody_found", "false_alarm"]


class StatusReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A receipt or a responder status posted by the app for one dispatch."""

    status: ResponderStatus
    device_id: uuid.UUID | None = None
    outcome: ResponderOutcome | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.status is not ResponderStatus.CLOSED:
            raise ValueError("an outcome is reported with the `closed` status only")


class ResponderState(msgspec.Struct, frozen=True, kw_only=True):
    officer_id: uuid.UUID
    status: ResponderStatus | None
    status_at: datetime | None
    deliveries_accepted: int
    deliveries_failed: int


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP send to FCM for one device."""

    delivery_id: uuid.UUID
    device_id: uuid.UUID
    officer_id: uuid.UUID
    attempt: int
    started_at: datetime
    duration_ms: float
    outcome: str
    error_code: str | None
    http_status: int | None
    retry_after_s: float | None


class DispatchView(msgspec.Struct, frozen=True, kw_only=True):
    """A dispatch as the officer's app fetches it (through the authenticated API, journaled)."""

    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    tenant_id: uuid.UUID
    force_id: uuid.UUID
    urgency: str
    escalation_level: int
    ordered_at: datetime
    expires_at: datetime
    camera_id: uuid.UUID
    camera_name: str | None
    site_name: str | None
    insee_code: str | None
    latitude: float | None
    longitude: float | None
    my_status: ResponderStatus | None


class DispatchReport(msgspec.Struct, frozen=True, kw_only=True):
    """A dispatch as the operator sees it: each officer's status and every attempt."""

    dispatch_id: uuid.UUID
    alert_id: uuid.UUID
    force_id: uuid.UUID
    urgency: str
    escalation_level: int
    ordered_at: datetime
    responders: list[ResponderState]
    attempts: list[Attempt]


class HealthAlarm(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: str
    detail: str
    raised_at: datetime
    last_seen_at: datetime
    occurrences: int
    cleared_at: datetime | None


class PushMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message for one device, as the sender needs it (the token is opened only here, in memory)."""

    delivery_id: uuid.UUID
    token: str
    platform: Platform
    alert_id: uuid.UUID
    ttl_s: int
    expires_at_epoch: int


class FcmError(StrEnum):
    """FCM outcomes the policy distinguishes, independent of firebase-admin's exception classes."""

    UNREGISTERED = "UNREGISTERED"
    SENDER_ID_MISMATCH = "SENDER_ID_MISMATCH"
    INVALID_TOKEN = "INVALID_TOKEN"  # INVALID_ARGUMENT that names the registration token
    INVALID_ARGUMENT = "INVALID_ARGUMENT"  # our payload: a bug, not the device's fault
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"
    TIMEOUT = "TIMEOUT"
    THIRD_PARTY_AUTH = "THIRD_PARTY_AUTH_ERROR"
    CREDENTIALS = "CREDENTIALS"  # our service account is refused (token grant or 401/403 on send)
    UNKNOWN = "UNKNOWN"


class SendOutcome(msgspec.Struct, frozen=True, kw_only=True):
    message_name: str | None = None
    error: FcmError | None = None
    http_status: int | None = None
    retry_after_s: float | None = None
    detail: str = ""
