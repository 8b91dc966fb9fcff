"""SQL of the OAuth server for native apps: registered clients, one-use authorization codes, refresh lookups."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg


class OAuthRepository:
    """Identity tables only (no tenant rows): every call runs in an anonymous transaction of the runtime role."""

    async def client(self, conn: asyncpg.Connection, client_id: str) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT client_id, name, redirect_uris, dpop_bound FROM oauth_clients WHERE client_id = $1", client_id
        )

    async def insert_code(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, code_challenge, "
            "code_challenge_method, user_id, membership_id, amr, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
            values["code_hash"],
            values["client_id"],
            values["redirect_uri"],
            values["code_challenge"],
            values["code_challenge_method"],
            values["user_id"],
            values["membership_id"],
            values["amr"],
            values["expires_at"],
        )

    async def take_code(self, conn: asyncpg.Connection, code_hash: bytes) -> asyncpg.Record | None:
        """Mark the code used whatever happens next, and say whether it had been used before: a code is tried
        once, so a stolen one cannot be brute-forced against its PKCE challenge."""
        return await conn.fetchrow(
            "WITH before AS (SELECT code_hash, used_at FROM authorization_codes WHERE code_hash = $1 FOR UPDATE) "
            "UPDATE authorization_codes c SET used_at = coalesce(c.used_at, now()) FROM before "
            "WHERE c.code_hash = before.code_hash RETURNING c.client_id, c.redirect_uri, c.code_challenge, "
            "c.code_challenge_method, c.user_id, c.membership_id, c.amr, c.expires_at, c.session_id, "
            "before.used_at AS used_before",
            code_hash,
        )

    async def note_code_session(self, conn: asyncpg.Connection, code_hash: bytes, session_id: uuid.UUID) -> None:
        await conn.execute("UPDATE authorization_codes SET session_id = $2 WHERE code_hash = $1", code_hash, session_id)

    async def revoke_session(self, conn: asyncpg.Connection, session_id: uuid.UUID, reason: str) -> None:
        await conn.execute(
            "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
            session_id,
            reason,
        )

    async def prune_codes(self, conn: asyncpg.Connection, before: datetime) -> None:
        await conn.execute("DELETE FROM authorization_codes WHERE expires_at < $1", before)

    async def refresh_binding(self, conn: asyncpg.Connection, token_hash: bytes) -> asyncpg.Record | None:
        """The client and key a refresh token's session is bound to, read without using the token."""
        return await conn.fetchrow(
            "SELECT s.id AS session_id, s.client_id, s.dpop_jkt FROM refresh_tokens r "
            "JOIN auth_sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
            token_hash,
        )
