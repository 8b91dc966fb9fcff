"""Accounts, memberships, sessions and the tokens handed to clients."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
# A password a person chooses for themselves.
NewPassword = Annotated[str, msgspec.Meta(min_length=12, max_length=1024)]
TotpCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
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
    # No password yet: the account waits for its holder to use an enrolment link (forced re-enrolment).
    enrolment_pending: bool
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
    second_factor_failures: int = 0


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
    code: TotpCode


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
    """An invitation to a role: no password, no second factor; the person sets both through the enrolment link."""

    email: Email
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    membership: MembershipInput
    habilitation: HabilitationInput | None = None


class UserUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType = msgspec.UNSET
    status: Literal["active", "disabled"] | msgspec.UnsetType = msgspec.UNSET
    habilitation: HabilitationInput | msgspec.UnsetType = msgspec.UNSET


class Invitation(msgspec.Struct, frozen=True, kw_only=True):
    """A pending offer of a role in a tenant to whoever holds an e-mail address, as its administrators see it: the
    same whether or not an account with that address already exists (elsewhere or nowhere)."""

    id: uuid.UUID
    email: str
    display_name: str
    tenant_id: uuid.UUID
    role: str
    force_id: uuid.UUID | None
    status: Literal["pending", "accepted", "revoked", "expired"]
    invited_by: uuid.UUID
    created_at: datetime
    expires_at: datetime


class EnrolmentLink(msgspec.Struct, frozen=True, kw_only=True):
    """Shown once, to be handed to the person: the token opens the enrolment page (in the link's fragment, which no
    server receives) and works once, until `expires_at`. It carries no secret of the account."""

    token: str
    link: str
    expires_at: datetime


class InvitationIssued(msgspec.Struct, frozen=True, kw_only=True):
    invitation: Invitation
    enrolment: EnrolmentLink


class ReenrolmentIssued(msgspec.Struct, frozen=True, kw_only=True):
    """The account's password and second factor are void and its sessions ended; the person sets new ones."""

    user_id: uuid.UUID
    enrolment: EnrolmentLink


class EnrolmentView(msgspec.Struct, frozen=True, kw_only=True):
    """What an enrolment link offers, shown to whoever holds it. `second_factor` is a fresh seed, drawn at each view
    (only the latest is accepted): the person scans it and proves it with a code."""

    purpose: Literal["invitation", "reenrolment"]
    email: str
    display_name: str
    tenant_name: str | None
    role: str | None
    expires_at: datetime
    second_factor: TotpEnrolment | None
    instructions: str


class EnrolmentRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The person's answer: their own new password and a code of the offered seed; when accepting an invitation with
    an account they already hold, that account's current password (and code, when it has a second factor)."""

    # A new password has at least 12 characters (checked by the service: an existing account's may be older).
    password: Password
    code: TotpCode | None = None


class EnrolmentCompleted(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    email: str
    status: Literal["enrolled"] = "enrolled"


class PasswordChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`code`: a current second-factor code, required when the account has a second factor."""

    current_password: Password
    new_password: NewPassword
    code: TotpCode | None = None


class SecondFactorReplacement(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Proof that the account holder is at the keyboard: the current password and, when the account has a second
    factor, a current code of it."""

    current_password: Password
    code: TotpCode | None = None
