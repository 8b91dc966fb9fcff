"""Federated sign-in decided locally: which account an external identity opens (a link a department admin recorded,
by issuer and subject, never by e-mail), whether the identity provider's second factor counts (a department
setting, off by default), and the department admin's journaled use cases that record both."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import asyncpg
import msgspec

from core.db import Database
from core.errors import AuthenticationFailed, Conflict, NotFound
from core.ids import new_id
from core.logging import get_logger
from core.tenancy import DEPARTMENT_ADMINS, Principal, require_role
from identity.administration import administered_user
from identity.federation_repository import FederationRepository
from identity.model import SecondFactorChallenge, TokenPair
from identity.oidc import FederatedIdentity
from identity.repository import IdentityRepository
from identity.sessions import SessionService
from journal.service import JournalService

log = get_logger(__name__)
Issuer = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"^https?://[^\s]+$")]
Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^\s\x00]+$")]


class ExternalIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """An identity at an external IdP that opens one local account."""

    id: uuid.UUID
    issuer: str
    subject: str
    user_id: uuid.UUID
    linked_by: uuid.UUID
    linked_at: datetime


class ExternalIdentityLink(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The IdP's issuer (as in its discovery document) and the person's stable subject there (`sub`)."""

    issuer: Issuer
    subject: Subject


class FederationSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`trust_idp_mfa`: an ID token whose `amr` names a second factor (mfa, otp, hwk) stands in for Vigie's own
    second factor, for this department's accounts. Off by default: it is the IdP's claim about its own checks."""

    trust_idp_mfa: bool


def _identity(row: asyncpg.Record) -> ExternalIdentity:
    return ExternalIdentity(
        id=row["id"], issuer=row["issuer"], subject=row["subject"], user_id=row["user_id"],
        linked_by=row["linked_by"], linked_at=row["created_at"],
    )


class FederationService:
    """Links and the department's setting are department admins' business; sign-in reads them anonymously."""

    def __init__(
        self,
        db: Database,
        sessions: SessionService,
        journal: JournalService,
        repository: IdentityRepository | None = None,
        links: FederationRepository | None = None,
    ) -> None:
        self._db = db
        self._sessions = sessions
        self._journal = journal
        self._repo = repository or IdentityRepository()
        self._links = links or FederationRepository()

    async def sign_in(
        self, identity: FederatedIdentity, *, client_ip: str, user_agent: str
    ) -> TokenPair | SecondFactorChallenge:
        """Only an identity linked to an account opens it; the account's state, lock and habilitation are checked
        as for a password sign-in, and its role's second factor is asked unless the department trusts the IdP's."""
        async with self._db.anonymous(readonly=True) as conn:
            user_id = await self._links.linked_account(conn, identity.issuer, identity.subject)
            trusted = user_id is not None and await self._links.trusts_idp_second_factor(conn, user_id)
        if user_id is None:
            log.info("oidc.unlinked_identity", issuer=identity.issuer, subject=identity.subject)
            raise AuthenticationFailed(
                f"no account is linked to this identity (subject {identity.subject!r} at {identity.issuer}): "
                "a department administrator must link it first"
            )
        return await self._sessions.open_federated_session(
            user_id, list(identity.amr), idp_second_factor_counts=trusted, client_ip=client_ip, user_agent=user_agent
        )

    # --- links, recorded by a department admin
    async def links(self, principal: Principal, user_id: uuid.UUID) -> list[ExternalIdentity]:
        require_role(principal, DEPARTMENT_ADMINS, "read external identities")
        async with self._db.transaction(principal, readonly=True) as conn:
            await administered_user(self._repo, conn, principal, user_id)
            return [_identity(r) for r in await self._links.links_of(conn, user_id)]

    async def link(self, principal: Principal, user_id: uuid.UUID, data: ExternalIdentityLink) -> ExternalIdentity:
        """Link an external identity to an account the admin administers wholly (an identity opens one account)."""
        require_role(principal, DEPARTMENT_ADMINS, "link external identities")
        async with self._db.transaction(principal) as conn:
            user = await administered_user(self._repo, conn, principal, user_id)
            row = await self._links.insert_link(conn, new_id(), data.issuer, data.subject, user_id, principal.user_id)
            if row is None:
                raise Conflict("this external identity is already linked to an account")
            await self._journal.note(
                conn, principal, "user.external_identity.link", ("user", user_id),
                tenant_id=user.memberships[0].tenant_id, issuer=data.issuer, subject=data.subject,
            )
        return _identity(row)

    async def unlink(self, principal: Principal, user_id: uuid.UUID, issuer: str, subject: str) -> None:
        require_role(principal, DEPARTMENT_ADMINS, "unlink external identities")
        async with self._db.transaction(principal) as conn:
            user = await administered_user(self._repo, conn, principal, user_id)
            removed = await self._links.delete_link(conn, user_id, issuer, subject)
            if removed is None:
                raise NotFound("no such external identity on this account")
            await self._journal.note(
                conn, principal, "user.external_identity.unlink", ("user", user_id),
                tenant_id=user.memberships[0].tenant_id, issuer=issuer, subject=subject,
            )

    # --- the department's trust in its IdP's second factor
    async def settings(self, principal: Principal) -> FederationSettings:
        require_role(principal, DEPARTMENT_ADMINS, "read the federation settings")
        async with self._db.transaction(principal, readonly=True) as conn:
            trust = await self._links.department_setting(conn, principal.department_id)
        if trust is None:
            raise NotFound("no such department")
        return FederationSettings(trust_idp_mfa=trust)

    async def set_settings(self, principal: Principal, data: FederationSettings) -> FederationSettings:
        require_role(principal, DEPARTMENT_ADMINS, "change the federation settings")
        async with self._db.transaction(principal) as conn:
            # The department row has no tenant (no row-level security): the statement names the caller's own.
            await self._links.set_department_setting(conn, principal.department_id, data.trust_idp_mfa)
            await self._journal.note(
                conn, principal, "department.federation", ("department", principal.department_id),
                tenant_id=principal.home_tenant_id, trust_idp_mfa=data.trust_idp_mfa,
            )
        return data
