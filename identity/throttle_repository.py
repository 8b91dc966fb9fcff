"""SQL of the sign-in budgets: attempts per client address, the platform's failures per minute, second-factor
failures and challenge misses."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg


class ThrottleRepository:
    """One row per address and minute, one row per minute for the whole platform, counters on the account."""

    async def admit(self, conn: asyncpg.Connection, address_key: str, window_start: datetime) -> tuple[int, int]:
        """Count one attempt from `address_key` in this minute; its attempts so far and the platform's failures."""
        row = await conn.fetchrow(
            "WITH counted AS (INSERT INTO ip_login_attempts (client_ip, window_start, attempts) VALUES ($1, $2, 1) "
            "ON CONFLICT (client_ip, window_start) DO UPDATE SET attempts = ip_login_attempts.attempts + 1 "
            "RETURNING attempts) "
            "SELECT (SELECT attempts FROM counted) AS attempts, "
            "coalesce((SELECT failures FROM signin_failures WHERE window_start = $2), 0) AS failures",
            address_key,
            window_start,
        )
        assert row is not None
        return int(row["attempts"]), int(row["failures"])

    async def prune(self, conn: asyncpg.Connection, before: datetime) -> None:
        await conn.execute("DELETE FROM ip_login_attempts WHERE window_start < $1", before)
        await conn.execute("DELETE FROM signin_failures WHERE window_start < $1", before)

    async def count_failure(self, conn: asyncpg.Connection, window_start: datetime) -> int:
        return int(
            await conn.fetchval(
                "INSERT INTO signin_failures (window_start, failures) VALUES ($1, 1) ON CONFLICT (window_start) "
                "DO UPDATE SET failures = signin_failures.failures + 1 RETURNING failures",
                window_start,
            )
        )

    async def second_factor_failed(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
        await conn.execute(
            "UPDATE users SET second_factor_failures = second_factor_failures + 1, second_factor_failed_at = now() "
            "WHERE id = $1",
            user_id,
        )

    async def challenge_missed(self, conn: asyncpg.Connection, challenge_id: uuid.UUID, max_misses: int) -> bool:
        """One more miss on a second-factor challenge; True when that burned it."""
        return bool(
            await conn.fetchval(
                "UPDATE login_challenges SET misses = misses + 1, "
                "used_at = CASE WHEN misses + 1 >= $2 THEN now() ELSE used_at END WHERE id = $1 "
                "RETURNING used_at IS NOT NULL",
                challenge_id,
                max_misses,
            )
        )
