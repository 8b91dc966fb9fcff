"""`vigie dvr reindex`: the stored segments the index lacks get back the very rows the recorder wrote; what cannot be
read, or is indexed but gone from the store, is reported, never guessed."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest

from cli.main import parser
from core.db import Database
from core.objectstore import FilesystemObjectStore
from dvr.model import SpooledSegment, segment_key, segment_metadata
from dvr.reindex import UnreadableSegment, reindex, segment_from_object
from dvr.repository import DvrRepository
from tests.dvr.conftest import World

pytestmark = pytest.mark.integration

ROW = ("tenant_id, camera_id, start_at, end_at, size_bytes, sha256, object_key, version_id, codec, recorder_id, "
       "mask_version, init_size")


async def _record(database: Database, store: FilesystemObjectStore, tenant_id: uuid.UUID, camera_id: uuid.UUID,
                  folder: Path, start: datetime, n: int) -> list[str]:
    """Segments as the recorder's uploader stores them: the object with its metadata, then the index row."""
    keys = []
    for i in range(n):
        begins = start + timedelta(seconds=10 * i)
        body = f"segment {camera_id} {begins.isoformat()}".encode() * 50
        path = folder / f"seg-{uuid.uuid4().hex}.mp4"
        path.write_bytes(body)
        segment = SpooledSegment(tenant_id=tenant_id, camera_id=camera_id, path=path, start_at=begins,
                                 end_at=begins + timedelta(seconds=10), size=len(body),
                                 sha256=hashlib.sha256(body).hexdigest(), codec="h264", recorder_id="rec-a",
                                 init_size=812 if i % 2 else None, mask_version=3 if i == 1 else None)
        stored = await store.put_file(tenant_id, segment.object_key, path, content_type="video/mp4",
                                      sha256=segment.sha256, metadata=segment_metadata(segment))
        async with database.cross_tenant("recording index") as conn:
            assert await DvrRepository().insert_segment(conn, segment, stored.version_id)
        keys.append(segment.object_key)
    return keys


async def _rows(pool: asyncpg.Pool, camera_id: uuid.UUID) -> dict[str, tuple[object, ...]]:
    rows = await pool.fetch(f"SELECT {ROW} FROM recording_segments WHERE camera_id = $1", camera_id)
    return {r["object_key"]: tuple(r) for r in rows}


async def test_a_lost_index_is_rebuilt_row_for_row_and_the_rest_reported(
    world: World, database: Database, department_pool: asyncpg.Pool, tmp_path: Path,
) -> None:
    tenant_id, site_id = await world.tenant()
    camera_id = await world.camera("rtsp://127.0.0.1:1/reindex", tenant_id=tenant_id, site_id=site_id)
    store = FilesystemObjectStore(tmp_path / "objects")
    await store.ensure_tenant_space(tenant_id)
    start = datetime.combine(date.today() - timedelta(days=3), time(8), UTC)
    keys = await _record(database, store, tenant_id, camera_id, tmp_path, start, 5)
    written = await _rows(department_pool, camera_id)
    assert set(written) == set(keys)

    # The database comes back from a backup older than the last three uploads.
    lost = keys[2:]
    await department_pool.execute("DELETE FROM recording_segments WHERE object_key = ANY ($1::text[])", lost)
    # An object uploaded without the index facts (by hand, or altered) cannot be indexed: it is reported.
    bare = tmp_path / "bare.mp4"
    bare.write_bytes(b"no metadata")
    bare_key = segment_key(camera_id, start + timedelta(minutes=30))
    await store.put_file(tenant_id, bare_key, bare, content_type="video/mp4", sha256="0" * 64)
    # A segment the restored index still names, deleted from the store after the backup (a delete marker).
    await store.delete(tenant_id, keys[0])

    rehearsal = await reindex(database, store, tenant_id=tenant_id, dry_run=True)
    assert rehearsal.reindexed == 3
    assert set(await _rows(department_pool, camera_id)) == set(keys[:2])  # the dry run wrote nothing

    report = await reindex(database, store, tenant_id=tenant_id)
    assert (report.cameras, report.stored, report.already_indexed, report.reindexed) == (1, 5, 1, 3)
    assert report.missing == [keys[0]]
    assert len(report.unreadable) == 1
    assert bare_key in report.unreadable[0]
    assert not report.clean
    rebuilt = await _rows(department_pool, camera_id)
    assert {k: rebuilt[k] for k in lost} == {k: written[k] for k in lost}

    again = await reindex(database, store, tenant_id=tenant_id)
    assert again.reindexed == 0  # idempotent

    # --since keeps a pass to the days after a restore point: nothing of earlier days is listed.
    later = await reindex(database, store, tenant_id=tenant_id, since=start.date() + timedelta(days=1))
    assert (later.stored, later.reindexed, later.missing) == (0, 0, [])


def test_metadata_that_disagrees_with_the_key_is_not_trusted() -> None:
    camera, tenant = uuid.uuid4(), uuid.uuid4()
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    segment = SpooledSegment(tenant_id=tenant, camera_id=camera, path=Path("x"), start_at=start,
                             end_at=start + timedelta(seconds=10), size=10, sha256="a" * 64, codec=None,
                             recorder_id="r")
    metadata = {**segment_metadata(segment), "sha256": "a" * 64}
    assert segment_from_object(tenant, camera, segment.object_key, 10, metadata).start_at == start
    with pytest.raises(UnreadableSegment, match="another segment"):
        segment_from_object(tenant, camera, segment_key(camera, start + timedelta(seconds=10)), 10, metadata)
    with pytest.raises(UnreadableSegment, match="vigie-end"):
        segment_from_object(tenant, camera, segment.object_key, 10,
                            {k: v for k, v in metadata.items() if k != "vigie-end"})
    with pytest.raises(UnreadableSegment):
        segment_from_object(tenant, camera, segment.object_key, 10, {**metadata, "vigie-init-size": "many"})


def test_the_command_refuses_a_malformed_day_or_tenant(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["dvr", "reindex", "--since", "2026-13-01"], ["dvr", "reindex", "--tenant", "marines"]):
        with pytest.raises(SystemExit) as exit_:
            parser().parse_args(bad)
        assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "'2026-13-01' is not a day (YYYY-MM-DD)" in err
    assert "invalid UUID value: 'marines'" in err
    assert parser().parse_args(["dvr", "reindex", "--since", "2026-12-01"]).since == date(2026, 12, 1)
