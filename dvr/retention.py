"""Retention: the sweeper that destroys every recording past its retention, exactly, and proves it in the destruction
register; it keeps the buckets' lifecycle rules in step as a safety net."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from core.db import Database
from core.errors import NotFound, Unavailable
from core.leadership import Term
from core.logging import get_logger
from core.objectstore import FilesystemObjectStore, ObjectLocked, ObjectStore
from dvr.model import Clip, Segment, Tier
from dvr.repository import DvrRepository
from dvr.rules import Retention, destruction_due, effective_retention, lifecycle_rules

log = get_logger(__name__)


@dataclass(frozen=True)
class SweepReport:
    destroyed: int
    held_skipped: int
    locked_skipped: int
    orphans_removed: int


@dataclass
class RetentionService:
    """The retention sweeper (department role): deletes every version past its retention, exactly, and writes one
    destruction-register row per recording; keeps the bucket lifecycle rules in step as a safety net."""

    db: Database
    store: ObjectStore
    repo: DvrRepository = field(default_factory=DvrRepository)
    batch: int = 500

    def _department(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        # A department job: it reads every tenant's recordings and deletes index rows, which only the department
        # role may do (the runtime role cannot delete a recording, by design of migration 0020).
        return self.db.cross_tenant("retention sweep")

    async def sweep(self, *, now: datetime | None = None, term: Term | None = None) -> SweepReport:
        """One pass over every camera; under a leadership `term`, the pass stops as soon as the term is lost (a
        successor may be sweeping: two sweepers racing on one version would register a wrong cause)."""
        now = now or datetime.now(UTC)
        destroyed = held = locked = orphans = 0
        async with self._department() as conn:
            cameras = await self.repo.cameras_with_recordings(conn)
        per_tenant: dict[uuid.UUID, dict[uuid.UUID, dict[Tier, Retention]]] = {}
        for row in cameras:
            tenant_id, camera_id = row["tenant_id"], row["camera_id"]
            async with self._department() as conn:
                tiers = {}
                for tier in Tier:
                    inputs = await self.repo.retention_inputs(conn, camera_id, tier)
                    if inputs is not None:
                        tiers[tier] = effective_retention(inputs)
            per_tenant.setdefault(tenant_id, {})[camera_id] = tiers
            for tier, retention in tiers.items():
                d, h, lk = await self._sweep_camera(tenant_id, camera_id, tier, retention, now, term)
                destroyed, held, locked = destroyed + d, held + h, locked + lk
                orphans += await self._sweep_orphans(tenant_id, camera_id, tier, retention, now)
        for tenant_id, per_camera in per_tenant.items():
            try:
                rules = lifecycle_rules(per_camera)
                if sorted(await self.store.get_lifecycle(tenant_id), key=lambda r: r.rule_id) != rules:
                    await self.store.set_lifecycle(tenant_id, rules)
                if isinstance(self.store, FilesystemObjectStore):
                    await self.store.enforce_lifecycle(tenant_id, now=now)
            except Unavailable as exc:
                log.warning("dvr.lifecycle_sync_failed", tenant_id=str(tenant_id), error=str(exc))
        report = SweepReport(destroyed=destroyed, held_skipped=held, locked_skipped=locked, orphans_removed=orphans)
        log.info("dvr.sweep", **report.__dict__)
        return report

    async def _sweep_camera(self, tenant_id: uuid.UUID, camera_id: uuid.UUID, tier: Tier, retention: Retention,
                            now: datetime, term: Term | None) -> tuple[int, int, int]:
        cutoff = now - timedelta(days=retention.max_days)
        destroyed = held_count = locked = 0
        while True:
            if term is not None and not await term.still_leading():
                log.warning("dvr.sweep_leadership_lost", camera_id=str(camera_id))
                return destroyed, held_count, locked
            async with self._department() as conn:
                items: list[Segment | Clip]
                if tier is Tier.CONTINUOUS:
                    items = list(await self.repo.segments_ending_before(conn, camera_id, cutoff, self.batch))
                else:
                    items = list(await self.repo.clips_ending_before(conn, camera_id, cutoff, self.batch))
                held = await self.repo.held_recordings(conn, [i.id for i in items])
            progressed = False
            for item in items:
                if item.id in held:
                    held_count += 1
                    continue
                method = "retention_sweeper"
                destroyed_at = now
                if item.version_id is not None:
                    try:
                        proof = await self.store.delete_version(tenant_id, item.object_key, item.version_id)
                        destroyed_at = proof.deleted_at
                    except NotFound:
                        method = "bucket_lifecycle"  # the safety net got there first; the register still says so
                    except ObjectLocked as exc:
                        locked += 1
                        log.warning("dvr.sweep_locked", key=item.object_key, error=str(exc))
                        continue
                async with self._department() as conn, conn.transaction():
                    await self.repo.register_destruction(
                        conn, tenant_id=tenant_id, camera_id=camera_id,
                        recording_type="segment" if tier is Tier.CONTINUOUS else "clip", recording_id=item.id,
                        start_at=item.start_at, end_at=item.end_at, sha256=item.sha256, size_bytes=item.size_bytes,
                        object_key=item.object_key, version_id=item.version_id, retention_days=retention.max_days,
                        due_at=destruction_due(item.end_at, retention), destroyed_at=destroyed_at, method=method)
                destroyed += 1
                progressed = True
            if len(items) < self.batch or not progressed:
                return destroyed, held_count, locked

    async def _sweep_orphans(self, tenant_id: uuid.UUID, camera_id: uuid.UUID, tier: Tier, retention: Retention,
                             now: datetime) -> int:
        """Versions under the camera's prefix that the index does not track (a duplicate upload, a delete marker)
        and that are past retention go too, so no version older than the limit survives."""
        cutoff = now - timedelta(days=retention.max_days)
        removed = 0
        try:
            versions = await self.store.list_versions(tenant_id, f"{tier.value}/{camera_id}/")
        except Unavailable as exc:
            log.warning("dvr.orphan_listing_failed", camera_id=str(camera_id), error=str(exc))
            return 0
        async with self._department() as conn:
            indexed = await self.repo.indexed_keys(conn, camera_id)
        for v in versions:
            if v.last_modified > cutoff or (v.key in indexed and not v.is_delete_marker and v.is_latest):
                continue
            try:
                await self.store.delete_version(tenant_id, v.key, v.version_id)
                removed += 1
            except (ObjectLocked, NotFound):
                continue
        return removed
