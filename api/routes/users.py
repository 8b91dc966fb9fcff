"""Accounts and their memberships (roles in tenants), habilitation of CSU agents, invitations and re-enrolment."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from identity.model import (
    Invitation,
    InvitationIssued,
    MembershipInput,
    ReenrolmentIssued,
    User,
    UserCreate,
    UserUpdate,
)


class UserController(Controller):
    path = "/users"
    tags = ["identity"]

    @get("/", summary="List accounts with a role in the caller's scope")
    async def list_users(
        self, principal: PrincipalDep, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[User]:
        rows = await services.accounts.list_users(principal, decode_cursor(cursor), limit + 1)
        return page_of(rows, limit, lambda u: u.id)

    @post(
        "/",
        summary="Invite a person to a role: an invitation and a single-use enrolment link, never a password",
        description="The answer is the same whether or not an account with this e-mail exists elsewhere: the link "
        "creates the account, or adds the role to an existing one once its holder proves it is theirs.",
    )
    async def create_user(
        self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[UserCreate]
    ) -> InvitationIssued:
        return await services.enrolment.invite(principal, data)

    @get("/{user_id:uuid}", summary="Read an account")
    async def get_user(self, principal: PrincipalDep, services: ServicesDep, user_id: FromPath[uuid.UUID]) -> User:
        return await services.accounts.get_user(principal, user_id)

    @patch("/{user_id:uuid}", summary="Change an account (name, status, habilitation)")
    async def update_user(
        self, principal: PrincipalDep, services: ServicesDep, user_id: FromPath[uuid.UUID], data: JSONBody[UserUpdate]
    ) -> User:
        return await services.accounts.update_user(principal, user_id, data)

    @post("/{user_id:uuid}/unlock", summary="Unlock an account locked by failed sign-ins", status_code=204)
    async def unlock_user(self, principal: PrincipalDep, services: ServicesDep, user_id: FromPath[uuid.UUID]) -> None:
        await services.accounts.unlock_user(principal, user_id)

    @post("/{user_id:uuid}/revoke-sessions", summary="End every session of an account", status_code=204)
    async def revoke_sessions(
        self, principal: PrincipalDep, services: ServicesDep, user_id: FromPath[uuid.UUID]
    ) -> None:
        await services.sessions.revoke_sessions_of(principal, user_id)

    @post(
        "/{user_id:uuid}/reenrolment",
        summary="Force re-enrolment: the password and second factor are void, sessions end, the holder gets a link",
    )
    async def force_reenrolment(
        self, principal: PrincipalDep, services: ServicesDep, user_id: FromPath[uuid.UUID]
    ) -> ReenrolmentIssued:
        return await services.enrolment.force_reenrolment(principal, user_id)


class MembershipController(Controller):
    path = "/"
    tags = ["identity"]

    @post("/users/{user_id:uuid}/memberships", summary="Grant a role in a tenant to an account")
    async def add_membership(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[MembershipInput],
    ) -> User:
        return await services.accounts.add_membership(principal, user_id, data)

    @delete("/memberships/{membership_id:uuid}", summary="Withdraw a role")
    async def remove_membership(
        self, principal: PrincipalDep, services: ServicesDep, membership_id: FromPath[uuid.UUID]
    ) -> None:
        await services.accounts.remove_membership(principal, membership_id)


class InvitationController(Controller):
    path = "/invitations"
    tags = ["identity"]

    @get("/", summary="Invitations to roles in the caller's scope (pending, accepted, revoked, expired)")
    async def list_invitations(
        self, principal: PrincipalDep, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[Invitation]:
        rows = await services.enrolment.list_invitations(principal, decode_cursor(cursor), limit + 1)
        return page_of(rows, limit, lambda i: i.id)

    @delete("/{invitation_id:uuid}", summary="Revoke a pending invitation: its link stops working")
    async def revoke_invitation(
        self, principal: PrincipalDep, services: ServicesDep, invitation_id: FromPath[uuid.UUID]
    ) -> None:
        await services.enrolment.revoke_invitation(principal, invitation_id)


ROUTES = [UserController, MembershipController, InvitationController]
