"""SQL of the auditor's desk; every query runs in the caller's transaction, so row-level security scopes it."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from journal.desk.model import AuditLine, DestructionRow, ExportRow, RequisitionRow
from journal.model import JournalEntry, JournalFilter
from journal.repository import FILTER_SQL, filter_arguments

_ENTRY = ("j.tenant_id, j.position, j.id, j.occurred_at, j.actor_user_id, j.actor_role, j.action, j.target_type, "
          "j.target_id, j.camera_id, j.range_start, j.range_end, j.motive, j.recipient, j.details, j.prev_hash, "
          "j.hash")


class AuditRepository:
    async def journal_lines(self, conn: asyncpg.Connection, search: JournalFilter, *, after: uuid.UUID | None,
                            limit: int) -> list[AuditLine]:
        rows = await conn.fetch(
            "SELECT j.id, j.tenant_id, t.name AS tenant_name, j.position, j.occurred_at, j.actor_user_id, "
            "u.display_name AS actor_name, j.actor_role, j.action, j.target_type, j.target_id, j.camera_id, "
            "c.name AS camera_name, j.range_start, j.range_end, j.motive, j.recipient, j.details, "
            "encode(j.hash, 'hex') AS hash "
            "FROM access_journal j JOIN tenants t ON t.id = j.tenant_id "
            "LEFT JOIN users u ON u.id = j.actor_user_id "
            "LEFT JOIN cameras c ON c.tenant_id = j.tenant_id AND c.id = j.camera_id "
            f"WHERE {FILTER_SQL} AND ($9::uuid IS NULL OR j.id < $9) ORDER BY j.id DESC LIMIT $10",
            *filter_arguments(search), after, limit)
        return [AuditLine(**dict(r)) for r in rows]

    async def chain_heads(self, conn: asyncpg.Connection) -> dict[uuid.UUID, tuple[str, int, bytes | None]]:
        """Every chain in scope: the commune's name, the head's position and hash (None when the head row is
        missing although lines exist)."""
        rows = await conn.fetch(
            "SELECT t.id, t.name, h.position, h.hash FROM tenants t "
            "LEFT JOIN journal_heads h ON h.tenant_id = t.id "
            "WHERE t.id = ANY (app_scope()) AND (h.position > 0 OR EXISTS "
            "  (SELECT 1 FROM access_journal j WHERE j.tenant_id = t.id)) ORDER BY t.name")
        return {r["id"]: (r["name"], -1 if r["position"] is None else int(r["position"]),
                          None if r["hash"] is None else bytes(r["hash"])) for r in rows}

    async def chain_lines(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, first: int,
                          limit: int) -> list[JournalEntry]:
        rows = await conn.fetch(
            f"SELECT {_ENTRY} FROM access_journal j WHERE j.tenant_id = $1 AND j.position >= $2 "
            "ORDER BY j.position LIMIT $3", tenant_id, first, limit)
        return [JournalEntry(**{**dict(r), "prev_hash": bytes(r["prev_hash"]), "hash": bytes(r["hash"])})
                for r in rows]

    async def line_hash(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, position: int) -> bytes | None:
        value = await conn.fetchval("SELECT hash FROM access_journal WHERE tenant_id = $1 AND position = $2",
                                    tenant_id, position)
        return None if value is None else bytes(value)

    async def destructions(self, conn: asyncpg.Connection, since: datetime | None, until: datetime | None,
                           after: uuid.UUID | None, limit: int) -> list[DestructionRow]:
        rows = await conn.fetch(
            "SELECT d.id, d.tenant_id, t.name AS tenant_name, d.camera_id, c.name AS camera_name, d.recording_type, "
            "d.start_at, d.end_at, d.sha256, d.size_bytes, d.retention_days, d.due_at, d.destroyed_at, d.method "
            "FROM destruction_register d JOIN tenants t ON t.id = d.tenant_id "
            "LEFT JOIN cameras c ON c.tenant_id = d.tenant_id AND c.id = d.camera_id "
            "WHERE ($1::timestamptz IS NULL OR d.destroyed_at >= $1) AND ($2::timestamptz IS NULL OR "
            "d.destroyed_at < $2) AND ($3::uuid IS NULL OR d.id < $3) ORDER BY d.id DESC LIMIT $4",
            since, until, after, limit)
        return [DestructionRow(**dict(r)) for r in rows]

    async def requisitions(self, conn: asyncpg.Connection, since: datetime | None, until: datetime | None,
                           after: uuid.UUID | None, limit: int) -> list[RequisitionRow]:
        rows = await conn.fetch(
            "SELECT r.id, r.tenant_id, t.name AS tenant_name, r.procedure_number, r.legal_frame, r.opj_name, "
            "r.opj_service, ARRAY(SELECT c.name FROM cameras c WHERE c.tenant_id = r.tenant_id "
            "  AND c.id = ANY (r.camera_ids) ORDER BY c.name) AS camera_names, "
            "r.start_at, r.end_at, r.received_at, r.created_at AS registered_at, "
            "u.display_name AS registered_by_name, "
            "(SELECT count(*) FROM legal_holds h WHERE h.requisition_id = r.id)::int AS holds, "
            "rel.released_at, rel.reason AS release_reason "
            "FROM requisitions r JOIN tenants t ON t.id = r.tenant_id "
            "LEFT JOIN users u ON u.id = r.registered_by "
            "LEFT JOIN legal_hold_releases rel ON rel.requisition_id = r.id "
            "WHERE ($1::timestamptz IS NULL OR r.created_at >= $1) AND ($2::timestamptz IS NULL OR "
            "r.created_at < $2) AND ($3::uuid IS NULL OR r.id < $3) ORDER BY r.id DESC LIMIT $4",
            since, until, after, limit)
        return [RequisitionRow(**{**dict(r), "camera_names": list(r["camera_names"])}) for r in rows]

    async def exports(self, conn: asyncpg.Connection, since: datetime | None, until: datetime | None,
                      after: uuid.UUID | None, limit: int, *, transmitted_only: bool = False) -> list[ExportRow]:
        # The export register is dated by the export; the transmission register by the handing over.
        day = "x.transmitted_at" if transmitted_only else "e.created_at"
        rows = await conn.fetch(
            "SELECT e.id, e.tenant_id, t.name AS tenant_name, e.requisition_id, r.procedure_number, "
            "e.exported_by_name, e.created_at AS exported_at, e.package_sha256, e.manifest_sha256, "
            "e.signing_key_id, x.transmitted_at, x.recipient, x.recorded_at AS transmission_recorded_at "
            "FROM evidence_exports e JOIN tenants t ON t.id = e.tenant_id "
            "JOIN requisitions r ON r.tenant_id = e.tenant_id AND r.id = e.requisition_id "
            "LEFT JOIN export_transmissions x ON x.tenant_id = e.tenant_id AND x.export_id = e.id "
            f"WHERE ($1::timestamptz IS NULL OR {day} >= $1) AND ($2::timestamptz IS NULL OR {day} < $2) "
            "AND ($3::uuid IS NULL OR e.id < $3) AND (NOT $5 OR x.id IS NOT NULL) ORDER BY e.id DESC LIMIT $4",
            since, until, after, limit, transmitted_only)
        return [ExportRow(**dict(r)) for r in rows]

