"""SQL of federated sign-in: external identities linked to accounts, the department's trust in its identity
provider's second factor, and the OIDC sign-ins in flight."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

_LINK = "id, issuer, subject, user_id, linked_by, created_at"


class FederationRepository:
    """Identity tables (no tenant rows); which account an administrator may touch is decided through the
    memberships visible in their scope (identity.repository.visible_user) before these run."""

    # --- links (issuer, subject) -> account
    async def linked_account(self, conn: asyncpg.Connection, issuer: str, subject: str) -> uuid.UUID | None:
        user_id = await conn.fetchval(
            "SELECT user_id FROM external_identities WHERE issuer = $1 AND subject = $2", issuer, subject
        )
        return None if user_id is None else uuid.UUID(str(user_id))

    async def links_of(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> list[asyncpg.Record]:
        return list(
            await conn.fetch(f"SELECT {_LINK} FROM external_identities WHERE user_id = $1 ORDER BY created_at", user_id)
        )

    async def insert_link(
        self,
        conn: asyncpg.Connection,
        link_id: uuid.UUID,
        issuer: str,
        subject: str,
        user_id: uuid.UUID,
        linked_by: uuid.UUID,
    ) -> asyncpg.Record | None:
        """None when the identity is already linked (to this account or another)."""
        return await conn.fetchrow(
            f"INSERT INTO external_identities (id, issuer, subject, user_id, linked_by) VALUES ($1,$2,$3,$4,$5) "
            f"ON CONFLICT (issuer, subject) DO NOTHING RETURNING {_LINK}",
            link_id,
            issuer,
            subject,
            user_id,
            linked_by,
        )

    async def delete_link(
        self, conn: asyncpg.Connection, user_id: uuid.UUID, issuer: str, subject: str
    ) -> uuid.UUID | None:
        link_id = await conn.fetchval(
            "DELETE FROM external_identities WHERE user_id = $1 AND issuer = $2 AND subject = $3 RETURNING id",
            user_id,
            issuer,
            subject,
        )
        return None if link_id is None else uuid.UUID(str(link_id))

    # --- the department's setting
    async def trusts_idp_second_factor(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> bool:
        """Whether the account's department lets its identity provider's second factor stand in for Vigie's."""
        return bool(
            await conn.fetchval(
                "SELECT d.oidc_trust_idp_mfa FROM users u JOIN departments d ON d.id = u.department_id "
                "WHERE u.id = $1",
                user_id,
            )
        )

    async def department_setting(self, conn: asyncpg.Connection, department_id: uuid.UUID) -> bool | None:
        value = await conn.fetchval("SELECT oidc_trust_idp_mfa FROM departments WHERE id = $1", department_id)
        return None if value is None else bool(value)

    async def set_department_setting(self, conn: asyncpg.Connection, department_id: uuid.UUID, trust: bool) -> None:
        await conn.execute("UPDATE departments SET oidc_trust_idp_mfa = $2 WHERE id = $1", department_id, trust)

    # --- OIDC sign-ins in flight
    async def insert_flow(
        self,
        conn: asyncpg.Connection,
        *,
        state: str,
        nonce: str,
        verifier: str,
        browser_hash: bytes,
        expires_at: datetime,
    ) -> None:
        await conn.execute(
            "INSERT INTO oidc_flows (state, nonce, code_verifier, browser_hash, expires_at) VALUES ($1,$2,$3,$4,$5)",
            state,
            nonce,
            verifier,
            browser_hash,
            expires_at,
        )

    async def take_flow(self, conn: asyncpg.Connection, state: str, browser_hash: bytes) -> asyncpg.Record | None:
        """Use a flow once, and only from the browser that started it: another browser (no cookie, or another one)
        neither finishes nor burns it."""
        return await conn.fetchrow(
            "UPDATE oidc_flows SET used_at = now() WHERE state = $1 AND browser_hash = $2 AND used_at IS NULL "
            "AND expires_at > now() RETURNING nonce, code_verifier",
            state,
            browser_hash,
        )

    async def pending_flows(self, conn: asyncpg.Connection) -> int:
        return int(await conn.fetchval("SELECT count(*) FROM oidc_flows WHERE used_at IS NULL AND expires_at > now()"))

    async def prune_flows(self, conn: asyncpg.Connection, before: datetime) -> int:
        """Abandoned and finished flows, once expired: nothing in them is needed any more."""
        result = await conn.execute("DELETE FROM oidc_flows WHERE expires_at < $1", before)
        return int(result.split()[-1])
