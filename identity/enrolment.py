"""Enrolment: an invitation to a role, or a forced re-enrolment, issues a single-use, expiring link through which the
person sets their own password and second factor. No administrator ever chooses or sees a secret."""

from __future__ import annotations

import asyncio
import hashlib
import secrets as pysecrets
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from core.crypto import ENROLMENT_SEEDS, SecretBox
from core.db import Database
from core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, PermissionDenied
from core.ids import new_id
from core.settings import AuthSettings
from core.tenancy import HABILITATED_ROLES, SECOND_FACTOR_ROLES, Principal, Role, Scope, require_role
from identity import totp
from identity.administration import USER_ADMINS, USER_READERS, administered_user, check_grant
from identity.enrolment_repository import EnrolmentRepository
from identity.model import (
    Account,
    EnrolmentCompleted,
    EnrolmentLink,
    EnrolmentRequest,
    EnrolmentView,
    Invitation,
    InvitationIssued,
    ReenrolmentIssued,
    UserCreate,
)
from identity.passwords import hash_password
from identity.proof import REFUSED, HolderProof, MissHook
from identity.repository import IdentityRepository
from identity.sessions import PrincipalCache
from identity.throttle import SigninThrottle
from journal.service import JournalService

MIN_PASSWORD = 12
LINK_REFUSED = "unknown, used, revoked or expired enrolment link"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _now() -> datetime:
    return datetime.now(UTC)


def _live(link: asyncpg.Record | None) -> asyncpg.Record:
    if link is None or link["used_at"] is not None or link["revoked_at"] is not None or link["expires_at"] <= _now():
        raise AuthenticationFailed(LINK_REFUSED)
    return link


def _holder(
    user_id: uuid.UUID, link_id: uuid.UUID, role: str, tenant_id: uuid.UUID, department_id: uuid.UUID
) -> Principal:
    """The person acting through an enrolment link, as the journal names them (the link stands for a session)."""
    return Principal(
        user_id=user_id, session_id=link_id, role=Role(role), home_tenant_id=tenant_id, department_id=department_id,
        scope=Scope(frozenset({tenant_id})),
    )


