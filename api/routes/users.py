"""Accounts and their memberships (roles in tenants); habilitation of CSU agents."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from identity.model import MembershipInput, TotpEnrolment, User, UserCreate, UserCreated, UserUpdate


class UserController(Controller):
    path = "/users"
    tags = ["identity"]

    @get("/", summary="List accounts with a role in the caller's scope")
    async def list_users(
        self, principal: PrincipalDep, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[User]:
        rows = await services.accounts.list_users(principal, decode_cursor(cursor), limit + 1)
        return page_of(rows, limit, lambda u: u.id)

    @post("/", summary="Create an account with one membership")
    async def create_user(
        self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[UserCreate]
    ) -> UserCreated:
        return await services.accounts.create_user(principal, data)

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


class MeController(Controller):
    path = "/me"
    tags = ["identity"]

    @get("/", summary="The caller's account")
    async def me(self, principal: PrincipalDep, services: ServicesDep) -> User:
        return await services.accounts.me(principal)

    @post("/totp", summary="Enrol a new second factor (shown once)")
    async def enrol_totp(self, principal: PrincipalDep, services: ServicesDep) -> TotpEnrolment:
        return await services.accounts.enrol_totp(principal)


ROUTES = [UserController, MembershipController, MeController]
