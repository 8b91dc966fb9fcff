"""Journal anchoring (issue 11 item 16): signed checkpoints of every chain head in the object-locked store catch a
chain that whoever owns the database rewrote consistently (hashes, links and head recomputed), which the chain's own
verification cannot see."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import msgspec
import pytest

from cli.seed import SeedResult
from core.crypto import SecretBox
from core.db import Database
from core.migrate import with_database
from core.objectstore import FilesystemObjectStore, ObjectLocked
from core.settings import Settings
from journal.anchors import ANCHOR_PREFIX, JournalAnchorer, anchor_space, load_anchors
from journal.keys import KeyPurpose, provision_key, trusted_keys
from journal.model import JournalEntry
from journal.rules import chain_hash
from journal.service import JournalService
from tests.api.test_evidence_api import vigie

pytestmark = pytest.mark.integration

_COLUMNS = ("tenant_id, position, id, occurred_at, actor_user_id, actor_role, action, target_type, target_id, "
            "camera_id, range_start, range_end, motive, recipient, details, prev_hash, hash")


async def _rewrite(admin: asyncpg.Connection, tenant: uuid.UUID, position: int, motive: str) -> None:
    """What an owner of the database can do: change one line, then recompute every hash after it and the head."""
    async with admin.transaction():
        rows = await admin.fetch(f"SELECT {_COLUMNS} FROM access_journal WHERE tenant_id = $1 ORDER BY position",
                                 tenant)
        previous = None
        for row in rows:
            entry = JournalEntry(**{k: (bytes(v) if k in ("prev_hash", "hash") else v) for k, v in row.items()})
            if entry.position == position:
                entry = msgspec.structs.replace(entry, motive=motive)
            if previous is not None:
                entry = msgspec.structs.replace(entry, prev_hash=previous)
            if entry.position >= position:
                entry = msgspec.structs.replace(entry, hash=chain_hash(entry))
                await admin.execute(
                    "UPDATE access_journal SET motive = $3, prev_hash = $4, hash = $5 WHERE tenant_id = $1 "
                    "AND position = $2", tenant, entry.position, entry.motive, entry.prev_hash, entry.hash)
            previous = entry.hash
        await admin.execute("UPDATE journal_heads SET hash = $2 WHERE tenant_id = $1", tenant, previous)


async def test_a_consistently_rewritten_chain_is_caught_by_its_signed_anchor(
    settings: Settings, seeded: SeedResult, database: Database, department_pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    tenant = uuid.uuid4()
    async with department_pool.acquire() as conn:
        await conn.execute("INSERT INTO tenants (id, department_id, kind, name) VALUES ($1, $2, 'epci', $3)",
                           tenant, seeded.department_id, f"Anchors {tenant.hex[:8]}")
    async with database.for_tenants([tenant]) as conn:
        for n in range(4):
            await JournalService().record(conn, tenant_id=tenant, actor=None, actor_role="operator",
                                          action="media.playback", target_type="camera", motive=f"levée de doute {n}")
    store_env = {"VIGIE_OBJECTSTORE_BACKEND": "fs", "VIGIE_OBJECTSTORE_ROOT": str(tmp_path / "objects")}
    assert (await asyncio.to_thread(vigie, settings, "evidence", "init-key"))[0] == 0
    code, output = await asyncio.to_thread(vigie, settings, "audit", "anchor", env=store_env)
    assert code == 0, output
    code, output = await asyncio.to_thread(vigie, settings, "audit", "verify", "--require-anchors", env=store_env)
    assert code == 0, output
    assert "journal intact" in output
    assert "1 signed anchors checked" in output

    # The anchor is locked in the store: nobody deletes it before its retention ends.
    store = FilesystemObjectStore(tmp_path / "objects")
    space = anchor_space(settings.database.name)
    [anchor] = await store.list_versions(space, ANCHOR_PREFIX)
    with pytest.raises(ObjectLocked):
        await store.delete_version(space, anchor.key, anchor.version_id)
    assert (await store.stat(space, anchor.key)).retention_mode == "COMPLIANCE"

    admin = await asyncpg.connect(with_database(settings.database.admin_dsn.get_secret_value(),
                                                settings.database.name))
    try:
        original = await admin.fetchval("SELECT motive FROM access_journal WHERE tenant_id = $1 AND position = 2",
                                        tenant)
        await _rewrite(admin, tenant, 2, "curiosité")
        # The rewrite is consistent: the chain alone still verifies...
        async with database.cross_tenant("journal verification") as conn:
            chain_only = await JournalService().verify(conn)
        assert not [p for p in chain_only.problems if p.tenant_id == tenant]
        # ...but the signed anchor pinned the old head, and `vigie audit verify` reports the rewrite.
        code, output = await asyncio.to_thread(vigie, settings, "audit", "verify", env=store_env)
        assert code == 1, output
        assert f"tenant {tenant} position 4: differs from the signed anchor" in output
        assert "the chain was rewritten" in output
        # Without anchors to compare with (another store), only the chain is checked: it would have passed.
        blind = await asyncio.to_thread(vigie, settings, "audit", "verify",
                                        env={**store_env, "VIGIE_OBJECTSTORE_ROOT": str(tmp_path / "empty")})
        assert f"tenant {tenant}" not in blind[1]
        assert "no journal anchor found" in blind[1]
        await _rewrite(admin, tenant, 2, original)
    finally:
        await admin.close()
    code, output = await asyncio.to_thread(vigie, settings, "audit", "verify", env=store_env)
    assert code == 0, output


async def test_the_anchoring_job_writes_one_anchor_per_interval(
    settings: Settings, database: Database, department_pool: asyncpg.Pool, tmp_path: Path,
) -> None:
    """The department job of `python -m dvr`: due once per interval whichever copy of the process asks."""
    box = SecretBox(settings.data_key.get_secret_value())
    async with department_pool.acquire() as conn:
        await provision_key(conn, box, KeyPurpose.JOURNAL_ANCHOR)  # type: ignore[arg-type]
    store, space = FilesystemObjectStore(tmp_path / "objects"), uuid.uuid4()
    hourly = JournalAnchorer(db=database, store=store, secret_box=box, space=space, interval_s=3600)
    assert await hourly.anchor_once(force=True) is not None
    assert await hourly.anchor_once() is None  # not due: the last anchor is younger than the interval
    other_copy = JournalAnchorer(db=database, store=store, secret_box=box, space=space, interval_s=3600)
    assert await other_copy.anchor_once() is None
    assert await JournalAnchorer(db=database, store=store, secret_box=box, space=space,
                                 interval_s=0).anchor_once() is not None
    async with database.cross_tenant("journal verification") as conn:
        trusted = await trusted_keys(conn, KeyPurpose.JOURNAL_ANCHOR)  # type: ignore[arg-type]
    anchors = await load_anchors(store, space, trusted)
    assert (anchors.anchors, anchors.problems) == (2, [])
