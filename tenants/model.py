"""Tenancy entities as returned to callers (credentials never leave the service)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal, NewType

import msgspec

TenantId = NewType("TenantId", uuid.UUID)
SiteId = NewType("SiteId", uuid.UUID)
CameraId = NewType("CameraId", uuid.UUID)
ForceId = NewType("ForceId", uuid.UUID)


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    department_id: uuid.UUID
    kind: str
    name: str
    insee_code: str | None
    siren: str | None
    subscription_status: str
    live_supervision: bool
    municipal_police_opt_in: bool
    retention_days: int
    created_at: datetime
    updated_at: datetime


class Site(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    kind: str
    address: str | None
    insee_code: str
    latitude: float | None
    longitude: float | None
    created_at: datetime
    updated_at: datetime


class PrivacyMask(msgspec.Struct, frozen=True):
    """A polygon in normalised frame coordinates (0..1) hidden from every viewer (CSI L251-3): burnt into the
    recordings from the next segment on, into live view, snapshots and the detector's frames (docs/masks.md)."""

    points: list[tuple[float, float]]


class Camera(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    site_id: uuid.UUID
    name: str
    main_stream_url: str
    sub_stream_url: str | None
    has_credentials: bool
    insee_code: str
    latitude: float | None
    longitude: float | None
    status: str
    privacy_masks: list[PrivacyMask]
    created_at: datetime
    updated_at: datetime
    # The live gateway transcodes this camera to H.264 (an H.265 camera does not play in browsers): docs/live.md.
    live_transcode: bool = False
    # Bumped by the database at every change of privacy_masks; each recorded segment names the version it was made with.
    privacy_masks_version: int = 0
    # The camera's profile: its health is degraded well under this sub-stream frame rate or main-stream bitrate.
    expected_fps: float | None = None
    expected_bitrate_kbps: int | None = None


class AuthorisedEventType(msgspec.Struct, frozen=True, kw_only=True):
    event_type: str
    legal_basis: str
    valid_from: date
    valid_until: date


class OrderScan(msgspec.Struct, frozen=True, kw_only=True):
    """The filed scan of the prefectoral order (a PDF in the object store): its fingerprint and who filed it."""

    sha256: str
    size_bytes: int
    uploaded_at: datetime
    uploaded_by: uuid.UUID | None


class Authorisation(msgspec.Struct, frozen=True, kw_only=True):
    """A prefectoral authorisation as the department recorded it (the prefecture issues it, CSI L252-1)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    prefectoral_order_number: str
    purposes: list[str]
    max_retention_days: int
    min_retention_days: int | None
    valid_from: date
    valid_until: date
    authorised_viewers: str | None
    event_types: list[AuthorisedEventType]
    created_at: datetime
    recorded_by: uuid.UUID | None = None
    # False for one a tenant admin recorded before only the department could: it gives no legal basis.
    department_recorded: bool = True
    order_scan: OrderScan | None = None


class AuthorisationExpiry(msgspec.Struct, frozen=True, kw_only=True):
    """A camera whose authorisation ends within the window asked, or that has none today (it does not record)."""

    camera_id: uuid.UUID
    tenant_id: uuid.UUID
    camera_name: str
    # "unauthorised" (no current authorisation: no recording, no analytics) or "expiring".
    state: Literal["unauthorised", "expiring"]
    authorised_until: date | None
    days_left: int | None
    # The tightest renewal warning reached: 60, 30 or 7 days ahead (None when unauthorised).
    warning_days: int | None
    prefectoral_order_number: str | None


class Force(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    department_id: uuid.UUID
    kind: str
    name: str
    tenant_id: uuid.UUID | None
    phone: str | None
    communes: list[str]
    created_at: datetime


class Commune(msgspec.Struct, frozen=True):
    insee_code: str
    name: str
    department_code: str


# --- commands (request bodies); constraints here become 400s naming the field, before any rule runs
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Insee = Annotated[str, msgspec.Meta(min_length=5, max_length=5)]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
# Equal to the CHECKs on cameras (migration 0127).
ExpectedFps = Annotated[float, msgspec.Meta(gt=0, le=120)]
ExpectedBitrate = Annotated[int, msgspec.Meta(ge=16, le=100000)]
Days = Annotated[int, msgspec.Meta(ge=1, le=3650)]
TenantKind = Literal["commune", "epci"]
SubscriptionStatus = Literal["trial", "active", "suspended", "terminated"]
SiteKind = Literal["college", "school", "social", "administrative", "public_space", "transport", "sports", "other"]
# What an administrator may set; the others follow the camera's health (migration 0127).
CameraStatus = Literal["provisioning", "online", "offline", "disabled"]
ForceKind = Literal["police_nationale", "gendarmerie", "police_municipale", "sdis"]


class TenantCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: TenantKind
    name: Name
    insee_code: Insee | None = None
    siren: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{9}$")] | None = None
    subscription_status: SubscriptionStatus = "active"
    live_supervision: bool = False
    municipal_police_opt_in: bool = False
    retention_days: Days = 30


class TenantUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    subscription_status: SubscriptionStatus | msgspec.UnsetType = msgspec.UNSET
    live_supervision: bool | msgspec.UnsetType = msgspec.UNSET
    municipal_police_opt_in: bool | msgspec.UnsetType = msgspec.UNSET
    retention_days: Days | msgspec.UnsetType = msgspec.UNSET


class SiteCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    kind: SiteKind
    insee_code: Insee
    address: ShortText | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class SiteUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    kind: SiteKind | msgspec.UnsetType = msgspec.UNSET
    address: ShortText | msgspec.UnsetType | None = msgspec.UNSET
    latitude: Latitude | msgspec.UnsetType | None = msgspec.UNSET
    longitude: Longitude | msgspec.UnsetType | None = msgspec.UNSET


class CameraCredentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class MaskInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    points: Annotated[
        list[tuple[Annotated[float, msgspec.Meta(ge=0, le=1)], Annotated[float, msgspec.Meta(ge=0, le=1)]]],
        msgspec.Meta(min_length=3, max_length=64),
    ]


class CameraCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    site_id: uuid.UUID
    name: Name
    main_stream_url: Url
    sub_stream_url: Url | None = None
    credentials: CameraCredentials | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    privacy_masks: Annotated[list[MaskInput], msgspec.Meta(max_length=32)] = msgspec.field(default_factory=list)


class CameraUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Moves the camera to another site of the same tenant (its commune follows the site).
    site_id: uuid.UUID | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    main_stream_url: Url | msgspec.UnsetType = msgspec.UNSET
    sub_stream_url: Url | msgspec.UnsetType | None = msgspec.UNSET
    credentials: CameraCredentials | msgspec.UnsetType | None = msgspec.UNSET
    latitude: Latitude | msgspec.UnsetType | None = msgspec.UNSET
    longitude: Longitude | msgspec.UnsetType | None = msgspec.UNSET
    status: CameraStatus | msgspec.UnsetType = msgspec.UNSET
    privacy_masks: Annotated[list[MaskInput], msgspec.Meta(max_length=32)] | msgspec.UnsetType = msgspec.UNSET
    live_transcode: bool | msgspec.UnsetType = msgspec.UNSET
    expected_fps: ExpectedFps | msgspec.UnsetType | None = msgspec.UNSET
    expected_bitrate_kbps: ExpectedBitrate | msgspec.UnsetType | None = msgspec.UNSET


class EventTypeGrant(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    event_type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    legal_basis: ShortText
    valid_from: date
    valid_until: date


class AuthorisationCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    prefectoral_order_number: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    purposes: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=11)]
    max_retention_days: Days
    valid_from: date
    valid_until: date
    min_retention_days: Days | None = None
    authorised_viewers: ShortText | None = None
    event_types: Annotated[list[EventTypeGrant], msgspec.Meta(max_length=8)] = msgspec.field(default_factory=list)


class ForceCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: ForceKind
    name: Name
    communes: Annotated[list[Insee], msgspec.Meta(max_length=1000)]
    tenant_id: uuid.UUID | None = None
    phone: Annotated[str, msgspec.Meta(max_length=30)] | None = None


class ForceUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    phone: Annotated[str, msgspec.Meta(max_length=30)] | msgspec.UnsetType | None = msgspec.UNSET
    communes: Annotated[list[Insee], msgspec.Meta(max_length=1000)] | msgspec.UnsetType = msgspec.UNSET


def fields_set(update: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body sets (those left UNSET stay as they are)."""
    return {f: v for f in update.__struct_fields__ if (v := getattr(update, f)) is not msgspec.UNSET}


class CameraNetwork(msgspec.Struct, frozen=True, kw_only=True):
    """A network the department's cameras live in: a camera's stream must name an address inside one of them."""

    network: str
    label: str
    created_at: datetime


class CameraNetworkInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # CIDR notation; the longest IPv6 form is 43 characters.
    network: Annotated[str, msgspec.Meta(min_length=1, max_length=43)]
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CameraNetworksInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The department's whole list of camera networks, replacing the previous one."""

    networks: Annotated[list[CameraNetworkInput], msgspec.Meta(max_length=100)]
