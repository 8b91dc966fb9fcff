"""SQL of the tenancy domain; every query runs inside the caller's tenant transaction (RLS applies)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from tenants.model import (
    Authorisation,
    AuthorisedEventType,
    Camera,
    Commune,
    Force,
    OrderScan,
    PrivacyMask,
    Site,
    Tenant,
)

_TENANT = (
    "id, department_id, kind, name, insee_code, siren, subscription_status, live_supervision, "
    "municipal_police_opt_in, retention_days, created_at, updated_at"
)
_SITE = "id, tenant_id, name, kind, address, insee_code, latitude, longitude, created_at, updated_at"
_CAMERA = (
    "id, tenant_id, site_id, name, main_stream_url, sub_stream_url, credentials_sealed IS NOT NULL AS "
    "has_credentials, insee_code, latitude, longitude, status, privacy_masks, created_at, updated_at, live_transcode, "
    "privacy_masks_version, expected_fps::float8 AS expected_fps, expected_bitrate_kbps"
)
_AUTH = (
    "a.id, a.tenant_id, a.camera_id, a.prefectoral_order_number, a.purposes, a.max_retention_days, "
    "a.min_retention_days, a.valid_from, a.valid_until, a.authorised_viewers, a.created_at, a.recorded_by, "
    "a.department_recorded, a.order_scan_sha256, a.order_scan_size, a.order_scan_uploaded_at, "
    "a.order_scan_uploaded_by, "
    "coalesce((SELECT json_agg(json_build_object('event_type', e.event_type, 'legal_basis', e.legal_basis, "
    "'valid_from', e.valid_from, 'valid_until', e.valid_until) ORDER BY e.event_type) "
    "FROM authorised_event_types e WHERE e.authorisation_id = a.id), '[]') AS event_types"
)
_FORCE = (
    "f.id, f.department_id, f.kind, f.name, f.tenant_id, f.phone, f.created_at, "
    "coalesce((SELECT array_agg(fc.insee_code ORDER BY fc.insee_code) FROM force_communes fc "
    "WHERE fc.force_id = f.id), '{}') AS communes"
)


def _tenant(r: asyncpg.Record) -> Tenant:
    return Tenant(**dict(r))


def _site(r: asyncpg.Record) -> Site:
    return Site(**dict(r))


def _camera(r: asyncpg.Record) -> Camera:
    data = dict(r)
    data["privacy_masks"] = msgspec.json.decode(data["privacy_masks"], type=list[PrivacyMask])
    return Camera(**data)


def _authorisation(r: asyncpg.Record) -> Authorisation:
    data = dict(r)
    data["event_types"] = msgspec.json.decode(data["event_types"], type=list[AuthorisedEventType])
    data["purposes"] = list(data["purposes"])
    sha256, size = data.pop("order_scan_sha256"), data.pop("order_scan_size")
    uploaded_at, uploaded_by = data.pop("order_scan_uploaded_at"), data.pop("order_scan_uploaded_by")
    if sha256 is not None:
        data["order_scan"] = OrderScan(sha256=sha256, size_bytes=size, uploaded_at=uploaded_at,
                                       uploaded_by=uploaded_by)
    return Authorisation(**data)


def _force(r: asyncpg.Record) -> Force:
    data = dict(r)
    data["communes"] = list(data["communes"])
    return Force(**data)


def _insert(table: str, values: dict[str, Any], returning: str | None = None) -> str:
    """An INSERT with one $n per value; column names come from code, never from input."""
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    tail = f" RETURNING {returning}" if returning else ""
    return f"INSERT INTO {table} ({', '.join(values)}) VALUES ({placeholders}){tail}"


def _assignments(values: dict[str, Any], start: int) -> tuple[str, list[Any]]:
    columns = list(values)
    sql = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start))
    return sql, [values[c] for c in columns]


class TenancyRepository:
    """All SQL of tenants, sites, cameras, authorisations, forces and communes."""

    # --- communes
    async def commune(self, conn: asyncpg.Connection, insee_code: str) -> Commune | None:
        r = await conn.fetchrow(
            "SELECT insee_code, name, department_code FROM communes WHERE insee_code = $1", insee_code
        )
        return None if r is None else Commune(**dict(r))

    async def communes(self, conn: asyncpg.Connection, department_code: str | None) -> list[Commune]:
        rows = await conn.fetch(
            "SELECT insee_code, name, department_code FROM communes "
            "WHERE $1::text IS NULL OR department_code = $1 ORDER BY insee_code",
            department_code,
        )
        return [Commune(**dict(r)) for r in rows]

    # --- tenants
    async def tenants(self, conn: asyncpg.Connection, after: uuid.UUID | None, limit: int) -> list[Tenant]:
        rows = await conn.fetch(
            f"SELECT {_TENANT} FROM tenants WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2", after, limit
        )
        return [_tenant(r) for r in rows]

    async def tenant(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> Tenant | None:
        r = await conn.fetchrow(f"SELECT {_TENANT} FROM tenants WHERE id = $1", tenant_id)
        return None if r is None else _tenant(r)

    async def insert_tenant(self, conn: asyncpg.Connection, values: dict[str, Any]) -> Tenant:
        r = await conn.fetchrow(_insert("tenants", values, _TENANT), *values.values())
        assert r is not None
        return _tenant(r)

    async def update_tenant(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, values: dict[str, Any]
    ) -> Tenant | None:
        sql, args = _assignments(values, 2)
        r = await conn.fetchrow(
            f"UPDATE tenants SET {sql}, updated_at = now() WHERE id = $1 RETURNING {_TENANT}", tenant_id, *args
        )
        return None if r is None else _tenant(r)

    # --- sites
    async def sites(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
    ) -> list[Site]:
        rows = await conn.fetch(
            f"SELECT {_SITE} FROM sites WHERE ($1::uuid IS NULL OR tenant_id = $1) "
            "AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
            tenant_id,
            after,
            limit,
        )
        return [_site(r) for r in rows]

    async def site(self, conn: asyncpg.Connection, site_id: uuid.UUID) -> Site | None:
        r = await conn.fetchrow(f"SELECT {_SITE} FROM sites WHERE id = $1", site_id)
        return None if r is None else _site(r)

    async def insert_site(self, conn: asyncpg.Connection, values: dict[str, Any]) -> Site:
        r = await conn.fetchrow(_insert("sites", values, _SITE), *values.values())
        assert r is not None
        return _site(r)

    async def update_site(self, conn: asyncpg.Connection, site_id: uuid.UUID, values: dict[str, Any]) -> Site | None:
        sql, args = _assignments(values, 2)
        r = await conn.fetchrow(
            f"UPDATE sites SET {sql}, updated_at = now() WHERE id = $1 RETURNING {_SITE}", site_id, *args
        )
        return None if r is None else _site(r)

    async def delete_site(self, conn: asyncpg.Connection, site_id: uuid.UUID) -> bool:
        return bool(await conn.fetchval("DELETE FROM sites WHERE id = $1 RETURNING true", site_id))

    async def site_has_cameras(self, conn: asyncpg.Connection, site_id: uuid.UUID) -> bool:
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM cameras WHERE site_id = $1)", site_id))

    # --- cameras
    async def cameras(
        self,
        conn: asyncpg.Connection,
        tenant_id: uuid.UUID | None,
        site_id: uuid.UUID | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[Camera]:
        rows = await conn.fetch(
            f"SELECT {_CAMERA} FROM cameras WHERE ($1::uuid IS NULL OR tenant_id = $1) "
            "AND ($2::uuid IS NULL OR site_id = $2) AND ($3::uuid IS NULL OR id > $3) ORDER BY id LIMIT $4",
            tenant_id,
            site_id,
            after,
            limit,
        )
        return [_camera(r) for r in rows]

    async def camera(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> Camera | None:
        r = await conn.fetchrow(f"SELECT {_CAMERA} FROM cameras WHERE id = $1", camera_id)
        return None if r is None else _camera(r)

    async def insert_camera(self, conn: asyncpg.Connection, values: dict[str, Any]) -> Camera:
        r = await conn.fetchrow(_insert("cameras", values, _CAMERA), *values.values())
        assert r is not None
        return _camera(r)

    async def update_camera(
        self, conn: asyncpg.Connection, camera_id: uuid.UUID, values: dict[str, Any]
    ) -> Camera | None:
        sql, args = _assignments(values, 2)
        r = await conn.fetchrow(
            f"UPDATE cameras SET {sql}, updated_at = now() WHERE id = $1 RETURNING {_CAMERA}", camera_id, *args
        )
        return None if r is None else _camera(r)

    async def delete_camera(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> bool:
        return bool(await conn.fetchval("DELETE FROM cameras WHERE id = $1 RETURNING true", camera_id))

    # --- authorisations
    async def authorisations(self, conn: asyncpg.Connection, camera_id: uuid.UUID) -> list[Authorisation]:
        rows = await conn.fetch(
            f"SELECT {_AUTH} FROM camera_authorisations a WHERE a.camera_id = $1 ORDER BY a.valid_from DESC, a.id",
            camera_id,
        )
        return [_authorisation(r) for r in rows]

    async def authorisation_windows(self, conn: asyncpg.Connection, tenant_id: uuid.UUID | None,
                                    ) -> list[asyncpg.Record]:
        """Every enabled camera in scope with the windows of the authorisations the department recorded (the ones
        that give a legal basis), latest order first."""
        return list(await conn.fetch(
            "SELECT c.id AS camera_id, c.tenant_id, c.name, coalesce(array_agg(a.valid_from ORDER BY a.valid_from) "
            "  FILTER (WHERE a.id IS NOT NULL), '{}') AS valid_from, "
            "coalesce(array_agg(a.valid_until ORDER BY a.valid_from) FILTER (WHERE a.id IS NOT NULL), '{}') "
            "  AS valid_until, "
            "(array_agg(a.prefectoral_order_number ORDER BY a.valid_until DESC) FILTER (WHERE a.id IS NOT NULL))[1] "
            "  AS latest_order "
            "FROM cameras c LEFT JOIN camera_authorisations a "
            "  ON a.tenant_id = c.tenant_id AND a.camera_id = c.id AND a.department_recorded "
            "WHERE c.status <> 'disabled' AND ($1::uuid IS NULL OR c.tenant_id = $1) "
            "GROUP BY c.id, c.tenant_id, c.name ORDER BY c.tenant_id, c.name", tenant_id))

    async def authorisation(self, conn: asyncpg.Connection, authorisation_id: uuid.UUID) -> Authorisation | None:
        r = await conn.fetchrow(f"SELECT {_AUTH} FROM camera_authorisations a WHERE a.id = $1", authorisation_id)
        return None if r is None else _authorisation(r)

    async def insert_authorisation(self, conn: asyncpg.Connection, values: dict[str, Any]) -> uuid.UUID:
        await conn.execute(_insert("camera_authorisations", values), *values.values())
        return uuid.UUID(str(values["id"]))

    async def order_scan_object(self, conn: asyncpg.Connection,
                                authorisation_id: uuid.UUID) -> tuple[str, str | None] | None:
        """Where the filed scan lives (object key, version), if one was filed."""
        r = await conn.fetchrow(
            "SELECT order_scan_key, order_scan_version_id FROM camera_authorisations WHERE id = $1 "
            "AND order_scan_key IS NOT NULL", authorisation_id)
        return None if r is None else (r["order_scan_key"], r["order_scan_version_id"])

    async def set_order_scan(self, conn: asyncpg.Connection, authorisation_id: uuid.UUID, *, key: str,
                             version_id: str | None, sha256: str, size: int, uploaded_by: uuid.UUID) -> bool:
        return bool(await conn.fetchval(
            "UPDATE camera_authorisations SET order_scan_key = $2, order_scan_version_id = $3, "
            "order_scan_sha256 = $4, order_scan_size = $5, order_scan_uploaded_at = now(), "
            "order_scan_uploaded_by = $6 WHERE id = $1 RETURNING true",
            authorisation_id, key, version_id, sha256, size, uploaded_by))

    async def upsert_event_type(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO authorised_event_types (id, tenant_id, authorisation_id, event_type, legal_basis, valid_from,"
            " valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (authorisation_id, event_type) DO UPDATE"
            " SET legal_basis = EXCLUDED.legal_basis, valid_from = EXCLUDED.valid_from,"
            " valid_until = EXCLUDED.valid_until",
            values["id"],
            values["tenant_id"],
            values["authorisation_id"],
            values["event_type"],
            values["legal_basis"],
            values["valid_from"],
            values["valid_until"],
        )

    async def delete_event_type(self, conn: asyncpg.Connection, authorisation_id: uuid.UUID, event_type: str) -> bool:
        return bool(
            await conn.fetchval(
                "DELETE FROM authorised_event_types WHERE authorisation_id = $1 AND event_type = $2 RETURNING true",
                authorisation_id,
                event_type,
            )
        )

    # --- forces
    async def forces(self, conn: asyncpg.Connection, after: uuid.UUID | None, limit: int) -> list[Force]:
        rows = await conn.fetch(
            f"SELECT {_FORCE} FROM forces f WHERE $1::uuid IS NULL OR f.id > $1 ORDER BY f.id LIMIT $2", after, limit
        )
        return [_force(r) for r in rows]

    async def force(self, conn: asyncpg.Connection, force_id: uuid.UUID) -> Force | None:
        r = await conn.fetchrow(f"SELECT {_FORCE} FROM forces f WHERE f.id = $1", force_id)
        return None if r is None else _force(r)

    async def insert_force(self, conn: asyncpg.Connection, values: dict[str, Any]) -> None:
        await conn.execute(_insert("forces", values), *values.values())

    async def update_force(self, conn: asyncpg.Connection, force_id: uuid.UUID, values: dict[str, Any]) -> bool:
        if not values:
            return bool(await conn.fetchval("SELECT true FROM forces WHERE id = $1", force_id))
        sql, args = _assignments(values, 2)
        return bool(await conn.fetchval(f"UPDATE forces SET {sql} WHERE id = $1 RETURNING true", force_id, *args))

    async def set_force_communes(
        self, conn: asyncpg.Connection, force_id: uuid.UUID, department_id: uuid.UUID, insee_codes: list[str]
    ) -> None:
        await conn.execute("DELETE FROM force_communes WHERE force_id = $1", force_id)
        await conn.executemany(
            "INSERT INTO force_communes (force_id, insee_code, department_id) VALUES ($1, $2, $3)",
            [(force_id, code, department_id) for code in insee_codes],
        )

    async def upsert_communes(self, conn: asyncpg.Connection, communes: list[Commune]) -> int:
        """Load the official list (department role): names follow the newest COG."""
        await conn.executemany(
            "INSERT INTO communes (insee_code, name, department_code) VALUES ($1, $2, $3) "
            "ON CONFLICT (insee_code) DO UPDATE SET name = EXCLUDED.name, department_code = EXCLUDED.department_code",
            [(c.insee_code, c.name, c.department_code) for c in communes],
        )
        return len(communes)

    async def department_by_code(self, conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
        return await conn.fetchrow("SELECT id, code, name FROM departments WHERE code = $1", code)

    async def insert_department(self, conn: asyncpg.Connection, department_id: uuid.UUID, code: str, name: str) -> None:
        await conn.execute("INSERT INTO departments (id, code, name) VALUES ($1, $2, $3)", department_id, code, name)
