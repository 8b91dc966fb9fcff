"""All SQL of live viewing: the live_views record, the camera a ticket names, the session it binds."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from live.model import LiveView, SessionState, Stream, TicketClaims

_VIEW = ("id, tenant_id, camera_id, user_id, stream, motive, issued_at, expires_at, started_at, ended_at, "
         "end_reason, last_seen_at")


def _view(r: asyncpg.Record) -> LiveView:
    return LiveView(**{**dict(r), "stream": Stream(r["stream"])})


class LiveRepository:
    """Queries run in the caller's transaction: a principal's (the API) or the ticket's tenant's (the gateway)."""

    async def camera_status(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> asyncpg.Record | None:
        return await conn.fetchrow("SELECT tenant_id, status FROM cameras WHERE id = $1", camera_id)

    async def insert_view(
        self, conn: asyncpg.Connection, *, view_id: uuid.UUID, tenant_id: uuid.UUID, camera_id: uuid.UUID,
        user_id: uuid.UUID, session_id: uuid.UUID, stream: Stream, motive: str, ttl_s: int,
    ) -> tuple[datetime, datetime]:
        """The viewing as issued; its issue and expiry times come from the database's clock, the one the gateway's
        claim compares with."""
        row = await conn.fetchrow(
            "INSERT INTO live_views (id, tenant_id, camera_id, user_id, session_id, stream, motive, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8)) RETURNING issued_at, expires_at",
            view_id, tenant_id, camera_id, user_id, session_id, stream.value, motive, float(ttl_s),
        )
        assert row is not None
        return row["issued_at"], row["expires_at"]

    async def views(
        self, conn: asyncpg.Connection, camera_id: uuid.UUID, after: uuid.UUID | None, limit: int
    ) -> list[LiveView]:
        rows = await conn.fetch(
            f"SELECT {_VIEW} FROM live_views WHERE camera_id = $1 AND ($2::uuid IS NULL OR id < $2) "
            "ORDER BY id DESC LIMIT $3",
            camera_id, after, limit,
        )
        return [_view(r) for r in rows]

    async def view(self, conn: asyncpg.Connection, view_id: uuid.UUID) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT camera_id, stream, user_id, session_id, started_at, expires_at <= now() AS expired "
            "FROM live_views WHERE id = $1",
            view_id,
        )

    async def claim(self, conn: asyncpg.Connection, claims: TicketClaims, gateway_id: str) -> datetime | None:
        """Mark the viewing started, once: a second redemption of its ticket finds started_at set. Every claim of the
        ticket must match the row the API wrote, and the ticket must not have expired on the database's clock."""
        started: datetime | None = await conn.fetchval(
            "UPDATE live_views SET started_at = now(), last_seen_at = now(), gateway_id = $7 "
            "WHERE id = $1 AND camera_id = $2 AND stream = $3 AND user_id = $4 AND session_id = $5 AND tenant_id = $6 "
            "AND started_at IS NULL AND expires_at > now() RETURNING started_at",
            claims.jti, claims.cam, claims.stream.value, claims.sub, claims.sid, claims.tid, gateway_id,
        )
        return started

    async def session_state(self, conn: asyncpg.Connection, session_id: uuid.UUID) -> SessionState | None:
        # The sign-in function resolves a session on the runtime role (migration 0052), as the API does per request.
        r = await conn.fetchrow(
            "SELECT expires_at, revoked_at, status, role, habilitation_expires_on FROM public.signin_session($1)",
            session_id,
        )
        if r is None:
            return None
        return SessionState(expires_at=r["expires_at"], revoked_at=r["revoked_at"], status=r["status"],
                            role=r["role"], habilitation_expires_on=r["habilitation_expires_on"])

    async def camera_source(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT main_stream_url, sub_stream_url, credentials_sealed, live_transcode, status, "
            "privacy_masks::text AS privacy_masks FROM cameras WHERE id = $1",
            camera_id,
        )

    async def touch(self, conn: asyncpg.Connection, view_id: uuid.UUID) -> None:
        await conn.execute("UPDATE live_views SET last_seen_at = now() WHERE id = $1 AND ended_at IS NULL", view_id)

    async def end(self, conn: asyncpg.Connection, view_id: uuid.UUID, reason: str) -> bool:
        ended = await conn.fetchval(
            "UPDATE live_views SET ended_at = now(), last_seen_at = now(), end_reason = $2 "
            "WHERE id = $1 AND started_at IS NOT NULL AND ended_at IS NULL RETURNING true",
            view_id, reason[:200],
        )
        return bool(ended)