class EnrolmentService:
    """Invitations and re-enrolment on the administrators' side; the link's page on the person's side."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        settings: AuthSettings,
        principals: PrincipalCache,
        journal: JournalService | None = None,
        repository: IdentityRepository | None = None,
        enrolments: EnrolmentRepository | None = None,
        throttle: SigninThrottle | None = None,
        *,
        console_url: str,
    ) -> None:
        self._db = db
        self._secrets = secrets
        self._settings = settings
        self._console_url = console_url
        self._principals = principals
        self._journal = journal or JournalService()
        self._repo = repository or IdentityRepository()
        self._links = enrolments or EnrolmentRepository()
        self._throttle = throttle or SigninThrottle(db, settings, self._repo)
        self._proof = HolderProof(db, secrets, self._throttle, self._repo)

    # --- administrators
    async def invite(self, principal: Principal, data: UserCreate) -> InvitationIssued:
        """Offer a role in a tenant to whoever holds an e-mail address (POST /users).

        The answer is the same whether an account with that address exists in another tenant, in none, or is being
        invited elsewhere: an invitation and a link, nothing read from any account. Whether the link creates an
        account or adds the role to an existing one is decided only when the person uses it, and only after they
        prove they hold that account (its password and second factor); a new account is created by the person, with
        their own credentials. So an administrator learns nothing about accounts outside their scope, and the
        person's consent is what joins a tenant. The one refusal that names an account (409) concerns an account
        already holding this role in this tenant, which the administrator already sees in GET /users."""
        require_role(principal, USER_ADMINS, "invite users")
        role, membership, hab = Role(data.membership.role), data.membership, data.habilitation
        if role in HABILITATED_ROLES and hab is None:
            raise InvalidInput(f"a {role.value} needs an habilitation (agrément)", field="habilitation")
        token, expires = pysecrets.token_urlsafe(32), _now() + timedelta(seconds=self._settings.enrolment_ttl_s)
        async with self._db.transaction(principal) as conn:
            await check_grant(self._repo, conn, principal, membership.tenant_id, role, membership.force_id)
            if await self._links.holds_role(conn, email=data.email, tenant_id=membership.tenant_id, role=role.value):
                raise Conflict("an account with this e-mail already holds this role in this tenant")
            await self._links.revoke_pending_invitations(
                conn, email=data.email, tenant_id=membership.tenant_id, role=role.value
            )
            invitation = await self._links.insert_invitation(
                conn,
                {
                    "id": new_id(),
                    "tenant_id": membership.tenant_id,
                    "email": data.email,
                    "display_name": data.display_name,
                    "role": role.value,
                    "force_id": membership.force_id,
                    "agrement_number": hab.agrement_number if hab else None,
                    "enquiry_date": hab.enquiry_date if hab else None,
                    "habilitation_expires_on": hab.expires_on if hab else None,
                    "training_date": hab.training_date if hab else None,
                    "invited_by": principal.user_id,
                    "expires_at": expires,
                },
            )
            await self._links.insert_link(
                conn,
                {
                    "id": new_id(), "token_hash": _digest(token), "purpose": "invitation",
                    "invitation_id": invitation.id, "user_id": None, "email": data.email,
                    "issued_by": principal.user_id, "expires_at": expires,
                },
            )
            await self._journal.note(
                conn, principal, "user.invite", ("invitation", invitation.id), tenant_id=membership.tenant_id,
                email=data.email, role=role.value,
            )
        return InvitationIssued(invitation=invitation, enrolment=self._link_of(token, expires))

    async def list_invitations(self, principal: Principal, after: uuid.UUID | None, limit: int) -> list[Invitation]:
        require_role(principal, USER_READERS, "list invitations")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._links.invitations(conn, after, limit)

    async def revoke_invitation(self, principal: Principal, invitation_id: uuid.UUID) -> None:
        """Withdraw a pending invitation: its link stops working."""
        require_role(principal, USER_ADMINS, "revoke invitations")
        async with self._db.transaction(principal) as conn:
            invitation = await self._links.invitation(conn, invitation_id)
            if invitation is None:
                raise NotFound("no such invitation")
            if invitation.status == "accepted":
                raise Conflict("this invitation was accepted: withdraw the role instead")
            await self._links.revoke_invitation(conn, invitation_id)
            await self._journal.note(
                conn, principal, "invitation.revoke", ("invitation", invitation_id), tenant_id=invitation.tenant_id
            )

    async def force_reenrolment(self, principal: Principal, user_id: uuid.UUID) -> ReenrolmentIssued:
        """Void the account's password and second factor, end its sessions and earlier links, and issue a link for
        the holder to set new ones. The administrator receives the link, never a secret; completing it is journaled
        with the address it came from, and the holder, locked out until then, notices anyone else using it."""
        require_role(principal, USER_ADMINS, "force re-enrolment")
        token, expires = pysecrets.token_urlsafe(32), _now() + timedelta(seconds=self._settings.enrolment_ttl_s)
        async with self._db.transaction(principal) as conn:
            user = await administered_user(self._repo, conn, principal, user_id)
            await self._links.revoke_links_of(conn, user_id)
            await self._repo.update_user(
                conn, user_id, {"password_hash": None, "totp_secret_sealed": None, "totp_last_step": None}
            )
            await self._repo.revoke_user_sessions(conn, user_id, "re-enrolment forced")
            await self._links.insert_link(
                conn,
                {
                    "id": new_id(), "token_hash": _digest(token), "purpose": "reenrolment", "invitation_id": None,
                    "user_id": user_id, "email": user.email, "issued_by": principal.user_id, "expires_at": expires,
                },
            )
            await self._journal.note(
                conn, principal, "user.reenrol", ("user", user_id), tenant_id=user.memberships[0].tenant_id
            )
        self._principals.clear()
        return ReenrolmentIssued(user_id=user_id, enrolment=self._link_of(token, expires))

    def _link_of(self, token: str, expires: datetime) -> EnrolmentLink:
        # The console's enrolment page reads the token from the fragment: browsers never send it to a server.
        link = f"{self._console_url}#/inscription?jeton={token}"
        return EnrolmentLink(token=token, link=link, expires_at=expires)

    # --- the person holding the link
    async def view(self, token: str, *, client_ip: str) -> EnrolmentView:
        """What the link offers, with a fresh second-factor seed when one is needed: each view draws a new one and
        only the latest is accepted, so a view by anyone else before the person's own is worthless."""
        await self._throttle.admit(client_ip)
        async with self._db.anonymous() as conn:
            link = _live(await self._links.link(conn, _digest(token), lock=True))
            if link["purpose"] == "invitation":
                offer = await self._live_offer(conn, link)
                needs = Role(offer["role"]) in SECOND_FACTOR_ROLES
                display_name, tenant_name, role = offer["display_name"], offer["tenant_name"], offer["role"]
            else:
                account = await self._repo.account(conn, link["user_id"])
                assert account is not None
                needs = await self._needs_second_factor(conn, account.id)
                display_name, tenant_name, role = account.display_name, None, None
            seed = totp.new_seed() if needs else None
            await self._links.offer_seed(
                conn, link["id"],
                None if seed is None else self._secrets.seal(seed.encode(), column=ENROLMENT_SEEDS, row_id=link["id"]),
            )
        return EnrolmentView(
            purpose=link["purpose"],
            email=link["email"],
            display_name=display_name,
            tenant_name=tenant_name,
            role=role,
            expires_at=link["expires_at"],
            second_factor=None if seed is None else totp.enrolment(
                seed, email=link["email"], issuer=self._settings.totp_issuer
            ),
            instructions=_instructions(link["purpose"], needs),
        )

    async def complete(self, token: str, request: EnrolmentRequest, *, client_ip: str) -> EnrolmentCompleted:
        """Set the credentials the link offers. Wrong passwords or codes count against the link (burned after a few),
        the platform's budget and, for an existing account, that account's own counters."""
        await self._throttle.admit(client_ip)
        if len(request.password) < MIN_PASSWORD:
            raise InvalidInput(f"a password has at least {MIN_PASSWORD} characters", field="password")
        async with self._db.anonymous(readonly=True) as conn:
            link = _live(await self._links.link(conn, _digest(token)))
            invitation = link["purpose"] == "invitation"
            offer = await self._live_offer(conn, link) if invitation else None
            if invitation:
                account = await self._repo.account_by_email(conn, link["email"])
                needs = offer is not None and Role(offer["role"]) in SECOND_FACTOR_ROLES
            else:
                account = await self._repo.account(conn, link["user_id"])
                needs = await self._needs_second_factor(conn, link["user_id"])
        seed = None
        if link["offered_totp_sealed"] is not None:
            seed = self._secrets.open(link["offered_totp_sealed"], column=ENROLMENT_SEEDS, row_id=link["id"]).decode()
        if needs and seed is None:
            raise InvalidInput("open the link first: its second factor must be scanned", field="code")
        if seed is not None and request.code is None:
            raise InvalidInput("the code of the offered second factor is required", field="code")

        async def miss(conn: asyncpg.Connection) -> bool:
            return await self._links.link_missed(conn, link["id"], self._settings.enrolment_max_misses)

        if offer is None:
            assert account is not None
            return await self._reenrol(link, account, request, seed, miss)
        if account is None:
            return await self._create_account(link, offer, request, seed, miss)
        return await self._join(link, offer, account, request, seed, miss)

    async def _reenrol(
        self, link: asyncpg.Record, account: Account, request: EnrolmentRequest, seed: str | None, miss: MissHook
    ) -> EnrolmentCompleted:
        step = await self._offered_step(seed, request.code, miss)
        password_hash = await asyncio.to_thread(hash_password, request.password)
        async with self._db.anonymous_statement() as conn:
            held = await self._repo.memberships_of(conn, account.id)
        if not held:
            raise PermissionDenied("this account has no role anywhere")
        home = held[0]
        async with self._db.for_tenants([home.tenant_id]) as conn:
            if not await self._links.use_link(conn, link["id"]):
                raise AuthenticationFailed(LINK_REFUSED)
            await self._repo.update_user(conn, account.id, {
                "password_hash": password_hash,
                "totp_secret_sealed": None if seed is None else totp.seal(self._secrets, seed, account.id),
                "totp_last_step": step,
            })
            await self._repo.record_success(conn, account.id)
            await self._repo.revoke_user_sessions(conn, account.id, "re-enrolled")
            holder = _holder(account.id, link["id"], home.role, home.tenant_id, home.department_id)
            await self._journal.note(
                conn, holder, "user.reenrol_complete", ("user", account.id), tenant_id=home.tenant_id,
                issued_by=str(link["issued_by"]),
            )
        self._principals.clear()
        return EnrolmentCompleted(user_id=account.id, email=account.email)

    async def _create_account(
        self, link: asyncpg.Record, offer: asyncpg.Record, request: EnrolmentRequest, seed: str | None, miss: MissHook
    ) -> EnrolmentCompleted:
        step = await self._offered_step(seed, request.code, miss)
        password_hash = await asyncio.to_thread(hash_password, request.password)
        user_id = new_id()
        async with self._db.for_tenants([offer["tenant_id"]]) as conn:
            terms = await self._live_terms(conn, link, offer)
            try:
                await self._repo.insert_user(conn, {
                    "id": user_id,
                    "department_id": offer["department_id"],
                    "email": link["email"],
                    "display_name": terms["display_name"],
                    "password_hash": password_hash,
                    "totp_secret_sealed": None if seed is None else totp.seal(self._secrets, seed, user_id),
                    "totp_last_step": step,
                    "agrement_number": terms["agrement_number"],
                    "enquiry_date": terms["enquiry_date"],
                    "habilitation_expires_on": terms["habilitation_expires_on"],
                    "training_date": terms["training_date"],
                })
            except asyncpg.UniqueViolationError as exc:
                raise Conflict("an account with this e-mail was created meanwhile: use the link again") from exc
            await self._accept(conn, link, offer, terms, user_id)
        return EnrolmentCompleted(user_id=user_id, email=link["email"])

    async def _join(
        self,
        link: asyncpg.Record,
        offer: asyncpg.Record,
        account: Account,
        request: EnrolmentRequest,
        seed: str | None,
        miss: MissHook,
    ) -> EnrolmentCompleted:
        """An account with this e-mail exists: only its holder may accept, with its current credentials; an account
        without a second factor enrols the offered one when the role needs it."""
        await self._proof.check(account, request.password, request.code, on_miss=miss)
        enrol = account.totp_secret_sealed is None and seed is not None
        step = await self._offered_step(seed, request.code, miss) if enrol else None
        if account.status != "active":
            raise AuthenticationFailed("this account is disabled")
        async with self._db.for_tenants([offer["tenant_id"]]) as conn:
            terms = await self._live_terms(conn, link, offer)
            if enrol:
                assert seed is not None
                await self._repo.update_user(conn, account.id, {
                    "totp_secret_sealed": totp.seal(self._secrets, seed, account.id), "totp_last_step": step
                })
            if terms["habilitation_expires_on"] is not None:
                await self._repo.update_user(conn, account.id, {
                    "agrement_number": terms["agrement_number"],
                    "enquiry_date": terms["enquiry_date"],
                    "habilitation_expires_on": terms["habilitation_expires_on"],
                    "training_date": terms["training_date"],
                })
            await self._repo.record_success(conn, account.id)
            await self._accept(conn, link, offer, terms, account.id)
        self._principals.clear()
        return EnrolmentCompleted(user_id=account.id, email=account.email)

    async def _accept(
        self, conn: asyncpg.Connection, link: asyncpg.Record, offer: asyncpg.Record, terms: asyncpg.Record,
        user_id: uuid.UUID,
    ) -> None:
        await self._links.grant(conn, {
            "id": new_id(), "tenant_id": terms["tenant_id"], "user_id": user_id, "role": terms["role"],
            "force_id": terms["force_id"],
        })
        await self._links.accept_invitation(conn, terms["id"], user_id)
        holder = _holder(user_id, link["id"], terms["role"], terms["tenant_id"], offer["department_id"])
        await self._journal.note(
            conn, holder, "invitation.accept", ("invitation", terms["id"]), tenant_id=terms["tenant_id"],
            user_id=str(user_id), role=terms["role"], invited_by=str(terms["invited_by"]),
        )

    async def _live_offer(self, conn: asyncpg.Connection, link: asyncpg.Record) -> asyncpg.Record:
        offer = await self._links.offered_invitation(conn, link["invitation_id"])
        if offer is None or offer["accepted_at"] is not None or offer["revoked_at"] is not None:
            raise AuthenticationFailed(LINK_REFUSED)
        return offer

    async def _live_terms(
        self, conn: asyncpg.Connection, link: asyncpg.Record, offer: asyncpg.Record
    ) -> asyncpg.Record:
        """The invitation, locked, still pending; and the link used, once (a concurrent use finds it gone)."""
        terms = await self._links.invitation_terms(conn, offer["id"])
        if terms is None or terms["accepted_at"] is not None or terms["revoked_at"] is not None:
            raise AuthenticationFailed(LINK_REFUSED)
        if not await self._links.use_link(conn, link["id"]):
            raise AuthenticationFailed(LINK_REFUSED)
        return terms

    async def _offered_step(self, seed: str | None, code: str | None, miss: MissHook) -> int | None:
        """The time step of a code proving the offered seed (None when none is offered); a miss is recorded."""
        if seed is None:
            return None
        step = totp.seed_step(seed, code or "")
        if step is None:
            async with self._db.anonymous() as conn:
                burned = await miss(conn)
                await self._throttle.password_failed(conn, None)
            raise AuthenticationFailed(REFUSED + ("; this link is now void" if burned else ""))
        return step

    async def _needs_second_factor(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> bool:
        return any(Role(m.role) in SECOND_FACTOR_ROLES for m in await self._repo.memberships_of(conn, user_id))


def _instructions(purpose: str, second_factor: bool) -> str:
    scan = " Scan the second factor below into an authenticator app and give its current code." if second_factor else ""
    if purpose == "reenrolment":
        return f"Choose a new password of at least {MIN_PASSWORD} characters.{scan}"
    return (
        f"New to Vigie: choose a password of at least {MIN_PASSWORD} characters.{scan} Already holding a Vigie "
        "account with this e-mail: give its current password, and a current code of its second factor if it has "
        "one (otherwise of the one below); the role is added to that account."
    )
