"""Restore drill (`make test-cluster`): pgBackRest (Debian) takes a full backup of the platform's Postgres 15 and
archives its WAL to a local repository; the server is then lost, and a point-in-time restore brings the database
back as it was at a chosen instant. Afterwards `vigie audit verify` finds the access journal intact against its
signed anchors, and the segment index matches the object store: every indexed segment is there with its hash, and
the only stored segments without an index row are those uploaded after the restore point, which `vigie dvr reindex`
then indexes from the store alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from cli.evidence import provision_evidence_keys
from cli.main import ensure_signing_key
from cli.seed import SeedResult, seed_demo
from core.crypto import SecretBox
from core.db import open_database
from core.migrate import prepare_database
from core.objectstore import FilesystemObjectStore
from core.settings import DatabaseSettings, Settings
from dvr.model import SpooledSegment, segment_metadata
from dvr.repository import DvrRepository
from journal.service import JournalService
from tests.cluster.engines import PostgresNode, chown_for_postgres, postgres_available

pytestmark = pytest.mark.cluster

STANZA = "vigie"


class Drill:
    """One Postgres 15 server archiving its WAL through pgBackRest to a repository in the drill's folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.node = PostgresNode(folder / "pg" / "data", 0)
        self.config = folder / "pgbackrest" / "pgbackrest.conf"

    def start(self) -> None:
        from core.ports import free_port

        self.node.port = free_port()
        for sub in ("pg", "pgbackrest", "pgbackrest/repo", "pgbackrest/log", "pgbackrest/lock"):
            chown_for_postgres(self.folder / sub)
        self.config.write_text(
            f"[global]\nrepo1-path={self.folder / 'pgbackrest' / 'repo'}\nrepo1-retention-full=2\n"
            f"log-path={self.folder / 'pgbackrest' / 'log'}\nlock-path={self.folder / 'pgbackrest' / 'lock'}\n"
            "start-fast=y\narchive-async=n\n\n"
            f"[{STANZA}]\npg1-path={self.node.data_dir}\npg1-port={self.node.port}\n"
            f"pg1-socket-path={self.node.data_dir.parent}\n")
        self.config.chmod(0o644)
        self.node.init([
            "archive_mode = on",
            f"archive_command = 'pgbackrest --config={self.config} --stanza={STANZA} archive-push %p'",
            "archive_timeout = 60",
        ])
        self.node.start()
        self.backrest("stanza-create")
        self.backrest("check")

    def backrest(self, *args: str) -> str:
        return self.node.run("pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", *args,
                             timeout=300).stdout

    def lose_the_server(self) -> None:
        """The machine is gone: the server killed and its data folder wiped."""
        self.node.kill()
        shutil.rmtree(self.node.data_dir)
        chown_for_postgres(self.node.data_dir)
        self.node.data_dir.chmod(0o700)

    def restore_to(self, target: datetime) -> None:
        # The backup set named rather than chosen by pgBackRest (the newest whose end, in whole seconds, is strictly
        # before the target): one CI run failed in that choice (exit 75, "backup set invalid"; its message was lost).
        newest = json.loads(self.backrest("info", "--output=json"))[0]["backup"][-1]["label"]
        self.backrest("restore", f"--set={newest}", "--type=time", f"--target={target.isoformat(sep=' ')}",
                      "--target-action=promote")
        self.node.start()


@pytest.fixture(scope="module")
def drill() -> Iterator[Drill]:
    if not postgres_available() or shutil.which("pgbackrest") is None:
        pytest.fail("PostgreSQL 15 or pgBackRest missing (make system-deps: scripts/apt-packages/cluster.txt)")
    folder = Path(tempfile.mkdtemp(prefix="vigie-restore-"))
    folder.chmod(0o755)
    found = Drill(folder)
    try:
        found.start()
        yield found
    finally:
        found.node.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _vigie(settings: Settings, store_root: Path, *args: str) -> tuple[int, str]:
    """The `vigie` command as an operator runs it after the restore."""
    env = settings.child_env(VIGIE_OBJECTSTORE_BACKEND="fs", VIGIE_OBJECTSTORE_ROOT=str(store_root))
    result = subprocess.run([str(Path(sys.executable).parent / "vigie"), *args], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=120, check=False)
    return result.returncode, result.stdout + result.stderr


async def _journal(settings: Settings, tenant: uuid.UUID, label: str, count: int) -> None:
    conn = await asyncpg.connect(settings.database.department_dsn)
    try:
        for n in range(count):
            async with conn.transaction():
                await JournalService().record(conn, tenant_id=tenant, actor=None, actor_role="operator",
                                              action="media.playback", target_type="camera",
                                              motive=f"{label} {n}")
    finally:
        await conn.close()


async def _segments(settings: Settings, store: FilesystemObjectStore, demo: SeedResult, folder: Path,
                    start: datetime, count: int) -> set[str]:
    """Segments as the recorder's uploader stores them: the object with its index facts, then its index row."""
    camera = demo.cameras["c1"]
    tenant = demo.camera_tenants["c1"]
    keys: set[str] = set()
    db = await open_database(settings.database.app_dsn, settings.database.department_dsn,
                             app_pool_size=(1, 1), department_pool_size=(1, 1))
    try:
        for n in range(count):
            begins = start + timedelta(seconds=10 * n)
            body = f"segment {camera} {begins.isoformat()}".encode() * 100
            path = folder / f"segment-{uuid.uuid4().hex}.mp4"  # the store may keep the file itself
            path.write_bytes(body)
            segment = SpooledSegment(tenant_id=tenant, camera_id=camera, path=path, start_at=begins,
                                     end_at=begins + timedelta(seconds=10), size=len(body),
                                     sha256=hashlib.sha256(body).hexdigest(), codec="h264", recorder_id="drill")
            stored = await store.put_file(tenant, segment.object_key, path, content_type="video/mp4",
                                          sha256=segment.sha256, metadata=segment_metadata(segment))
            async with db.cross_tenant("recording index") as conn:
                await DvrRepository().insert_segment(conn, segment, stored.version_id)
            keys.add(segment.object_key)
    finally:
        await db.close()
    return keys


