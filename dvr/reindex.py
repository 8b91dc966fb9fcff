"""The recording index rebuilt from the object store: after a database restore, later segments get their rows."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from core.db import Database
from core.errors import NotFound
from core.logging import get_logger
from core.objectstore import ObjectStore, ObjectVersion
from dvr.model import SEGMENT_METADATA, Tier, segment_key
from dvr.repository import DvrRepository

log = get_logger(__name__)


@dataclass(frozen=True)
class StoredSegment:
    """A segment as its object describes it (key, tenant, size, stored hash and metadata)."""

    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    start_at: datetime
    end_at: datetime
    size: int
    sha256: str
    codec: str | None
    recorder_id: str
    init_size: int | None
    mask_version: int | None

    @property
    def object_key(self) -> str:
        return segment_key(self.camera_id, self.start_at)


class UnreadableSegment(ValueError):
    """The object lacks what its index row needs (an upload older than the metadata, or metadata altered)."""


def segment_from_object(tenant_id: uuid.UUID, camera_id: uuid.UUID, key: str, size: int,
                        metadata: Mapping[str, str]) -> StoredSegment:
    missing = [name for name in (*SEGMENT_METADATA, "sha256") if name not in metadata]
    if missing:
        raise UnreadableSegment(f"{key}: no {', '.join(missing)} in its metadata")
    try:
        segment = StoredSegment(
            tenant_id=tenant_id, camera_id=camera_id,
            start_at=datetime.fromisoformat(metadata["vigie-start"]),
            end_at=datetime.fromisoformat(metadata["vigie-end"]),
            size=size, sha256=metadata["sha256"], codec=metadata["vigie-codec"] or None,
            recorder_id=metadata["vigie-recorder"],
            init_size=int(metadata["vigie-init-size"]) if metadata["vigie-init-size"] else None,
            mask_version=int(metadata["vigie-mask-version"]) if metadata["vigie-mask-version"] else None,
        )
    except ValueError as exc:
        raise UnreadableSegment(f"{key}: {exc}") from exc
    if segment.object_key != key or segment.end_at <= segment.start_at:
        # The key is derived from camera and start: metadata that disagrees with it is not trusted.
        raise UnreadableSegment(f"{key}: its metadata describes another segment")
    return segment


@dataclass
class ReindexReport:
    """What a pass found, per kind; `unreadable` and `missing` name the keys an operator has to look at."""

    cameras: int = 0
    stored: int = 0
    already_indexed: int = 0
    reindexed: int = 0
    unreadable: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.unreadable and not self.missing


def _live_versions(versions: list[ObjectVersion], since: date | None) -> dict[str, ObjectVersion]:
    """The latest version of each key that is not deleted, from `since` on (the day is in the key)."""
    latest: dict[str, ObjectVersion] = {}
    for version in versions:
        if version.is_latest:
            latest[version.key] = version
    live = {key: v for key, v in latest.items() if not v.is_delete_marker}
    if since is None:
        return live
    return {key: v for key, v in live.items() if key.split("/")[2] >= since.isoformat()}


async def reindex(db: Database, store: ObjectStore, *, since: date | None = None, tenant_id: uuid.UUID | None = None,
                  dry_run: bool = False) -> ReindexReport:
    """Every camera's continuous segments in the store against the index: rows written for the stored segments that
    have none; index rows whose object is gone are reported (`missing`), never invented or dropped."""
    repo, report = DvrRepository(), ReindexReport()
    async with db.cross_tenant("recording reindex") as conn:
        cameras = await repo.every_camera(conn, tenant_id)
    for camera_id, camera_tenant in cameras:
        report.cameras += 1
        prefix = f"{Tier.CONTINUOUS.value}/{camera_id}/"
        try:
            live = _live_versions(await store.list_versions(camera_tenant, prefix), since)
        except NotFound:  # a tenant whose space was never created has nothing stored
            live = {}
        report.stored += len(live)
        async with db.cross_tenant("recording reindex") as conn:
            indexed = await repo.indexed_segment_keys(conn, camera_id, since)
            report.missing.extend(sorted(indexed - set(live)))
            for key in sorted(set(live) - indexed):
                version = live[key]
                info = await store.stat(camera_tenant, key, version_id=version.version_id)
                try:
                    segment = segment_from_object(camera_tenant, camera_id, key, info.size, info.metadata)
                except UnreadableSegment as exc:
                    report.unreadable.append(str(exc))
                    continue
                if dry_run or await repo.insert_segment(conn, segment, version.version_id):
                    report.reindexed += 1
                    log.info("dvr.segment_reindexed", camera_id=str(camera_id), key=key, dry_run=dry_run)
        report.already_indexed += len(indexed & set(live))
    return report
