"""SQL of the camera wall: the cameras in scope with their site, commune, recording health, recent gaps and open
health alerts (the alert engine's rows, read only)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

# An alert still open: the states the queue shows.
_OPEN = "('new', 'claimed', 'verified', 'dispatched')"


class WallRepository:
    async def cameras(self, conn: asyncpg.Connection, *, gaps_since: datetime, tenant_id: uuid.UUID | None,
                      insee_code: str | None) -> list[asyncpg.Record]:
        """One row per camera the connection's scope sees, in commune, site and camera name order."""
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT c.id AS camera_id, c.tenant_id, t.name AS tenant_name, c.name, c.status AS configured_status, "
            "       c.live_transcode, "
            "       c.insee_code, co.name AS commune_name, s.id AS site_id, s.name AS site_name, s.kind AS site_kind, "
            "       h.state AS recording_state, h.since AS recording_since, "
            "       greatest(h.last_segment_end, last_segment.end_at) AS last_frame_at, "
            "       h.detail AS recording_detail, h.codec, "
            "       coalesce(g.recent_gaps, 0) AS recent_gaps, g.last_gap_end, "
            "       EXISTS (SELECT 1 FROM alerts a WHERE a.tenant_id = c.tenant_id AND a.camera_id = c.id "
            f"               AND a.rule_type = 'camera_tamper' AND a.state IN {_OPEN}) AS tamper, "
            "       EXISTS (SELECT 1 FROM alerts a WHERE a.tenant_id = c.tenant_id AND a.camera_id = c.id "
            f"               AND a.rule_type = 'camera_offline' AND a.state IN {_OPEN}) AS offline_alert "
            "FROM cameras c "
            "JOIN sites s ON s.tenant_id = c.tenant_id AND s.id = c.site_id "
            "JOIN communes co ON co.insee_code = c.insee_code "
            "JOIN tenants t ON t.id = c.tenant_id "
            "LEFT JOIN recording_health h ON h.camera_id = c.id "
            # The health row changes with the recorder's state only; the index knows the last segment.
            "LEFT JOIN LATERAL (SELECT rs.end_at FROM recording_segments rs "
            "                   WHERE rs.tenant_id = c.tenant_id AND rs.camera_id = c.id "
            "                   ORDER BY rs.end_at DESC LIMIT 1) last_segment ON true "
            "LEFT JOIN LATERAL (SELECT count(*) AS recent_gaps, max(end_at) AS last_gap_end FROM recording_gaps rg "
            "                   WHERE rg.tenant_id = c.tenant_id AND rg.camera_id = c.id AND rg.end_at > $1) g ON true "
            "WHERE ($2::uuid IS NULL OR c.tenant_id = $2) AND ($3::text IS NULL OR c.insee_code = $3) "
            "ORDER BY co.name, c.insee_code, s.name, s.id, c.name",
            gaps_since, tenant_id, insee_code)
        return rows
