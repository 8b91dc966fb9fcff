"""The access journal through the API and the database: append-only, motive for media, tamper detection."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.db import Database
from core.migrate import with_database
from core.settings import Settings
from journal.errors import MotiveRequired
from journal.service import JournalService
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration


async def test_privileged_actions_are_journaled_and_visible_to_the_tenant_admin(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    admin, mayor = actors["admin@valdoise.demo"], actors["maire@cergy.demo"]
    camera_id = seeded.cameras["c4"]  # a Cergy camera
    patched = await client.patch(
        f"/cameras/{camera_id}", json={"sub_stream_url": "rtsp://10.1.2.3/sub"}, headers=admin.headers
    )
    assert patched.status_code == 200
    lines = (await client.get(f"/journal?camera_id={camera_id}", headers=mayor.headers)).json()["items"]
    update = next(line for line in lines if line["action"] == "camera.update")
    assert update["actor_role"] == "department_admin"
    assert "sub_stream_url" in update["details"]
    other = (await client.get(f"/journal?camera_id={seeded.cameras['c6']}", headers=mayor.headers)).json()
    assert other["items"] == []  # a Marines camera: not in Cergy's journal


async def test_app_role_cannot_update_or_delete_journal_lines(database: Database, seeded: SeedResult) -> None:
    async with database.for_tenants([seeded.tenants["cergy"]]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE access_journal SET motive = 'x'")
    async with database.for_tenants([seeded.tenants["cergy"]]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM access_journal")


async def test_media_access_needs_a_motive(database: Database, seeded: SeedResult) -> None:
    async with database.for_tenants([seeded.tenants["cergy"]]) as conn:
        with pytest.raises(MotiveRequired):
            await JournalService().record(
                conn,
                tenant_id=seeded.tenants["cergy"],
                actor=None,
                action="media.live",
                target_type="camera",
                camera_id=seeded.cameras["c4"],
                motive="  ",
            )
    async with database.for_tenants([seeded.tenants["cergy"]]) as conn:
        with pytest.raises(asyncpg.CheckViolationError):  # the database refuses it too
            await conn.execute(
                "INSERT INTO access_journal (tenant_id, position, id, occurred_at, actor_role, action, target_type,"
                " prev_hash, hash) VALUES ($1, 999999, gen_random_uuid(), now(), 'operator', 'media.playback',"
                " 'camera', '\\x00', '\\x00')",
                seeded.tenants["cergy"],
            )


def audit_verify(settings: Settings) -> tuple[int, str]:
    """`vigie audit verify` as an operator would run it, against the test database."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "vigie"), "audit", "verify"],
        env={**os.environ, "VIGIE_DATABASE__NAME": settings.database.name},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


async def _insert(admin: asyncpg.Connection, row: asyncpg.Record) -> None:
    columns = list(row.keys())
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    await admin.execute(f"INSERT INTO access_journal ({', '.join(columns)}) VALUES ({placeholders})", *row.values())


async def test_tampering_is_detected_by_audit_verify(
    settings: Settings, database: Database, seeded: SeedResult
) -> None:
    tenant = seeded.tenants["magny"]
    async with database.for_tenants([tenant]) as conn:
        for n in range(4):
            await JournalService().record(
                conn,
                tenant_id=tenant,
                actor=None,
                actor_role="operator",
                action="media.playback",
                target_type="camera",
                motive=f"levée de doute {n}",
                camera_id=seeded.cameras["c8"],
            )
    assert (await asyncio.to_thread(audit_verify, settings))[0] == 0
    admin = await asyncpg.connect(with_database(settings.database.admin_dsn.get_secret_value(), settings.database.name))
    try:
        last = await admin.fetchval("SELECT max(position) FROM access_journal WHERE tenant_id = $1", tenant)
        where = "FROM access_journal WHERE tenant_id = $1 AND position = $2"
        # 1. an edited line (someone bypassing the app role, e.g. a superuser)
        original = await admin.fetchrow(f"SELECT * {where}", tenant, last - 1)
        await admin.execute(
            "UPDATE access_journal SET motive = 'curiosité' WHERE tenant_id = $1 AND position = $2", tenant, last - 1
        )
        code, output = await asyncio.to_thread(audit_verify, settings)
        assert code == 1
        assert "content altered" in output
        await admin.execute(
            "UPDATE access_journal SET motive = $3 WHERE tenant_id = $1 AND position = $2",
            tenant,
            last - 1,
            original["motive"],
        )
        assert (await asyncio.to_thread(audit_verify, settings))[0] == 0
        # 2. the newest line removed. A plain DELETE is refused even to the owner (migration 0126: only a recorded
        # retention cut removes lines, only past three years); a superuser switches the trigger off first.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await admin.execute(f"DELETE {where}", tenant, last)
        await admin.execute("SET session_replication_role = replica")
        tail = await admin.fetchrow(f"DELETE {where} RETURNING *", tenant, last)
        code, output = await asyncio.to_thread(audit_verify, settings)
        assert code == 1
        assert "chain head says" in output
        await _insert(admin, tail)
        # 3. a line in the middle removed
        middle = await admin.fetchrow(f"DELETE {where} RETURNING *", tenant, last - 2)
        code, output = await asyncio.to_thread(audit_verify, settings)
        assert code == 1
        assert "missing" in output
        await _insert(admin, middle)
        assert (await asyncio.to_thread(audit_verify, settings))[0] == 0
    finally:
        await admin.close()


async def test_a_mask_change_bumps_the_version_and_is_journaled_with_the_masks(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    admin, mayor = actors["admin@valdoise.demo"], actors["maire@cergy.demo"]
    camera_id = seeded.cameras["c4"]
    before = (await client.get(f"/cameras/{camera_id}", headers=admin.headers)).json()["privacy_masks_version"]
    entrance = [[0.1, 0.1], [0.4, 0.1], [0.4, 0.6], [0.1, 0.6]]
    patched = await client.patch(f"/cameras/{camera_id}", json={"privacy_masks": [{"points": entrance}]},
                                 headers=admin.headers)
    assert patched.status_code == 200
    assert patched.json()["privacy_masks_version"] == before + 1
    renamed = await client.patch(f"/cameras/{camera_id}", json={"name": "Parvis (masqué)"}, headers=admin.headers)
    assert renamed.json()["privacy_masks_version"] == before + 1  # other changes leave the masks' version alone
    lines = (await client.get(f"/journal?camera_id={camera_id}", headers=mayor.headers)).json()["items"]
    masks = [line for line in lines if line["action"] == "camera.privacy_masks"]
    assert len(masks) == 1
    details = json.loads(masks[0]["details"])
    assert details == {"version": before + 1, "masks": [entrance]}