@pytest.mark.timeout(300)
async def test_a_point_in_time_restore_keeps_the_journal_verifiable_and_the_index_true_to_the_store(
        drill: Drill) -> None:
    store_root = drill.folder / "objects"
    wanted = Settings(environment="test", var_dir=drill.folder / "var", log_level="WARNING",
                      database=DatabaseSettings(admin_dsn=SecretStr(drill.node.admin_dsn), host="127.0.0.1",
                                                port=drill.node.port, name="vigie_restore", embedded_fallback=False,
                                                pool_min_size=1, pool_max_size=2))
    settings = await prepare_database(wanted)
    await ensure_signing_key(settings)
    await provision_evidence_keys(settings)
    conn = await asyncpg.connect(settings.database.department_dsn)
    try:
        async with conn.transaction():
            demo = await seed_demo(conn, SecretBox(settings.data_key.get_secret_value()))
    finally:
        await conn.close()
    tenant = demo.camera_tenants["c1"]
    store = FilesystemObjectStore(store_root)
    await store.ensure_tenant_space(tenant)
    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    # Before the backup: journal lines, an anchor, segments. The full backup.
    await _journal(settings, tenant, "avant la sauvegarde", 5)
    code, output = await asyncio.to_thread(_vigie, settings, store_root, "audit", "anchor")
    assert code == 0, output
    before_backup = await _segments(settings, store, demo, drill.folder, t0, 5)
    await asyncio.to_thread(drill.backrest, "backup", "--type=full")

    # After the backup, before the restore point: more of each (only in the archived WAL), and a second anchor.
    await _journal(settings, tenant, "après la sauvegarde", 5)
    before_target = await _segments(settings, store, demo, drill.folder, t0 + timedelta(minutes=5), 5)
    code, output = await asyncio.to_thread(_vigie, settings, store_root, "audit", "anchor")
    assert code == 0, output
    admin = await asyncpg.connect(drill.node.admin_dsn)
    try:
        target = await admin.fetchval("SELECT now()")
        await asyncio.sleep(1.0)
        # After the restore point: lines and segments the restore must not bring back.
        await _journal(settings, tenant, "après le point de restauration", 3)
        after_target = await _segments(settings, store, demo, drill.folder, t0 + timedelta(minutes=10), 3)
        await admin.execute("SELECT pg_switch_wal()")
    finally:
        await admin.close()
    # Every WAL segment up to now is in the repository (check switches and waits for the archive).
    await asyncio.to_thread(drill.backrest, "check")

    await asyncio.to_thread(drill.lose_the_server)
    await asyncio.to_thread(drill.restore_to, target)

    conn = await asyncpg.connect(drill.node.admin_dsn)
    try:
        for _ in range(100):
            if not await conn.fetchval("SELECT pg_is_in_recovery()"):
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("the restored server is still recovering")
    finally:
        await conn.close()

    conn = await asyncpg.connect(settings.database.department_dsn)
    try:
        motives = [r["motive"] for r in await conn.fetch(
            "SELECT motive FROM access_journal WHERE tenant_id = $1 AND motive IS NOT NULL ORDER BY position",
            tenant)]
        rows = await conn.fetch("SELECT object_key, version_id, sha256 FROM recording_segments "
                                "WHERE recorder_id = 'drill'")
    finally:
        await conn.close()
    assert [m.rsplit(" ", 1)[0] for m in motives] == ["avant la sauvegarde"] * 5 + ["après la sauvegarde"] * 5

    # The journal: intact against both signed anchors (each older than the restore point).
    code, output = await asyncio.to_thread(_vigie, settings, store_root, "audit", "verify", "--require-anchors")
    assert code == 0, output
    assert "journal intact" in output
    assert "2 signed anchors checked" in output

    # The index: every row's object is in the store with its hash; what the store has beyond the index is exactly
    # what was uploaded after the restore point.
    indexed = {r["object_key"] for r in rows}
    assert indexed == before_backup | before_target
    for row in rows:
        stored = await store.get(tenant, row["object_key"], version_id=row["version_id"])
        assert hashlib.sha256(stored).hexdigest() == row["sha256"]
    in_store = {v.key for v in await store.list_versions(tenant, "continuous/") if not v.is_delete_marker}
    assert in_store - indexed == after_target

    # `vigie dvr reindex` gives the segments uploaded after the restore point their rows back, from the store alone:
    # then the index and the store hold the same segments, each with the hash the store recorded.
    code, output = await asyncio.to_thread(_vigie, settings, store_root, "dvr", "reindex", "--since", "2026-01-05")
    assert code == 0, output
    assert f"indexed {len(after_target)}" in output
    conn = await asyncpg.connect(settings.database.department_dsn)
    try:
        rows = await conn.fetch("SELECT object_key, version_id, sha256 FROM recording_segments "
                                "WHERE recorder_id = 'drill'")
    finally:
        await conn.close()
    assert {r["object_key"] for r in rows} == in_store
    for row in rows:
        stored = await store.get(tenant, row["object_key"], version_id=row["version_id"])
        assert hashlib.sha256(stored).hexdigest() == row["sha256"]
