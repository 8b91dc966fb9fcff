"""Journal retention (issue 15 item 5): lines are kept three years, then a job removes them from the start of each
chain, records what it removed, and signs where the chain now starts; `vigie audit verify` still passes, and catches a
cut that no signed anchor vouches for."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
import pytest

from cli.seed import SeedResult
from core.crypto import SecretBox
from core.db import Database
from core.ids import new_id
from core.migrate import with_database
from core.objectstore import FilesystemObjectStore
from core.settings import Settings
from journal.anchors import JournalAnchorer, anchor_space
from journal.model import JournalEntry
from journal.repository import JournalRepository
from journal.retention import JournalRetention
from journal.rules import chain_hash, removed_digest
from journal.service import JournalService
from tests.api.test_evidence_api import vigie

pytestmark = pytest.mark.integration

_COLUMNS = ("tenant_id, position, id, occurred_at, actor_user_id, actor_role, action, target_type, target_id, "
            "camera_id, range_start, range_end, motive, recipient, details, prev_hash, hash")


async def _backdated_line(conn: asyncpg.Connection, tenant: uuid.UUID, occurred_at: datetime, motive: str) -> None:
    """A journal line written as `JournalService.record` writes it, but at a past instant."""
    repo = JournalRepository()
    position, previous = await repo.lock_head(conn, tenant)
    draft = JournalEntry(tenant_id=tenant, position=position + 1, id=new_id(), occurred_at=occurred_at,
                         actor_user_id=None, actor_role="operator", action="media.playback", target_type="camera",
                         target_id=None, camera_id=None, range_start=None, range_end=None, motive=motive,
                         recipient=None, details="{}", prev_hash=previous, hash=b"")
    await repo.append(conn, msgspec.structs.replace(draft, hash=chain_hash(draft)))


async def _tenant(pool: asyncpg.Pool, seeded: SeedResult, name: str) -> uuid.UUID:
    tenant = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO tenants (id, department_id, kind, name) VALUES ($1, $2, 'epci', $3)",
                           tenant, seeded.department_id, f"{name} {tenant.hex[:8]}")
    return tenant


async def test_lines_past_three_years_are_cut_recorded_and_the_chain_still_verifies(
    settings: Settings, seeded: SeedResult, database: Database, department_pool: asyncpg.Pool, tmp_path: Path,
) -> None:
    tenant = await _tenant(department_pool, seeded, "Rétention")
    now = datetime.now(UTC)
    async with department_pool.acquire() as conn, conn.transaction():
        # Five lines from four years ago, one from three years and a month ago, then a line from last year.
        for n in range(5):
            await _backdated_line(conn, tenant, now - timedelta(days=4 * 365, hours=10 - n), f"ancien {n}")
        await _backdated_line(conn, tenant, now - timedelta(days=3 * 366 + 30), "ancien 5")
    store_env = {"VIGIE_OBJECTSTORE_BACKEND": "fs", "VIGIE_OBJECTSTORE_ROOT": str(tmp_path / "objects")}
    assert (await asyncio.to_thread(vigie, settings, "evidence", "init-key"))[0] == 0
    # A signed anchor pins this head (position 6), a line the cut will remove; another pins the final head.
    code, output = await asyncio.to_thread(vigie, settings, "audit", "anchor", env=store_env)
    assert code == 0, output
    async with department_pool.acquire() as conn, conn.transaction():
        await _backdated_line(conn, tenant, now - timedelta(days=365), "récent 0")
    async with database.for_tenants([tenant]) as conn:
        await JournalService().record(conn, tenant_id=tenant, actor=None, actor_role="operator",
                                      action="media.playback", target_type="camera", motive="aujourd'hui")
    code, output = await asyncio.to_thread(vigie, settings, "audit", "anchor", env=store_env)
    assert code == 0, output
    async with department_pool.acquire() as conn:
        removed_hashes = [bytes(r["hash"]) for r in await conn.fetch(
            "SELECT hash FROM access_journal WHERE tenant_id = $1 AND position <= 6 ORDER BY position", tenant)]

    # The runtime role still cannot delete a line; the department role cannot outside a recorded cut, nor a line
    # younger than three years even with one.
    async with database.for_tenants([tenant]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM access_journal WHERE tenant_id = $1 AND position = 1", tenant)
    async with department_pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="only by a recorded cut"):
            await conn.execute("DELETE FROM access_journal WHERE tenant_id = $1 AND position = 1", tenant)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not three years old"):
            await conn.execute("DELETE FROM access_journal WHERE tenant_id = $1 AND position = 8", tenant)

    store = FilesystemObjectStore(tmp_path / "objects")
    box = SecretBox(settings.data_key.get_secret_value())
    anchorer = JournalAnchorer(db=database, store=store, secret_box=box, space=anchor_space(settings.database.name))
    retention = JournalRetention(db=database, anchorer=anchorer)
    cuts = [c for c in await retention.cut_once() if c.tenant_id == tenant]
    assert len(cuts) == 1
    cut = cuts[0]
    # Everything before the first line younger than three years goes, and the record says exactly what.
    assert (cut.first_removed, cut.last_removed, cut.removed_count) == (1, 6, 6)
    assert cut.last_removed_hash == removed_hashes[-1]
    assert cut.removed_digest == removed_digest(removed_hashes)
    assert cut.newest_removed_at < cut.cutoff <= cut.cut_at - timedelta(days=3 * 365)
    async with department_pool.acquire() as conn:
        kept = await conn.fetch("SELECT position, motive, prev_hash FROM access_journal WHERE tenant_id = $1 "
                                "ORDER BY position", tenant)
    assert [(r["position"], r["motive"]) for r in kept] == [(7, "récent 0"), (8, "aujourd'hui")]
    assert bytes(kept[0]["prev_hash"]) == cut.last_removed_hash
    # The tenant reads the record of its cuts (runtime role, its scope).
    async with database.for_tenants([tenant]) as conn:
        assert [c.id for c in await JournalRepository().cuts(conn, tenant)] == [cut.id]

    code, output = await asyncio.to_thread(vigie, settings, "audit", "verify", "--require-anchors", env=store_env)
    assert code == 0, output
    assert "journal intact" in output
    # Nothing more is due: a second run cuts nothing of this tenant.
    assert not [c for c in await retention.cut_once() if c.tenant_id == tenant]

    # Whoever owns the database removes a recent line and records a cut to cover it: no signed anchor vouches for
    # that cut, and the verifier says so.
    admin = await asyncpg.connect(with_database(settings.database.admin_dsn.get_secret_value(),
                                                settings.database.name))
    try:
        line = await admin.fetchrow(f"SELECT {_COLUMNS} FROM access_journal WHERE tenant_id = $1 AND position = 7",
                                    tenant)
        assert line is not None
        forged = new_id()
        async with admin.transaction():
            await admin.execute("SET LOCAL session_replication_role = replica")  # the owner switches triggers off
            await admin.execute("DELETE FROM access_journal WHERE tenant_id = $1 AND position = 7", tenant)
            await admin.execute(
                "INSERT INTO journal_cuts (id, tenant_id, cutoff, first_removed, last_removed, removed_count, "
                "last_removed_hash, removed_digest, oldest_removed_at, newest_removed_at) VALUES ($1, $2, "
                "now() - interval '3 years', 7, 7, 1, $3, $4, now() - interval '4 years', now() - interval '4 years')",
                forged, tenant, bytes(line["hash"]), removed_digest([bytes(line["hash"])]))
        code, output = await asyncio.to_thread(vigie, settings, "audit", "verify", env=store_env)
        assert code == 1, output
        assert f"tenant {tenant} position 8: starts after a retention cut that no signed anchor recorded" in output
    finally:
        async with admin.transaction():
            await admin.execute("SET LOCAL session_replication_role = replica")
            await admin.execute("DELETE FROM journal_cuts WHERE tenant_id = $1 AND last_removed = 7", tenant)
            if await admin.fetchval("SELECT count(*) FROM access_journal WHERE tenant_id = $1 AND position = 7",
                                    tenant) == 0:
                await admin.execute(f"INSERT INTO access_journal ({_COLUMNS}) VALUES "
                                    f"({', '.join(f'${i}' for i in range(1, 18))})", *line.values())
        await admin.close()
    code, output = await asyncio.to_thread(vigie, settings, "audit", "verify", "--require-anchors", env=store_env)
    assert code == 0, output
