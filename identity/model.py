"""Accounts, memberships, sessions and the tokens handed to clients."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
RoleName = Literal["department_admin", "supervisor", "operator", "tenant_admin", "officer", "auditor", "finance"]


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    force_id: uuid.UUID | None


class Habilitation(msgspec.Struct, frozen=True, kw_only=True):
    """Agrément of a CSU agent: without a valid one, no access to images (CSI L132-14-1)."""

    agrement_number: str | None = None
    enquiry_date: date | None = None
    expires_on: date | None = None
    training_date: date | None = None


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    email: str
    display_name: str
    status: str
    totp_enabled: bool
    habilitation: Habilitation
    memberships: list[Membership]
    created_at: datetime


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """The stored account with its secrets; never leaves the identity service."""

    id: uuid.UUID
    department_id: uuid.UUID
    email: str
    display_name: str
    password_hash: str | None
    totp_secret_sealed: bytes | None
    totp_last_step: int | None
    status: str
    failed_attempts: int
    last_failed_at: datetime | None
    habilitation_expires_on: date | None


class SigninMembership(msgspec.Struct, frozen=True, kw_only=True):
    """A membership as sign-in reads it (through the sign-in functions, before any scope): role, tenant, department."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    force_id: uuid.UUID | None
    department_id: uuid.UUID


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A session with its account, its membership (None once withdrawn) and the tenants its scope draws on:
    `department_tenant_ids` for a membership without a force, `force_tenant_ids` for an officer's,
    `member_tenant_ids` (every tenant of the department, supervised or not) for the finance role's."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    revoked_at: datetime | None
    status: str
    display_name: str
    habilitation_expires_on: date | None
    membership: SigninMembership | None
    department_tenant_ids: frozenset[uuid.UUID]
    force_tenant_ids: frozenset[uuid.UUID]
    member_tenant_ids: frozenset[uuid.UUID]


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID
    role: str
    tenant_id: uuid.UUID
    token_type: str = "Bearer"


class SecondFactorChallenge(msgspec.Struct, frozen=True, kw_only=True):
    challenge: str
    status: str = "second_factor_required"


class LoginRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: Password
    membership_id: uuid.UUID | None = None


class TotpLoginRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    challenge: Annotated[str, msgspec.Meta(min_length=10, max_length=200)]
    code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]


class RefreshRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=10, max_length=200)]


class TotpEnrolment(msgspec.Struct, frozen=True, kw_only=True):
    provisioning_uri: str
    secret: str


class HabilitationInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    agrement_number: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    enquiry_date: date
    expires_on: date
    training_date: date | None = None


class MembershipInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tenant_id: uuid.UUID
    role: RoleName
    force_id: uuid.UUID | None = None


class UserCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    password: Annotated[str, msgspec.Meta(min_length=12, max_length=1024)] | None = None
    membership: MembershipInput
    habilitation: HabilitationInput | None = None


class UserUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType = msgspec.UNSET
    status: Literal["active", "disabled"] | msgspec.UnsetType = msgspec.UNSET
    habilitation: HabilitationInput | msgspec.UnsetType = msgspec.UNSET


class UserCreated(msgspec.Struct, frozen=True, kw_only=True):
    user: User
    # Shown once, for roles that must use a second factor.
    totp_enrolment: TotpEnrolment | None
