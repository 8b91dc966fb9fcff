"""SQL of enrolment: invitations (tenant rows, read and written inside the tenant's scope) and enrolment links
(identity rows found by the hash of their token)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from identity.model import Invitation

_INVITATION = (
    "id, email, display_name, tenant_id, role, force_id, invited_by, created_at, expires_at, "
    "CASE WHEN accepted_at IS NOT NULL THEN 'accepted' WHEN revoked_at IS NOT NULL THEN 'revoked' "
    "WHEN expires_at <= now() THEN 'expired' ELSE 'pending' END AS status"
)


def _invitation(r: asyncpg.Record) -> Invitation:
    return Invitation(**dict(r))


class EnrolmentRepository:
    """Invitations and the single-use links through which people set their own credentials."""

    # --- invitations, inside the inviting administrator's scope (RLS)
    async def insert_invitation(self, conn: asyncpg.Connection, values: dict[str, Any]) -> Invitation:
        columns = list(values)
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        r = await conn.fetchrow(
            f"INSERT INTO invitations ({', '.join(columns)}) VALUES ({placeholders}) RETURNING {_INVITATION}",
            *values.values(),
        )
        assert r is not None
        return _invitation(r)

    async def invitations(self, conn: asyncpg.Connection, after: uuid.UUID | None, limit: int) -> list[Invitation]:
        rows = await conn.fetch(
            f"SELECT {_INVITATION} FROM invitations WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
            after,
            limit,
        )
        return [_invitation(r) for r in rows]

    async def invitation(self, conn: asyncpg.Connection, invitation_id: uuid.UUID) -> Invitation | None:
        r = await conn.fetchrow(f"SELECT {_INVITATION} FROM invitations WHERE id = $1", invitation_id)
        return None if r is None else _invitation(r)

    async def revoke_pending_invitations(
        self, conn: asyncpg.Connection, *, email: str, tenant_id: uuid.UUID, role: str
    ) -> None:
        """A new invitation to the same e-mail, tenant and role replaces a pending one: its links die with it."""
        await conn.execute(
            "WITH revoked AS (UPDATE invitations SET revoked_at = now() WHERE lower(email) = lower($1) "
            "AND tenant_id = $2 AND role = $3 AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id) "
            "UPDATE enrolments SET revoked_at = now() WHERE invitation_id IN (SELECT id FROM revoked) "
            "AND used_at IS NULL AND revoked_at IS NULL",
            email,
            tenant_id,
            role,
        )

    async def revoke_invitation(self, conn: asyncpg.Connection, invitation_id: uuid.UUID) -> None:
        await conn.execute("UPDATE invitations SET revoked_at = now() WHERE id = $1", invitation_id)
        await conn.execute(
            "UPDATE enrolments SET revoked_at = now() WHERE invitation_id = $1 AND used_at IS NULL "
            "AND revoked_at IS NULL",
            invitation_id,
        )

    async def holds_role(self, conn: asyncpg.Connection, *, email: str, tenant_id: uuid.UUID, role: str) -> bool:
        """Whether an account with this e-mail already holds the role in this tenant: memberships are read under the
        caller's scope (RLS), so this only ever tells what the caller can already see."""
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id "
                "WHERE lower(u.email) = lower($1) AND m.tenant_id = $2 AND m.role = $3)",
                email,
                tenant_id,
                role,
            )
        )

    async def invitation_terms(self, conn: asyncpg.Connection, invitation_id: uuid.UUID) -> asyncpg.Record | None:
        """What accepting grants, read inside the invitation's tenant, locked against a concurrent acceptance."""
        return await conn.fetchrow(
            "SELECT id, tenant_id, role, force_id, display_name, invited_by, agrement_number, enquiry_date, "
            "habilitation_expires_on, training_date, accepted_at, revoked_at, expires_at FROM invitations "
            "WHERE id = $1 FOR UPDATE",
            invitation_id,
        )

    async def grant(self, conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
        """The invitation's membership; False when the account already holds that role in that tenant."""
        return bool(
            await conn.fetchval(
                "INSERT INTO memberships (id, tenant_id, user_id, role, force_id) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (tenant_id, user_id, role) DO NOTHING RETURNING true",
                values["id"],
                values["tenant_id"],
                values["user_id"],
                values["role"],
                values["force_id"],
            )
        )

    async def accept_invitation(self, conn: asyncpg.Connection, invitation_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await conn.execute(
            "UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1", invitation_id, user_id
        )

    # --- an invitation as the holder of its link sees it, before any scope (sign-in function, migration 0081)
    async def offered_invitation(self, conn: asyncpg.Connection, invitation_id: uuid.UUID) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT id, tenant_id, department_id, tenant_name, display_name, role, force_id, expires_at, accepted_at, "
            "revoked_at FROM public.signin_invitation($1)",
            invitation_id,
        )

    # --- enrolment links
    async def insert_link(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO enrolments (id, token_hash, purpose, invitation_id, user_id, email, issued_by, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            values["id"],
            values["token_hash"],
            values["purpose"],
            values["invitation_id"],
            values["user_id"],
            values["email"],
            values["issued_by"],
            values["expires_at"],
        )

    async def link(self, conn: asyncpg.Connection, token_hash: bytes, *, lock: bool = False) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT id, purpose, invitation_id, user_id, email, issued_by, offered_totp_sealed, misses, expires_at, "
            f"used_at, revoked_at FROM enrolments WHERE token_hash = $1{' FOR UPDATE' if lock else ''}",
            token_hash,
        )

    async def offer_seed(self, conn: asyncpg.Connection, link_id: uuid.UUID, sealed: bytes | None) -> None:
        await conn.execute("UPDATE enrolments SET offered_totp_sealed = $2 WHERE id = $1", link_id, sealed)

    async def link_missed(self, conn: asyncpg.Connection, link_id: uuid.UUID, max_misses: int) -> bool:
        """One more wrong password or code through this link; True when that burned it."""
        return bool(
            await conn.fetchval(
                "UPDATE enrolments SET misses = misses + 1, "
                "revoked_at = CASE WHEN misses + 1 >= $2 THEN now() ELSE revoked_at END WHERE id = $1 "
                "RETURNING revoked_at IS NOT NULL",
                link_id,
                max_misses,
            )
        )

    async def use_link(self, conn: asyncpg.Connection, link_id: uuid.UUID) -> bool:
        """Mark the link used (its seed forgotten); False when another request used or revoked it first."""
        return bool(
            await conn.fetchval(
                "UPDATE enrolments SET used_at = now(), offered_totp_sealed = NULL WHERE id = $1 AND used_at IS NULL "
                "AND revoked_at IS NULL RETURNING true",
                link_id,
            )
        )

    async def revoke_links_of(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
        """A new forced re-enrolment voids the account's earlier links."""
        await conn.execute(
            "UPDATE enrolments SET revoked_at = now() WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
            user_id,
        )
