"""SQL of identity: accounts, memberships, sessions, refresh tokens, challenges, keys, throttling."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from identity.model import Account, Habilitation, Membership, SessionRecord, SigninMembership, User

_ACCOUNT = (
    "id, department_id, email, display_name, password_hash, totp_secret_sealed, totp_last_step, status, "
    "failed_attempts, last_failed_at, habilitation_expires_on, second_factor_failures"
)
# Memberships are tenant rows: the subquery returns only those inside the caller's scope (RLS).
_USER = (
    "u.id, u.email, u.display_name, u.status, u.totp_secret_sealed IS NOT NULL AS totp_enabled, "
    "u.password_hash IS NULL AS enrolment_pending, "
    "u.agrement_number, u.enquiry_date, u.habilitation_expires_on, u.training_date, u.created_at, "
    "coalesce((SELECT json_agg(json_build_object('id', m.id, 'tenant_id', m.tenant_id, 'role', m.role, "
    "'force_id', m.force_id) ORDER BY m.created_at) FROM memberships m WHERE m.user_id = u.id), '[]') "
    "AS memberships"
)


def _user(r: asyncpg.Record) -> User:
    return User(
        id=r["id"],
        email=r["email"],
        display_name=r["display_name"],
        status=r["status"],
        totp_enabled=r["totp_enabled"],
        enrolment_pending=r["enrolment_pending"],
        created_at=r["created_at"],
        habilitation=Habilitation(
            agrement_number=r["agrement_number"],
            enquiry_date=r["enquiry_date"],
            expires_on=r["habilitation_expires_on"],
            training_date=r["training_date"],
        ),
        memberships=msgspec.json.decode(r["memberships"], type=list[Membership]),
    )


class IdentityRepository:
    """All SQL of the identity domain."""

    # --- accounts
    async def account_by_email(self, conn: asyncpg.Connection, email: str) -> Account | None:
        r = await conn.fetchrow(f"SELECT {_ACCOUNT} FROM users WHERE lower(email) = lower($1)", email)
        return None if r is None else Account(**dict(r))

    async def account(self, conn: asyncpg.Connection, user_id: uuid.UUID, *, lock: bool = False) -> Account | None:
        r = await conn.fetchrow(f"SELECT {_ACCOUNT} FROM users WHERE id = $1{' FOR UPDATE' if lock else ''}", user_id)
        return None if r is None else Account(**dict(r))

    async def record_failure(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
        await conn.execute(
            "UPDATE users SET failed_attempts = failed_attempts + 1, last_failed_at = now() WHERE id = $1", user_id
        )

    async def record_success(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
        """The last factor succeeded (or an administrator unlocked the account): both failure counters start over."""
        await conn.execute(
            "UPDATE users SET failed_attempts = 0, last_failed_at = NULL, second_factor_failures = 0, "
            "second_factor_failed_at = NULL WHERE id = $1",
            user_id,
        )

    async def set_totp(self, conn: asyncpg.Connection, user_id: uuid.UUID, sealed: bytes | None) -> None:
        await conn.execute(
            "UPDATE users SET totp_secret_sealed = $2, totp_last_step = NULL, updated_at = now() WHERE id = $1",
            user_id,
            sealed,
        )

    async def use_totp_step(self, conn: asyncpg.Connection, user_id: uuid.UUID, step: int) -> bool:
        """Consume a TOTP time step once: a replayed code in the same window is refused."""
        return bool(
            await conn.fetchval(
                "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)"
                " RETURNING true",
                user_id,
                step,
            )
        )

    async def insert_user(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        columns = list(values)
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        await conn.execute(f"INSERT INTO users ({', '.join(columns)}) VALUES ({placeholders})", *values.values())

    async def update_user(self, conn: asyncpg.Connection, user_id: uuid.UUID, values: dict[str, Any]) -> None:
        sql = ", ".join(f"{c} = ${i}" for i, c in enumerate(values, 2))
        await conn.execute(f"UPDATE users SET {sql}, updated_at = now() WHERE id = $1", user_id, *values.values())

    # --- users as seen through memberships in scope
    async def users(self, conn: asyncpg.Connection, after: uuid.UUID | None, limit: int) -> list[User]:
        rows = await conn.fetch(
            f"SELECT {_USER} FROM users u WHERE EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id) "
            "AND ($1::uuid IS NULL OR u.id > $1) ORDER BY u.id LIMIT $2",
            after,
            limit,
        )
        return [_user(r) for r in rows]

    async def visible_user(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> User | None:
        r = await conn.fetchrow(
            f"SELECT {_USER} FROM users u WHERE u.id = $1 "
            "AND EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id)",
            user_id,
        )
        return None if r is None else _user(r)

    async def insert_membership(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO memberships (id, tenant_id, user_id, role, force_id) VALUES ($1,$2,$3,$4,$5)",
            values["id"],
            values["tenant_id"],
            values["user_id"],
            values["role"],
            values["force_id"],
        )

    async def delete_membership(self, conn: asyncpg.Connection, membership_id: uuid.UUID) -> asyncpg.Record | None:
        removed = await conn.fetchrow(
            "DELETE FROM memberships WHERE id = $1 RETURNING tenant_id, user_id", membership_id
        )
        if removed is not None:
            # Sessions opened through this membership end with it.
            await conn.execute(
                "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'role withdrawn' "
                "WHERE membership_id = $1 AND revoked_at IS NULL",
                membership_id,
            )
        return removed

    # --- sign-in lookups across tenants: only through the sign-in functions (SECURITY DEFINER, migration 0052)
    async def memberships_of(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> list[SigninMembership]:
        """Every membership of an account, oldest first (sign-in happens before any scope)."""
        rows = await conn.fetch(
            "SELECT id, tenant_id, user_id, role, force_id, department_id FROM public.signin_memberships($1)", user_id
        )
        return [SigninMembership(**dict(r)) for r in rows]

    async def membership(self, conn: asyncpg.Connection, membership_id: uuid.UUID) -> SigninMembership | None:
        r = await conn.fetchrow(
            "SELECT id, tenant_id, user_id, role, force_id, department_id FROM public.signin_membership($1)",
            membership_id,
        )
        return None if r is None else SigninMembership(**dict(r))

    async def session_record(self, conn: asyncpg.Connection, session_id: uuid.UUID) -> SessionRecord | None:
        """A session, its account, its membership and the tenants its scope draws on: one call, one round trip."""
        r = await conn.fetchrow(
            "SELECT session_id, user_id, expires_at, revoked_at, status, display_name, habilitation_expires_on, "
            "membership_id, tenant_id, role, force_id, department_id, department_tenant_ids, force_tenant_ids, "
            "member_tenant_ids FROM public.signin_session($1)",
            session_id,
        )
        if r is None:
            return None
        membership = None
        if r["membership_id"] is not None:
            membership = SigninMembership(
                id=r["membership_id"],
                tenant_id=r["tenant_id"],
                user_id=r["user_id"],
                role=r["role"],
                force_id=r["force_id"],
                department_id=r["department_id"],
            )
        return SessionRecord(
            session_id=r["session_id"],
            user_id=r["user_id"],
            expires_at=r["expires_at"],
            revoked_at=r["revoked_at"],
            status=r["status"],
            display_name=r["display_name"],
            habilitation_expires_on=r["habilitation_expires_on"],
            membership=membership,
            department_tenant_ids=frozenset(r["department_tenant_ids"] or ()),
            force_tenant_ids=frozenset(r["force_tenant_ids"] or ()),
            member_tenant_ids=frozenset(r["member_tenant_ids"] or ()),
        )

    # --- what a grant may name, read inside the granting principal's scope (RLS applies)
    async def tenant_kind(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> str | None:
        kind = await conn.fetchval("SELECT kind FROM tenants WHERE id = $1", tenant_id)
        return None if kind is None else str(kind)

    async def force_of_grant(self, conn: asyncpg.Connection, force_id: uuid.UUID) -> asyncpg.Record | None:
        """The force's kind and, for a police municipale, the commune tenant that runs it."""
        return await conn.fetchrow("SELECT kind, tenant_id FROM forces WHERE id = $1", force_id)

    # --- sessions
    async def insert_session(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO auth_sessions (id, user_id, membership_id, amr, expires_at, client_ip, user_agent, dpop_jkt, "
            "client_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            values["id"],
            values["user_id"],
            values["membership_id"],
            values["amr"],
            values["expires_at"],
            values["client_ip"],
            values["user_agent"],
            values.get("dpop_jkt"),
            values.get("client_id"),
        )

    async def session(self, conn: asyncpg.Connection, session_id: uuid.UUID) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT s.id, s.user_id, s.membership_id, s.expires_at, s.revoked_at, s.dpop_jkt, u.status, "
            "u.display_name, u.habilitation_expires_on, u.failed_attempts FROM auth_sessions s "
            "JOIN users u ON u.id = s.user_id "
            "WHERE s.id = $1",
            session_id,
        )

    async def revoke_session(self, conn: asyncpg.Connection, session_id: uuid.UUID, reason: str) -> bool:
        return bool(
            await conn.fetchval(
                "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL "
                "RETURNING true",
                session_id,
                reason,
            )
        )

    async def revoke_user_sessions(self, conn: asyncpg.Connection, user_id: uuid.UUID, reason: str) -> None:
        await conn.execute(
            "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $2 "
            "WHERE user_id = $1 AND revoked_at IS NULL",
            user_id,
            reason,
        )

    async def revoke_other_sessions(
        self, conn: asyncpg.Connection, user_id: uuid.UUID, keep: uuid.UUID, reason: str
    ) -> None:
        """Every session of the account but the caller's (a changed password or second factor ends the others)."""
        await conn.execute(
            "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $3 "
            "WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
            user_id,
            keep,
            reason,
        )

    async def insert_refresh(
        self,
        conn: asyncpg.Connection,
        token_id: uuid.UUID,
        session_id: uuid.UUID,
        token_hash: bytes,
        expires_at: datetime,
    ) -> None:
        await conn.execute(
            "INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at) VALUES ($1,$2,$3,$4)",
            token_id,
            session_id,
            token_hash,
            expires_at,
        )

    async def take_refresh(self, conn: asyncpg.Connection, token_hash: bytes) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT r.id, r.session_id, r.expires_at, r.used_at FROM refresh_tokens r WHERE r.token_hash = $1 "
            "FOR UPDATE",
            token_hash,
        )

    async def mark_refresh_used(self, conn: asyncpg.Connection, token_id: uuid.UUID) -> None:
        await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = $1", token_id)

    # --- second-factor challenges
    async def insert_challenge(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO login_challenges (id, user_id, membership_id, token_hash, expires_at) VALUES ($1,$2,$3,$4,$5)",
            values["id"],
            values["user_id"],
            values["membership_id"],
            values["token_hash"],
            values["expires_at"],
        )

    async def take_challenge(self, conn: asyncpg.Connection, token_hash: bytes) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT id, user_id, membership_id, expires_at, used_at FROM login_challenges WHERE token_hash = $1 "
            "FOR UPDATE",
            token_hash,
        )

    async def close_challenge(self, conn: asyncpg.Connection, challenge_id: uuid.UUID) -> None:
        await conn.execute("UPDATE login_challenges SET used_at = now() WHERE id = $1", challenge_id)

    # --- per-IP throttling (one row per IP and minute)
    async def count_ip_attempt(self, conn: asyncpg.Connection, client_ip: str, window_start: datetime) -> int:
        return int(
            await conn.fetchval(
                "INSERT INTO ip_login_attempts (client_ip, window_start, attempts) VALUES ($1, $2, 1) "
                "ON CONFLICT (client_ip, window_start) DO UPDATE SET attempts = ip_login_attempts.attempts + 1 "
                "RETURNING attempts",
                client_ip,
                window_start,
            )
        )

    async def prune_ip_attempts(self, conn: asyncpg.Connection, before: datetime) -> None:
        await conn.execute("DELETE FROM ip_login_attempts WHERE window_start < $1", before)

    # --- signing keys
    async def has_live_signing_key(self, conn: asyncpg.Connection) -> bool:
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)"))

    async def signing_keys(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return list(
            await conn.fetch(
                "SELECT kid, private_jwk_sealed, public_jwk, activates_at, retired_at, unpublish_at FROM signing_keys "
                "ORDER BY activates_at DESC, created_at DESC"
            )
        )

    async def retire_keys(self, conn: asyncpg.Connection, *, retire_at: datetime, unpublish_at: datetime) -> None:
        await conn.execute(
            "UPDATE signing_keys SET retired_at = $1, unpublish_at = $2 WHERE retired_at IS NULL",
            retire_at,
            unpublish_at,
        )

    async def insert_key(
        self,
        conn: asyncpg.Connection,
        *,
        kid: str,
        algorithm: str,
        private_sealed: bytes,
        public_jwk: str,
        activates_at: datetime,
    ) -> None:
        await conn.execute(
            "INSERT INTO signing_keys (kid, algorithm, private_jwk_sealed, public_jwk, activates_at) "
            "VALUES ($1, $2, $3, $4::jsonb, $5)",
            kid,
            algorithm,
            private_sealed,
            public_jwk,
            activates_at,
        )
