"""All DVR SQL ($n parameters only): segment index, gaps, health, leases, retention, registers, clips, exports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec

from core.ids import new_id
from dvr.model import (
    Clip,
    ExportJob,
    ExportStatus,
    Gap,
    GapCause,
    LegalFrame,
    RecordedSpan,
    Requisition,
    RetentionInputs,
    Segment,
    SegmentFacts,
    Tier,
)

_SEGMENT_COLUMNS = ("id, tenant_id, camera_id, start_at, end_at, size_bytes, sha256, object_key, version_id, "
                    "init_size, mask_version")
_CLIP_COLUMNS = "id, tenant_id, camera_id, alert_id, start_at, end_at, object_key, version_id, sha256, size_bytes"


def _segment(row: asyncpg.Record) -> Segment:
    return Segment(**dict(row))


def _clip(row: asyncpg.Record) -> Clip:
    return Clip(**dict(row))


def export_job(row: asyncpg.Record) -> ExportJob:
    return ExportJob(
        id=row["id"], requisition_id=row["requisition_id"], status=ExportStatus(row["status"]),
        requested_at=row["requested_at"], estimated_bytes=row["estimated_bytes"],
        size_cap_bytes=row["size_cap_bytes"], started_at=row["started_at"], finished_at=row["finished_at"],
        export_id=row["export_id"], package_sha256=row["package_sha256"], package_bytes=row["package_bytes"],
        files=row["files"], signing_key_id=row["signing_key_id"], error=row["error"])


@dataclass
class LeaseRound:
    """What one lease poll learnt: recorders alive (this one included), the leases it renewed, the recordable
    cameras (by id) and the live holder of each camera that has one."""

    live: int
    held: set[uuid.UUID]
    cameras: dict[uuid.UUID, asyncpg.Record]
    holders: dict[uuid.UUID, str]


class DvrRepository:
    """Stateless; every method runs on the connection (and so in the transaction and tenant scope) it is given."""

    # -- recorder instances and leases (department role) ------------------------------------------------------
    async def register_instance(self, conn: asyncpg.Connection, recorder_id: str, host: str, pid: int) -> None:
        await conn.execute(
            "INSERT INTO recorder_instances (id, host, pid) VALUES ($1, $2, $3) "
            "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()", recorder_id, host, pid)

    async def lease_round(self, conn: asyncpg.Connection, recorder_id: str, ttl_s: float,
                          tenant_ids: Sequence[uuid.UUID] | None = None) -> LeaseRound:
        """One round trip per poll: refresh this recorder, forget long-dead ones, renew the leases it still holds,
        and read the recordable cameras with their live lease holders and how many recorders are alive. A camera is
        recordable when enabled, its tenant subscribed, and a prefectoral authorisation current (migration 0125):
        one whose authorisation lapses drops out of the list and its recorder stops at this round.

        Data-modifying CTEs all see the statement's starting snapshot, so the camera list shows each lease as it
        was before this renewal; that changes no holder, only expiry times.
        """
        rows = await conn.fetch(
            "WITH beat AS (UPDATE recorder_instances SET heartbeat_at = now() WHERE id = $1), "
            "stale AS (DELETE FROM recorder_instances "
            "  WHERE heartbeat_at < now() - make_interval(secs => $2 * 4) AND id <> $1), "
            "renewed AS (UPDATE recorder_leases SET expires_at = now() + make_interval(secs => $2) "
            "  WHERE holder = $1 AND expires_at >= now() RETURNING camera_id), "
            "cams AS (SELECT c.tenant_id, c.id AS camera_id, c.name, c.main_stream_url, c.credentials_sealed, "
            "    c.privacy_masks::text AS privacy_masks, c.privacy_masks_version, c.expected_bitrate_kbps, "
            "    l.holder FROM cameras c JOIN tenants t ON t.id = c.tenant_id "
            "  LEFT JOIN recorder_leases l ON l.camera_id = c.id AND l.expires_at >= now() "
            "  WHERE c.status <> 'disabled' AND t.subscription_status IN ('trial', 'active') "
            "  AND camera_authorised(c.tenant_id, c.id, paris_today()) "
            "  AND ($3::uuid[] IS NULL OR c.tenant_id = ANY ($3::uuid[]))), "
            "head AS (SELECT 1 + (SELECT count(*) FROM recorder_instances "
            "    WHERE id <> $1 AND heartbeat_at >= now() - make_interval(secs => $2)) AS live, "
            "  (SELECT coalesce(array_agg(camera_id), '{}') FROM renewed) AS held) "
            "SELECT head.live, head.held, cams.* FROM head LEFT JOIN cams ON true ORDER BY cams.camera_id",
            recorder_id, ttl_s, None if tenant_ids is None else list(tenant_ids))
        first = rows[0]
        cameras = {r["camera_id"]: r for r in rows if r["camera_id"] is not None}
        holders = {camera_id: r["holder"] for camera_id, r in cameras.items() if r["holder"] is not None}
        return LeaseRound(live=int(first["live"]), held=set(first["held"]), cameras=cameras, holders=holders)

    async def remove_instance(self, conn: asyncpg.Connection, recorder_id: str) -> None:
        await conn.execute("DELETE FROM recorder_leases WHERE holder = $1", recorder_id)
        await conn.execute("DELETE FROM recorder_instances WHERE id = $1", recorder_id)

    async def acquire_lease(self, conn: asyncpg.Connection, holder: str, tenant_id: uuid.UUID,
                            camera_id: uuid.UUID, ttl_s: float) -> bool:
        """Take a free or expired lease (or keep ours); false when another live recorder holds it."""
        got = await conn.fetchval(
            "INSERT INTO recorder_leases (camera_id, tenant_id, holder, expires_at) "
            "VALUES ($1, $2, $3, now() + make_interval(secs => $4)) "
            "ON CONFLICT (camera_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at, "
            "  acquired_at = CASE WHEN recorder_leases.holder = EXCLUDED.holder THEN recorder_leases.acquired_at "
            "                     ELSE now() END "
            "WHERE recorder_leases.holder = EXCLUDED.holder OR recorder_leases.expires_at < now() "
            "RETURNING holder", camera_id, tenant_id, holder, ttl_s)
        return bool(got == holder)

    async def release_lease(self, conn: asyncpg.Connection, holder: str, camera_id: uuid.UUID) -> None:
        await conn.execute("DELETE FROM recorder_leases WHERE holder = $1 AND camera_id = $2", holder, camera_id)

    # -- segments, gaps, health -------------------------------------------------------------------------------
    async def last_segment_end(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> datetime | None:
        value: datetime | None = await conn.fetchval(
            "SELECT max(end_at) FROM recording_segments WHERE camera_id = $1", camera_id)
        return value

    async def insert_segment(self, conn: asyncpg.Connection, seg: SegmentFacts, version_id: str | None) -> bool:
        """Index one uploaded segment; false when it was already indexed (a retried upload)."""
        inserted = await conn.fetchval(
            "INSERT INTO recording_segments (id, tenant_id, camera_id, start_at, end_at, size_bytes, sha256, "
            "object_key, version_id, codec, recorder_id, mask_version, init_size) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "ON CONFLICT (tenant_id, camera_id, start_at) DO NOTHING RETURNING id",
            new_id(), seg.tenant_id, seg.camera_id, seg.start_at, seg.end_at, seg.size, seg.sha256,
            seg.object_key, version_id, seg.codec, seg.recorder_id, seg.mask_version, seg.init_size)
        return inserted is not None

    async def source_bitrate_kbps(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> float | None:
        """The camera's own bitrate, read from its latest segment recorded as a plain copy (no masks burnt in)."""
        value = await conn.fetchval(
            "SELECT size_bytes * 8 / 1000.0 / extract(epoch FROM end_at - start_at) FROM recording_segments "
            "WHERE camera_id = $1 AND mask_version IS NULL AND end_at - start_at >= interval '1 second' "
            "ORDER BY end_at DESC LIMIT 1", camera_id)
        return None if value is None else float(value)

    async def insert_gap(self, conn: asyncpg.Connection, gap: Gap) -> bool:
        inserted = await conn.fetchval(
            "INSERT INTO recording_gaps (id, tenant_id, camera_id, start_at, end_at, cause, detail) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, camera_id, start_at) DO NOTHING "
            "RETURNING id", new_id(), gap.tenant_id, gap.camera_id, gap.start_at, gap.end_at, gap.cause.value,
            gap.detail)
        return inserted is not None

    async def set_health(self, conn: asyncpg.Connection, *, tenant_id: uuid.UUID, camera_id: uuid.UUID,
                         state: str, since: datetime, recorder_id: str, last_segment_end: datetime | None = None,
                         codec: str | None = None, detail: str | None = None) -> None:
        await conn.execute(
            "INSERT INTO recording_health (tenant_id, camera_id, state, since, last_segment_end, codec, "
            "recorder_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (camera_id) DO UPDATE SET state = EXCLUDED.state, "
            "  since = CASE WHEN recording_health.state = EXCLUDED.state THEN recording_health.since "
            "               ELSE EXCLUDED.since END, "
            "  last_segment_end = coalesce(EXCLUDED.last_segment_end, recording_health.last_segment_end), "
            "  codec = coalesce(EXCLUDED.codec, recording_health.codec), recorder_id = EXCLUDED.recorder_id, "
            "  detail = EXCLUDED.detail, updated_at = now()",
            tenant_id, camera_id, state, since, last_segment_end, codec, recorder_id, detail)

    async def health(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT * FROM recording_health WHERE camera_id = $1", camera_id)
        return row

    async def segments_between(self, conn: asyncpg.Connection, camera_id: uuid.UUID, start: datetime,
                               end: datetime) -> list[Segment]:
        rows = await conn.fetch(
            f"SELECT {_SEGMENT_COLUMNS} FROM recording_segments "
            "WHERE camera_id = $1 AND end_at > $2 AND start_at < $3 ORDER BY start_at", camera_id, start, end)
        return [_segment(r) for r in rows]

    async def gaps_between(self, conn: asyncpg.Connection, camera_id: uuid.UUID, start: datetime,
                           end: datetime) -> list[Gap]:
        rows = await conn.fetch(
            "SELECT tenant_id, camera_id, start_at, end_at, cause, detail FROM recording_gaps "
            "WHERE camera_id = $1 AND end_at > $2 AND start_at < $3 ORDER BY start_at", camera_id, start, end)
        return [Gap(tenant_id=r["tenant_id"], camera_id=r["camera_id"], start_at=r["start_at"], end_at=r["end_at"],
                    cause=GapCause(r["cause"]), detail=r["detail"]) for r in rows]

    async def recorded_spans(self, conn: asyncpg.Connection, camera_id: uuid.UUID, start: datetime, end: datetime,
                             tolerance_s: float) -> list[RecordedSpan]:
        """The segments over [start, end) merged into continuous spans (neighbours closer than the tolerance)."""
        rows = await conn.fetch(
            "SELECT min(start_at) AS start_at, max(end_at) AS end_at FROM ("
            "  SELECT start_at, end_at, sum(opens) OVER (ORDER BY start_at) AS span FROM ("
            "    SELECT start_at, end_at, CASE WHEN start_at - lag(end_at) OVER (ORDER BY start_at)"
            "      <= make_interval(secs => $4) THEN 0 ELSE 1 END AS opens"
            "    FROM recording_segments WHERE camera_id = $1 AND end_at > $2 AND start_at < $3) AS marked"
            ") AS numbered GROUP BY span ORDER BY 1", camera_id, start, end, tolerance_s)
        return [RecordedSpan(start_at=r["start_at"], end_at=r["end_at"]) for r in rows]

    async def camera_tenant(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> uuid.UUID | None:
        """The camera's tenant if the connection's scope sees it (row-level security hides the others)."""
        value: uuid.UUID | None = await conn.fetchval("SELECT tenant_id FROM cameras WHERE id = $1", camera_id)
        return value

    async def camera_name(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> str | None:
        value: str | None = await conn.fetchval("SELECT name FROM cameras WHERE id = $1", camera_id)
        return value

    # -- retention ----------------------------------------------------------------------------------------------
    async def retention_inputs(self, conn: asyncpg.Connection, camera_id: uuid.UUID,
                               tier: Tier) -> RetentionInputs | None:
        row = await conn.fetchrow(
            "SELECT t.retention_days, a.max_retention_days, a.min_retention_days, p.days AS tier_days "
            "FROM cameras c JOIN tenants t ON t.id = c.tenant_id "
            "LEFT JOIN LATERAL (SELECT max_retention_days, min_retention_days FROM camera_authorisations a "
            "   WHERE a.camera_id = c.id AND a.tenant_id = c.tenant_id AND a.valid_from <= current_date "
            "   ORDER BY a.valid_from DESC LIMIT 1) a ON true "
            "LEFT JOIN retention_policies p ON p.tenant_id = c.tenant_id AND p.tier = $2 "
            "WHERE c.id = $1", camera_id, tier.value)
        if row is None:
            return None
        return RetentionInputs(tenant_days=row["retention_days"], authorisation_max_days=row["max_retention_days"],
                               authorisation_min_days=row["min_retention_days"], tier_days=row["tier_days"])

    async def set_retention_policy(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, tier: Tier, days: int,
                                   updated_by: uuid.UUID | None) -> None:
        await conn.execute(
            "INSERT INTO retention_policies (tenant_id, tier, days, updated_by) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (tenant_id, tier) DO UPDATE SET days = EXCLUDED.days, updated_by = EXCLUDED.updated_by, "
            "updated_at = now()", tenant_id, tier.value, days, updated_by)

    async def cameras_with_recordings(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return list(await conn.fetch(
            "SELECT DISTINCT tenant_id, camera_id FROM recording_segments "
            "UNION SELECT DISTINCT tenant_id, camera_id FROM clips"))

    async def segments_ending_before(self, conn: asyncpg.Connection, camera_id: uuid.UUID, before: datetime,
                                     limit: int) -> list[Segment]:
        rows = await conn.fetch(
            f"SELECT {_SEGMENT_COLUMNS} FROM recording_segments WHERE camera_id = $1 AND end_at <= $2 "
            "ORDER BY end_at LIMIT $3", camera_id, before, limit)
        return [_segment(r) for r in rows]

    async def clips_ending_before(self, conn: asyncpg.Connection, camera_id: uuid.UUID, before: datetime,
                                  limit: int) -> list[Clip]:
        rows = await conn.fetch(
            f"SELECT {_CLIP_COLUMNS} FROM clips WHERE camera_id = $1 AND end_at <= $2 ORDER BY end_at LIMIT $3",
            camera_id, before, limit)
        return [_clip(r) for r in rows]

    async def every_camera(self, conn: asyncpg.Connection,
                           tenant_id: uuid.UUID | None = None) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(camera, tenant) of every camera of the department, or of one tenant (a department connection)."""
        rows = await conn.fetch("SELECT id, tenant_id FROM cameras WHERE $1::uuid IS NULL OR tenant_id = $1 "
                                "ORDER BY tenant_id, id", tenant_id)
        return [(r["id"], r["tenant_id"]) for r in rows]

    async def indexed_segment_keys(self, conn: asyncpg.Connection, camera_id: uuid.UUID,
                                   since: date | None) -> set[str]:
        """Object keys of the camera's indexed segments, those starting on or after the day `since` when given."""
        rows = await conn.fetch(
            "SELECT object_key FROM recording_segments WHERE camera_id = $1 "
            "AND ($2::date IS NULL OR start_at >= $2::date::timestamp AT TIME ZONE 'UTC')", camera_id, since)
        return {r["object_key"] for r in rows}

    async def indexed_keys(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> set[str]:
        rows = await conn.fetch("SELECT object_key FROM recording_segments WHERE camera_id = $1 UNION "
                                "SELECT object_key FROM clips WHERE camera_id = $1", camera_id)
        return {r["object_key"] for r in rows}

    async def held_recordings(self, conn: asyncpg.Connection, recording_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these recordings are under a legal hold whose requisition is not released."""
        rows = await conn.fetch(
            "SELECT h.recording_id FROM legal_holds h WHERE h.recording_id = ANY ($1::uuid[]) "
            "AND NOT EXISTS (SELECT 1 FROM legal_hold_releases r WHERE r.requisition_id = h.requisition_id)",
            list(recording_ids))
        return {r["recording_id"] for r in rows}

    async def register_destruction(self, conn: asyncpg.Connection, *, tenant_id: uuid.UUID, camera_id: uuid.UUID,
                                   recording_type: str, recording_id: uuid.UUID, start_at: datetime,
                                   end_at: datetime, sha256: str, size_bytes: int, object_key: str,
                                   version_id: str | None, retention_days: int, due_at: datetime,
                                   destroyed_at: datetime, method: str) -> None:
        await conn.execute(
            "INSERT INTO destruction_register (id, tenant_id, camera_id, recording_type, recording_id, start_at, "
            "end_at, sha256, size_bytes, object_key, version_id, retention_days, due_at, destroyed_at, method) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
            "ON CONFLICT (recording_id) DO NOTHING",
            new_id(), tenant_id, camera_id, recording_type, recording_id, start_at, end_at, sha256, size_bytes,
            object_key, version_id, retention_days, due_at, destroyed_at, method)
        table = "recording_segments" if recording_type == "segment" else "clips"
        await conn.execute(f"DELETE FROM {table} WHERE id = $1", recording_id)

    async def destruction_register(self, conn: asyncpg.Connection, camera_id: uuid.UUID | None = None,
                                   limit: int = 1000) -> list[asyncpg.Record]:
        return list(await conn.fetch(
            "SELECT * FROM destruction_register WHERE ($1::uuid IS NULL OR camera_id = $1) "
            "ORDER BY destroyed_at DESC LIMIT $2", camera_id, limit))

    # -- clips ---------------------------------------------------------------------------------------------------
    async def clip_for_alert(self, conn: asyncpg.Connection, alert_id: uuid.UUID) -> Clip | None:
        row = await conn.fetchrow(f"SELECT {_CLIP_COLUMNS} FROM clips WHERE alert_id = $1", alert_id)
        return None if row is None else _clip(row)

    async def clip(self, conn: asyncpg.Connection, clip_id: uuid.UUID) -> Clip | None:
        row = await conn.fetchrow(f"SELECT {_CLIP_COLUMNS} FROM clips WHERE id = $1", clip_id)
        return None if row is None else _clip(row)

    async def clip_dispatched_to(self, conn: asyncpg.Connection, clip_id: uuid.UUID, force_id: uuid.UUID) -> bool:
        """The clip's alert was sent to this force: the rule an officer's view of an alert follows (alerts'
        `dispatched_to`), applied to the clip by id."""
        return bool(await conn.fetchval(
            "SELECT true FROM clips c JOIN dispatches d ON d.tenant_id = c.tenant_id AND d.alert_id = c.alert_id "
            "WHERE c.id = $1 AND d.force_id = $2 LIMIT 1", clip_id, force_id))

    async def insert_clip(self, conn: asyncpg.Connection, clip: Clip, sources: list[dict[str, Any]],
                          created_by: uuid.UUID | None) -> Clip:
        row = await conn.fetchrow(
            f"INSERT INTO clips ({_CLIP_COLUMNS}, source_segments, created_by) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12) "
            f"ON CONFLICT (tenant_id, alert_id) DO NOTHING RETURNING {_CLIP_COLUMNS}",
            clip.id, clip.tenant_id, clip.camera_id, clip.alert_id, clip.start_at, clip.end_at, clip.object_key,
            clip.version_id, clip.sha256, clip.size_bytes, msgspec.json.encode(sources).decode(), created_by)
        if row is None:
            assert clip.alert_id is not None
            existing = await self.clip_for_alert(conn, clip.alert_id)
            assert existing is not None
            return existing
        return _clip(row)

    async def clips_between(self, conn: asyncpg.Connection, camera_id: uuid.UUID, start: datetime,
                            end: datetime) -> list[Clip]:
        rows = await conn.fetch(
            f"SELECT {_CLIP_COLUMNS} FROM clips WHERE camera_id = $1 AND end_at > $2 AND start_at < $3 "
            "ORDER BY start_at", camera_id, start, end)
        return [_clip(r) for r in rows]

    # -- requisitions, holds, exports ------------------------------------------------------------------------------
    async def insert_requisition(self, conn: asyncpg.Connection, req: Requisition) -> None:
        await conn.execute(
            "INSERT INTO requisitions (id, tenant_id, procedure_number, legal_frame, opj_name, opj_service, "
            "opj_contact, camera_ids, start_at, end_at, received_at, registered_by) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            req.id, req.tenant_id, req.procedure_number, req.legal_frame.value, req.opj_name, req.opj_service,
            req.opj_contact, req.camera_ids, req.start_at, req.end_at, req.received_at, req.registered_by)

    async def requisition(self, conn: asyncpg.Connection, requisition_id: uuid.UUID) -> Requisition | None:
        row = await conn.fetchrow(
            "SELECT q.*, r.released_at FROM requisitions q "
            "LEFT JOIN legal_hold_releases r ON r.requisition_id = q.id WHERE q.id = $1", requisition_id)
        if row is None:
            return None
        return Requisition(
            id=row["id"], tenant_id=row["tenant_id"], procedure_number=row["procedure_number"],
            legal_frame=LegalFrame(row["legal_frame"]), opj_name=row["opj_name"], opj_service=row["opj_service"],
            opj_contact=row["opj_contact"], camera_ids=list(row["camera_ids"]), start_at=row["start_at"],
            end_at=row["end_at"], received_at=row["received_at"], registered_by=row["registered_by"],
            released_at=row["released_at"])

    async def insert_hold(self, conn: asyncpg.Connection, *, tenant_id: uuid.UUID, requisition_id: uuid.UUID,
                          camera_id: uuid.UUID, recording_type: str, recording_id: uuid.UUID, object_key: str,
                          version_id: str | None, sha256: str) -> None:
        await conn.execute(
            "INSERT INTO legal_holds (id, tenant_id, requisition_id, camera_id, recording_type, recording_id, "
            "object_key, version_id, sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (requisition_id, recording_id) DO NOTHING",
            new_id(), tenant_id, requisition_id, camera_id, recording_type, recording_id, object_key, version_id,
            sha256)

    async def holds(self, conn: asyncpg.Connection, requisition_id: uuid.UUID) -> list[asyncpg.Record]:
        return list(await conn.fetch("SELECT * FROM legal_holds WHERE requisition_id = $1 ORDER BY object_key",
                                     requisition_id))

    async def other_active_holds(self, conn: asyncpg.Connection, recording_id: uuid.UUID,
                                 requisition_id: uuid.UUID) -> bool:
        """Another unreleased requisition also holds this recording (so releasing one must keep the lock)."""
        found: bool = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM legal_holds h WHERE h.recording_id = $1 AND h.requisition_id <> $2 "
            "AND NOT EXISTS (SELECT 1 FROM legal_hold_releases r WHERE r.requisition_id = h.requisition_id))",
            recording_id, requisition_id)
        return found

    async def insert_release(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, requisition_id: uuid.UUID,
                             released_by: uuid.UUID, reason: str) -> bool:
        inserted = await conn.fetchval(
            "INSERT INTO legal_hold_releases (id, tenant_id, requisition_id, released_by, reason) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (requisition_id) DO NOTHING RETURNING id",
            new_id(), tenant_id, requisition_id, released_by, reason)
        return inserted is not None

    async def insert_export(self, conn: asyncpg.Connection, *, export_id: uuid.UUID, tenant_id: uuid.UUID,
                            requisition_id: uuid.UUID, exported_by: uuid.UUID, exported_by_name: str,
                            object_key: str, version_id: str | None, package_sha256: str, manifest_sha256: str,
                            signing_key_id: str) -> None:
        await conn.execute(
            "INSERT INTO evidence_exports (id, tenant_id, requisition_id, exported_by, exported_by_name, "
            "object_key, version_id, package_sha256, manifest_sha256, signing_key_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            export_id, tenant_id, requisition_id, exported_by, exported_by_name, object_key, version_id,
            package_sha256, manifest_sha256, signing_key_id)

    async def export(self, conn: asyncpg.Connection, export_id: uuid.UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT e.*, t.transmitted_at, t.recipient FROM evidence_exports e "
            "LEFT JOIN export_transmissions t ON t.export_id = e.id WHERE e.id = $1", export_id)
        return row

    async def insert_transmission(self, conn: asyncpg.Connection, *, tenant_id: uuid.UUID, export_id: uuid.UUID,
                                  transmitted_at: datetime, recipient: str, recorded_by: uuid.UUID) -> bool:
        inserted = await conn.fetchval(
            "INSERT INTO export_transmissions (id, tenant_id, export_id, transmitted_at, recipient, recorded_by) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (export_id) DO NOTHING RETURNING id",
            new_id(), tenant_id, export_id, transmitted_at, recipient, recorded_by)
        return inserted is not None

    async def recorded_bytes(self, conn: asyncpg.Connection, camera_ids: Sequence[uuid.UUID], start: datetime,
                             end: datetime) -> tuple[int, int]:
        """Segments covering the interval on these cameras, and their total size (an export's estimate)."""
        row = await conn.fetchrow(
            "SELECT count(*) AS segments, coalesce(sum(size_bytes), 0) AS bytes FROM recording_segments "
            "WHERE camera_id = ANY ($1::uuid[]) AND end_at > $2 AND start_at < $3", list(camera_ids), start, end)
        assert row is not None
        return int(row["segments"]), int(row["bytes"])

    # -- export jobs: requested by the API (runtime role), built by the recorders' process (department role) ----
    async def insert_export_job(self, conn: asyncpg.Connection, *, job_id: uuid.UUID, tenant_id: uuid.UUID,
                                requisition_id: uuid.UUID, requested_by: uuid.UUID, requested_by_name: str,
                                requested_by_role: str, motive: str, estimated_bytes: int,
                                size_cap_bytes: int) -> ExportJob:
        row: asyncpg.Record | None = await conn.fetchrow(
            "INSERT INTO evidence_export_jobs (id, tenant_id, requisition_id, requested_by, requested_by_name, "
            "requested_by_role, motive, estimated_bytes, size_cap_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "RETURNING *", job_id, tenant_id, requisition_id, requested_by, requested_by_name, requested_by_role,
            motive, estimated_bytes, size_cap_bytes)
        assert row is not None
        return export_job(row)

    async def export_job(self, conn: asyncpg.Connection, job_id: uuid.UUID) -> ExportJob | None:
        row = await conn.fetchrow("SELECT * FROM evidence_export_jobs WHERE id = $1", job_id)
        return None if row is None else export_job(row)

    async def claim_export_job(self, conn: asyncpg.Connection, holder: str, ttl_s: float,
                               max_attempts: int) -> asyncpg.Record | None:
        """The oldest queued job, or one whose builder's claim lapsed; jobs out of attempts are failed first."""
        await conn.execute(
            "UPDATE evidence_export_jobs SET status = 'failed', finished_at = now(), claimed_by = NULL, "
            "error = 'the export could not be built after ' || attempts || ' attempts' "
            "WHERE status = 'building' AND claim_expires_at < now() AND attempts >= $1", max_attempts)
        row: asyncpg.Record | None = await conn.fetchrow(
            "UPDATE evidence_export_jobs SET status = 'building', claimed_by = $1, attempts = attempts + 1, "
            "  claim_expires_at = now() + make_interval(secs => $2), started_at = coalesce(started_at, now()) "
            "WHERE id = (SELECT id FROM evidence_export_jobs WHERE status = 'queued' "
            "  OR (status = 'building' AND claim_expires_at < now()) "
            "  ORDER BY requested_at FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *", holder, ttl_s)
        return row

    async def renew_export_claim(self, conn: asyncpg.Connection, job_id: uuid.UUID, holder: str,
                                 ttl_s: float) -> bool:
        return bool(await conn.fetchval(
            "UPDATE evidence_export_jobs SET claim_expires_at = now() + make_interval(secs => $3) "
            "WHERE id = $1 AND claimed_by = $2 AND status = 'building' RETURNING true", job_id, holder, ttl_s))

    async def finish_export_job(self, conn: asyncpg.Connection, job_id: uuid.UUID, holder: str, *, status: str,
                                export_id: uuid.UUID | None = None, package_sha256: str | None = None,
                                package_bytes: int | None = None, files: int | None = None,
                                signing_key_id: str | None = None, error: str | None = None) -> bool:
        """Settle a job this builder still holds; false when its claim was lost (another builder owns it now)."""
        return bool(await conn.fetchval(
            "UPDATE evidence_export_jobs SET status = $3, export_id = $4, package_sha256 = $5, package_bytes = $6, "
            "files = $7, signing_key_id = $8, error = $9, finished_at = now(), claimed_by = NULL, "
            "claim_expires_at = NULL WHERE id = $1 AND claimed_by = $2 AND status = 'building' RETURNING true",
            job_id, holder, status, export_id, package_sha256, package_bytes, files, signing_key_id,
            None if error is None else error[:1000]))
