"""All SQL of the department's camera networks (the allow-list a camera's stream address must fall in)."""

from __future__ import annotations

import uuid

import asyncpg

from core.ids import new_id
from tenants.model import CameraNetwork
from tenants.rules import Network


def _network(r: asyncpg.Record) -> CameraNetwork:
    return CameraNetwork(network=str(r["network"]), label=r["label"], created_at=r["created_at"])


class CameraNetworkRepository:
    """Reads under the caller's scope (row-level security: the department's principals, and its tenants' admins)."""

    async def of_department(self, conn: asyncpg.Connection, department_id: uuid.UUID) -> list[CameraNetwork]:
        rows = await conn.fetch(
            "SELECT network, label, created_at FROM camera_networks WHERE department_id = $1 ORDER BY network",
            department_id)
        return [_network(r) for r in rows]

    async def of_tenant(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> list[Network]:
        """The networks of the department a tenant belongs to (a camera of that tenant must be in one of them)."""
        rows = await conn.fetch(
            "SELECT n.network FROM camera_networks n JOIN tenants t ON t.department_id = n.department_id "
            "WHERE t.id = $1", tenant_id)
        return [r["network"] for r in rows]

    async def replace(self, conn: asyncpg.Connection, department_id: uuid.UUID, created_by: uuid.UUID,
                      networks: list[tuple[Network, str]]) -> None:
        await conn.execute("DELETE FROM camera_networks WHERE department_id = $1", department_id)
        await self.add(conn, department_id, created_by, networks)

    async def add(self, conn: asyncpg.Connection, department_id: uuid.UUID, created_by: uuid.UUID | None,
                  networks: list[tuple[Network, str]]) -> None:
        await conn.executemany(
            "INSERT INTO camera_networks (id, department_id, network, label, created_by) VALUES ($1, $2, $3, $4, $5)",
            [(new_id(), department_id, network, label, created_by) for network, label in networks])
