"""All SQL of the detection domain ($n parameters only); callers pass a connection already scoped or department-wide."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import asyncpg


def _json(row: asyncpg.Record, column: str) -> Any:
    value = row[column]
    return json.loads(value) if isinstance(value, str) else value


class DetectionRepository:
    """Zones, rules, plans and metering; stateless, so one instance serves every connection."""

    # Cameras and their legal bases (tables owned by the foundation, read here) ------------------------

    async def camera_tenant(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> uuid.UUID | None:
        value = await conn.fetchval("SELECT tenant_id FROM cameras WHERE id = $1", camera_id)
        return None if value is None else uuid.UUID(str(value))

    async def active_cameras(self, conn: asyncpg.Connection, today: date) -> list[asyncpg.Record]:
        """Enabled cameras with a prefectoral authorisation current `today`: without one, no analytics run."""
        return list(await conn.fetch(
            "SELECT id, tenant_id, name, main_stream_url, sub_stream_url, credentials_sealed, expected_fps, "
            "privacy_masks::text AS privacy_masks "
            "FROM cameras WHERE status <> 'disabled' AND camera_authorised(tenant_id, id, $1) "
            "ORDER BY tenant_id, id", today))

    async def legal_bases(self, conn: asyncpg.Connection, camera_ids: Sequence[uuid.UUID] | None = None,
                          ) -> list[asyncpg.Record]:
        """Authorised event types with the window where both the type and its authorisation are valid. Only an
        authorisation the department recorded gives a legal basis (migration 0090: those a tenant admin recorded
        for their own camera before do not)."""
        return list(await conn.fetch(
            "SELECT a.camera_id, e.event_type, greatest(a.valid_from, e.valid_from) AS valid_from, "
            "least(a.valid_until, e.valid_until) AS valid_until "
            "FROM authorised_event_types e "
            "JOIN camera_authorisations a ON a.tenant_id = e.tenant_id AND a.id = e.authorisation_id "
            "WHERE a.department_recorded AND ($1::uuid[] IS NULL OR a.camera_id = ANY ($1::uuid[]))",
            None if camera_ids is None else list(camera_ids)))

    # Zones ---------------------------------------------------------------------------------------------

    async def insert_zone(self, conn: asyncpg.Connection, *, zone_id: uuid.UUID, tenant_id: uuid.UUID,
                          camera_id: uuid.UUID, name: str, kind: str, points: Sequence[Sequence[float]],
                          ) -> asyncpg.Record:
        row = await conn.fetchrow(
            "INSERT INTO detection_zones (id, tenant_id, camera_id, name, kind, points) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id, tenant_id, camera_id, name, kind, points",
            zone_id, tenant_id, camera_id, name, kind, json.dumps([list(p) for p in points]))
        assert row is not None
        return row

    async def update_zone(self, conn: asyncpg.Connection, zone_id: uuid.UUID, *, name: str, kind: str,
                          points: Sequence[Sequence[float]]) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            "UPDATE detection_zones SET name = $2, kind = $3, points = $4::jsonb, updated_at = now() "
            "WHERE id = $1 RETURNING id, tenant_id, camera_id, name, kind, points",
            zone_id, name, kind, json.dumps([list(p) for p in points]))
        return row

    async def zone(self, conn: asyncpg.Connection, zone_id: uuid.UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT id, tenant_id, camera_id, name, kind, points FROM detection_zones WHERE id = $1", zone_id)
        return row

    async def zones(self, conn: asyncpg.Connection, camera_ids: Sequence[uuid.UUID] | None = None,
                    ) -> list[asyncpg.Record]:
        return list(await conn.fetch(
            "SELECT id, tenant_id, camera_id, name, kind, points FROM detection_zones "
            "WHERE $1::uuid[] IS NULL OR camera_id = ANY ($1::uuid[]) ORDER BY camera_id, name",
            None if camera_ids is None else list(camera_ids)))

    async def delete_zone(self, conn: asyncpg.Connection, zone_id: uuid.UUID) -> bool:
        result = await conn.execute("DELETE FROM detection_zones WHERE id = $1", zone_id)
        return str(result).endswith(" 1")

    # Rules ---------------------------------------------------------------------------------------------

    async def insert_rule(self, conn: asyncpg.Connection, *, rule_id: uuid.UUID, tenant_id: uuid.UUID,
                          camera_id: uuid.UUID, zone_id: uuid.UUID | None, rule_type: str, params: dict[str, Any],
                          enabled: bool) -> asyncpg.Record:
        row = await conn.fetchrow(
            "INSERT INTO detection_rules (id, tenant_id, camera_id, zone_id, rule_type, params, enabled) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) "
            "RETURNING id, tenant_id, camera_id, zone_id, rule_type, params, enabled, disabled_reason",
            rule_id, tenant_id, camera_id, zone_id, rule_type, json.dumps(params), enabled)
        assert row is not None
        return row

    async def update_rule(self, conn: asyncpg.Connection, rule_id: uuid.UUID, *, zone_id: uuid.UUID | None,
                          params: dict[str, Any], enabled: bool) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            "UPDATE detection_rules SET zone_id = $2, params = $3::jsonb, enabled = $4, disabled_reason = NULL, "
            "updated_at = now() WHERE id = $1 "
            "RETURNING id, tenant_id, camera_id, zone_id, rule_type, params, enabled, disabled_reason",
            rule_id, zone_id, json.dumps(params), enabled)
        return row

    async def rule(self, conn: asyncpg.Connection, rule_id: uuid.UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT id, tenant_id, camera_id, zone_id, rule_type, params, enabled, disabled_reason "
            "FROM detection_rules WHERE id = $1", rule_id)
        return row

    async def rules(self, conn: asyncpg.Connection, camera_ids: Sequence[uuid.UUID] | None = None, *,
                    enabled_only: bool = False) -> list[asyncpg.Record]:
        return list(await conn.fetch(
            "SELECT id, tenant_id, camera_id, zone_id, rule_type, params, enabled, disabled_reason "
            "FROM detection_rules "
            "WHERE ($1::uuid[] IS NULL OR camera_id = ANY ($1::uuid[])) AND (NOT $2 OR enabled) "
            "ORDER BY camera_id, created_at, id",
            None if camera_ids is None else list(camera_ids), enabled_only))

    async def delete_rule(self, conn: asyncpg.Connection, rule_id: uuid.UUID) -> bool:
        result = await conn.execute("DELETE FROM detection_rules WHERE id = $1", rule_id)
        return str(result).endswith(" 1")

    async def switch_off_rules(self, conn: asyncpg.Connection, reasons: dict[uuid.UUID, str]) -> list[uuid.UUID]:
        """Disable rules with the reason shown to their owners; returns those that were still enabled."""
        if not reasons:
            return []
        rows = await conn.fetch(
            "UPDATE detection_rules r SET enabled = false, disabled_reason = x.reason, updated_at = now() "
            "FROM unnest($1::uuid[], $2::text[]) AS x(id, reason) WHERE r.id = x.id AND r.enabled RETURNING r.id",
            list(reasons), list(reasons.values()))
        return [uuid.UUID(str(r["id"])) for r in rows]

    # Plans and metering ---------------------------------------------------------------------------------

    async def plans(self, conn: asyncpg.Connection) -> dict[uuid.UUID, str]:
        rows = await conn.fetch("SELECT tenant_id, plan FROM detection_plans")
        return {uuid.UUID(str(r["tenant_id"])): str(r["plan"]) for r in rows}

    async def upsert_plan(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, plan: str) -> None:
        await conn.execute(
            "INSERT INTO detection_plans (tenant_id, plan) VALUES ($1, $2) "
            "ON CONFLICT (tenant_id) DO UPDATE SET plan = EXCLUDED.plan, updated_at = now()", tenant_id, plan)

    async def add_usage(self, conn: asyncpg.Connection, day: date,
                        rows: Iterable[tuple[uuid.UUID, float, int]]) -> None:
        await conn.executemany(
            "INSERT INTO detector_usage (tenant_id, day, detector_seconds, frames) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (tenant_id, day) DO UPDATE SET "
            "detector_seconds = detector_usage.detector_seconds + EXCLUDED.detector_seconds, "
            "frames = detector_usage.frames + EXCLUDED.frames, updated_at = now()",
            [(tenant, day, seconds, frames) for tenant, seconds, frames in rows])

    async def usage(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, since: date, until: date,
                    ) -> list[asyncpg.Record]:
        return list(await conn.fetch(
            "SELECT day, detector_seconds, frames FROM detector_usage "
            "WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day", tenant_id, since, until))

    # -- detector leases (department role): the workers share the cameras ----------------------------------------
    async def detector_lease_round(self, conn: asyncpg.Connection, detector_id: str, host: str, pid: int,
                                   ttl_s: float) -> tuple[int, set[uuid.UUID], dict[uuid.UUID, str]]:
        """Heartbeat this worker, forget long-dead ones, renew its live leases; returns the live workers (this one
        included), the leases renewed and every live lease's holder."""
        await conn.execute(
            "INSERT INTO detector_instances (id, host, pid) VALUES ($1, $2, $3) "
            "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()", detector_id, host, pid)
        await conn.execute("DELETE FROM detector_instances WHERE heartbeat_at < now() - make_interval(secs => $1 * 4)",
                           ttl_s)
        held = await conn.fetch(
            "UPDATE detector_leases SET expires_at = now() + make_interval(secs => $2) "
            "WHERE holder = $1 AND expires_at >= now() RETURNING camera_id", detector_id, ttl_s)
        live = await conn.fetchval(
            "SELECT count(*) FROM detector_instances WHERE heartbeat_at >= now() - make_interval(secs => $1)", ttl_s)
        holders = await conn.fetch("SELECT camera_id, holder FROM detector_leases WHERE expires_at >= now()")
        return (max(1, int(live)), {r["camera_id"] for r in held},
                {r["camera_id"]: r["holder"] for r in holders})

    async def acquire_detector_lease(self, conn: asyncpg.Connection, holder: str, tenant_id: uuid.UUID,
                                     camera_id: uuid.UUID, ttl_s: float) -> bool:
        """Take a free or expired lease (or keep ours); false when another live worker holds it."""
        got = await conn.fetchval(
            "INSERT INTO detector_leases (camera_id, tenant_id, holder, expires_at) "
            "VALUES ($1, $2, $3, now() + make_interval(secs => $4)) "
            "ON CONFLICT (camera_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at, "
            "  acquired_at = CASE WHEN detector_leases.holder = EXCLUDED.holder THEN detector_leases.acquired_at "
            "                     ELSE now() END "
            "WHERE detector_leases.holder = EXCLUDED.holder OR detector_leases.expires_at < now() "
            "RETURNING holder", camera_id, tenant_id, holder, ttl_s)
        return bool(got == holder)

    async def release_detector_leases(self, conn: asyncpg.Connection, holder: str,
                                      camera_ids: Sequence[uuid.UUID] | None = None) -> None:
        """Release some leases of this worker, or all of them and its instance row (a clean stop)."""
        if camera_ids is None:
            await conn.execute("DELETE FROM detector_leases WHERE holder = $1", holder)
            await conn.execute("DELETE FROM detector_instances WHERE id = $1", holder)
        else:
            await conn.execute("DELETE FROM detector_leases WHERE holder = $1 AND camera_id = ANY ($2::uuid[])",
                               holder, list(camera_ids))
