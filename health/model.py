"""Camera health as the API shows it: the current state, its transitions, availability per day."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

HealthState = Literal["online", "offline", "degraded", "frozen", "tampered", "unauthorised"]
# What a watcher reports of its own stream; "unauthorised" is derived from the authorisations, never reported.
SignalState = Literal["online", "offline", "degraded", "frozen", "tampered"]
Watcher = Literal["recorder", "detector"]


class HealthTransition(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    from_state: str | None
    to_state: str
    detail: str | None


class WatcherSignal(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    state: str
    detail: str | None
    since: datetime


class DayAvailability(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    observed_s: float
    available_s: float
    availability: float | None


class CameraHealth(msgspec.Struct, frozen=True, kw_only=True):
    """A camera's health now (None when no watcher has reported yet), what each watcher says, and its history."""

    camera_id: uuid.UUID
    tenant_id: uuid.UUID
    state: str | None
    since: datetime | None
    detail: str | None
    signals: list[WatcherSignal]
    history: list[HealthTransition]
    availability: list[DayAvailability]


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """A change of a camera's combined state, as the report function returned it."""

    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    from_state: str | None
    to_state: str
    detail: str | None


TicketState = Literal["open", "acknowledged", "resolved"]


class MaintenanceTicket(msgspec.Struct, frozen=True, kw_only=True):
    """A camera out of order beyond the threshold, for the tenant's maintainer and the department."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    camera_name: str
    state: str
    health_state: str
    detail: str | None
    outage_since: datetime
    opened_at: datetime
    restored_at: datetime | None
    notified_to: list[str]
    notified_at: datetime | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolution_note: str | None
    # From the outage's start to the camera's return (or to the ticket's resolution); None while unrepaired.
    time_to_repair_s: float | None


class TicketResolution(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
