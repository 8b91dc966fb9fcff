"""DVR use cases: playback with motive, event clips, retention sweeps with proof, requisitions and legal holds,
signed exports. The API calls these functions; every media access is journaled in the same transaction."""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.crypto import SecretBox
from core.db import tenant_transaction
from core.errors import InvalidInput, NotFound, Unavailable
from core.events import Event
from core.ids import new_id
from core.logging import get_logger
from core.objectstore import FilesystemObjectStore, ObjectLocked, ObjectStore, sha256_file
from core.tenancy import HABILITATED_ROLES, Principal, Role, require_role
from dvr.errors import ClipNotReady, NotRecorded, RequisitionReleased
from dvr.events import ClipRecorded
from dvr.export import PackageFile, build_package, key_id, public_pem
from dvr.model import (
    Clip,
    ExportResult,
    LegalFrame,
    Playback,
    PlaybackItem,
    Requisition,
    Segment,
    Tier,
    clip_key,
    export_key,
)
from dvr.repository import DvrRepository, connection
from dvr.rules import (
    Retention,
    check_interval,
    check_retention_request,
    coverage,
    destruction_due,
    effective_retention,
    lifecycle_rules,
    minimum_lock_until,
)
from dvr.settings import DvrSettings
from journal.service import JournalService

log = get_logger(__name__)

EventSink = Callable[[Event], Awaitable[None]]
EVIDENCE_ROLES = frozenset({Role.DEPARTMENT_ADMIN, Role.SUPERVISOR})
RETENTION_ROLES = frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN})
_SIGNING_PURPOSE = "export-signing-key"


async def _no_publish(_event: Event) -> None:
    return None


def _scope(principal: Principal) -> tuple[frozenset[uuid.UUID], uuid.UUID | None]:
    return principal.scope.tenant_ids, principal.scope.department_id


@dataclass
class AssembledClip:
    data_path: Path
    start_at: datetime
    end_at: datetime
    sources: list[dict[str, Any]]
    holes: list[tuple[datetime, datetime]]


async def assemble(store: ObjectStore, settings: DvrSettings, tenant_id: uuid.UUID, segments: list[Segment],
                   start: datetime, end: datetime, workdir: Path) -> AssembledClip:
    """Remux the segments covering [start, end) into one MP4 without re-encoding; every source is re-hashed
    against the index first, so a clip is never cut from altered footage."""
    paths = []
    sources = []
    for i, seg in enumerate(segments):
        local = workdir / f"src-{i:05d}.mp4"
        await store.download(tenant_id, seg.object_key, local, version_id=seg.version_id)
        digest = await asyncio.to_thread(sha256_file, local)
        if digest != seg.sha256:
            raise Unavailable(f"segment {seg.object_key} does not match its indexed SHA-256; refusing to use it")
        paths.append(local)
        sources.append({"object_key": seg.object_key, "version_id": seg.version_id, "sha256": seg.sha256,
                        "start_at": seg.start_at.isoformat(), "end_at": seg.end_at.isoformat()})
    first = segments[0].start_at
    clip_start = max(start, first)
    clip_end = min(end, segments[-1].end_at)
    listing = workdir / "concat.txt"
    listing.write_text("".join(f"file '{p.name}'\n" for p in paths))
    out = workdir / "clip.mp4"
    offset = max(0.0, (clip_start - first).total_seconds())
    duration = (clip_end - clip_start).total_seconds()
    process = await asyncio.create_subprocess_exec(
        settings.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "concat", "-safe", "0",
        "-ss", f"{offset:.3f}", "-i", str(listing), "-t", f"{duration:.3f}", "-map", "0:v:0", "-c", "copy",
        "-movflags", "+faststart", "-y", str(out), cwd=str(workdir),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await process.communicate()
    if process.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise Unavailable(f"remuxing the clip failed: {stderr.decode(errors='replace')[-300:]}")
    holes = coverage(segments, start, end, settings.gap_tolerance_s).holes
    return AssembledClip(data_path=out, start_at=clip_start, end_at=clip_end, sources=sources, holes=holes)


@dataclass
class EvidenceService:
    """Media access and evidence for the API process (runtime role, row-level security on every query)."""

    pool: asyncpg.Pool
    store: ObjectStore
    settings: DvrSettings
    secret_box: SecretBox
    journal: JournalService = field(default_factory=JournalService)
    repo: DvrRepository = field(default_factory=DvrRepository)
    publish: EventSink = _no_publish

    # -- playback --------------------------------------------------------------------------------------------------
    async def playback(self, principal: Principal, camera_id: uuid.UUID, start: datetime, end: datetime, *,
                       motive: str, recipient: str | None = None) -> Playback:
        """Short-lived URLs for the recordings of one camera over an interval, after journaling who and why."""
        require_role(principal, HABILITATED_ROLES | EVIDENCE_ROLES, "play back recordings")
        check_interval(start, end, max_s=self.settings.playback_max_s, now=datetime.now(UTC))
        ttl = timedelta(seconds=self.settings.playback_url_ttl_s)
        tenants, department = _scope(principal)
        async with tenant_transaction(self.pool, tenants, department_id=department) as conn:
            tenant_id = await self.repo.camera_tenant(conn, camera_id)
            if tenant_id is None:
                raise NotFound("no such camera")
            segments = await self.repo.segments_between(conn, camera_id, start, end)
            gaps = await self.repo.gaps_between(conn, camera_id, start, end)
            if not segments:
                raise NotRecorded("nothing was recorded for this camera over the requested interval")
            await self.journal.record(conn, tenant_id=tenant_id, actor=principal, action="media.playback",
                                      target_type="camera", target_id=camera_id, camera_id=camera_id,
                                      range_start=start, range_end=end, motive=motive, recipient=recipient,
                                      details={"segments": len(segments)})
        items = [PlaybackItem(start_at=s.start_at, end_at=s.end_at, sha256=s.sha256,
                              url=await self.store.presigned_get(tenant_id, s.object_key, version_id=s.version_id,
                                                                 expires=ttl)) for s in segments]
        return Playback(camera_id=camera_id, items=items, gaps=gaps, expires_at=datetime.now(UTC) + ttl)

    async def clip_playback(self, principal: Principal, clip_id: uuid.UUID, *, motive: str) -> PlaybackItem:
        """A short-lived URL for one clip (an alert's clip for an officer or operator), journaled with motive."""
        require_role(principal, HABILITATED_ROLES | EVIDENCE_ROLES | {Role.OFFICER}, "view clips")
        ttl = timedelta(seconds=self.settings.playback_url_ttl_s)
        tenants, department = _scope(principal)
        async with tenant_transaction(self.pool, tenants, department_id=department) as conn:
            clip = await self.repo.clip(conn, clip_id)
            if clip is None:
                raise NotFound("no such clip")
            await self.journal.record(conn, tenant_id=clip.tenant_id, actor=principal, action="media.clip",
                                      target_type="clip", target_id=clip.id, camera_id=clip.camera_id,
                                      range_start=clip.start_at, range_end=clip.end_at, motive=motive)
        url = await self.store.presigned_get(clip.tenant_id, clip.object_key, version_id=clip.version_id,
                                             expires=ttl)
        return PlaybackItem(start_at=clip.start_at, end_at=clip.end_at, url=url, sha256=clip.sha256)

    # -- clips -----------------------------------------------------------------------------------------------------
    async def clip_for_alert(self, tenant_id: uuid.UUID, alert_id: uuid.UUID, camera_id: uuid.UUID,
                             at: datetime, *, pre_s: float | None = None, post_s: float | None = None) -> Clip:
        """The clip of an alert: [at - pre, at + post] remuxed from the segments. Idempotent per alert.

        Raises ClipNotReady while the post-event buffer is still being recorded (the caller retries later) and
        NotRecorded when no segment covers the interval at all.
        """
        start = at - timedelta(seconds=self.settings.clip_pre_s if pre_s is None else pre_s)
        end = at + timedelta(seconds=self.settings.clip_post_s if post_s is None else post_s)
        return await self._make_clip(tenant_id, camera_id, start, end, alert_id=alert_id, created_by=None)

    async def _make_clip(self, tenant_id: uuid.UUID, camera_id: uuid.UUID, start: datetime, end: datetime, *,
                         alert_id: uuid.UUID | None, created_by: uuid.UUID | None) -> Clip:
        check_interval(start, end, max_s=self.settings.clip_max_s, now=datetime.now(UTC))
        async with tenant_transaction(self.pool, [tenant_id], readonly=True) as conn:
            if await self.repo.camera_tenant(conn, camera_id) != tenant_id:
                raise NotFound("no such camera")
            if alert_id is not None and (existing := await self.repo.clip_for_alert(conn, alert_id)):
                return existing
            segments = await self.repo.segments_between(conn, camera_id, start, end)
            retention = await self._retention(conn, camera_id, Tier.EVENT)
        last_end = segments[-1].end_at if segments else None
        settle = timedelta(seconds=2 * self.settings.segment_s + 5)
        if (last_end is None or last_end < end) and datetime.now(UTC) < end + settle:
            raise ClipNotReady("the clip's interval is not fully recorded yet")
        if not segments:
            raise NotRecorded("no recording covers the clip's interval")
        clip_id = new_id()
        with tempfile.TemporaryDirectory(prefix="vigie-clip-") as tmp:
            assembled = await assemble(self.store, self.settings, tenant_id, segments, start, end, Path(tmp))
            digest = await asyncio.to_thread(sha256_file, assembled.data_path)
            key = clip_key(camera_id, clip_id)
            stored = await self.store.put_file(
                tenant_id, key, assembled.data_path, content_type="video/mp4", sha256=digest,
                retain_until=minimum_lock_until(assembled.end_at, retention))
        clip = Clip(id=clip_id, tenant_id=tenant_id, camera_id=camera_id, alert_id=alert_id,
                    start_at=assembled.start_at, end_at=assembled.end_at, object_key=key,
                    version_id=stored.version_id, sha256=digest, size_bytes=stored.size)
        async with tenant_transaction(self.pool, [tenant_id]) as conn:
            saved = await self.repo.insert_clip(conn, clip, assembled.sources, created_by)
        if saved.id != clip.id:
            # Another worker won the race for this alert: drop our copy (it has no minimum lock to wait for
            # only when the authorisation sets none; otherwise the sweeper's orphan pass removes it later).
            try:
                if stored.version_id is not None:
                    await self.store.delete_version(tenant_id, key, stored.version_id)
            except ObjectLocked:
                pass
            return saved
        await self.publish(ClipRecorded(tenant_id=tenant_id, clip_id=clip.id, camera_id=camera_id,
                                        alert_id=alert_id, start_at=clip.start_at, end_at=clip.end_at,
                                        sha256=digest))
        return clip

    async def _retention(self, conn: asyncpg.Connection, camera_id: uuid.UUID, tier: Tier) -> Retention:
        inputs = await self.repo.retention_inputs(conn, camera_id, tier)
        if inputs is None:
            raise NotFound("no such camera")
        return effective_retention(inputs)

    # -- retention settings ----------------------------------------------------------------------------------------
    async def set_retention(self, principal: Principal, tenant_id: uuid.UUID, tier: Tier, days: int) -> None:
        """A tenant's retention per tier; refused above one month (CSI L252-5)."""
        require_role(principal, RETENTION_ROLES, "set retention")
        check_retention_request(days)
        tenants, department = _scope(principal)
        async with tenant_transaction(self.pool, tenants, department_id=department) as conn:
            if tenant_id not in tenants:
                raise NotFound("no such tenant")
            await self.repo.set_retention_policy(conn, tenant_id, tier, days, principal.user_id)
            await self.journal.record(conn, tenant_id=tenant_id, actor=principal, action="retention.set",
                                      target_type="tenant", target_id=tenant_id,
                                      details={"tier": tier.value, "days": days})

    # -- requisitions and legal holds ------------------------------------------------------------------------------
    async def register_requisition(
        self, principal: Principal, *, procedure_number: str, legal_frame: LegalFrame, opj_name: str,
        opj_service: str, camera_ids: list[uuid.UUID], start: datetime, end: datetime, received_at: datetime,
        opj_contact: str | None = None,
    ) -> Requisition:
        """Register a judicial requisition and place object-lock legal holds on every covered recording."""
        require_role(principal, EVIDENCE_ROLES, "register a requisition")
        now = datetime.now(UTC)
        check_interval(start, end, max_s=31 * 86400, now=now)
        for value, name in ((procedure_number, "procedure_number"), (opj_name, "opj_name"),
                            (opj_service, "opj_service")):
            if not value.strip():
                raise InvalidInput(f"{name} is required for a legal hold", field=name)
        if not camera_ids:
            raise InvalidInput("a requisition covers at least one camera", field="camera_ids")
        tenants, department = _scope(principal)
        placed: list[tuple[uuid.UUID, str, str]] = []
        async with tenant_transaction(self.pool, tenants, department_id=department) as conn:
            owners = {c: await self.repo.camera_tenant(conn, c) for c in dict.fromkeys(camera_ids)}
            if any(t is None for t in owners.values()):
                raise NotFound("no such camera")
            tenant_ids = set(owners.values())
            if len(tenant_ids) != 1:
                raise InvalidInput("a requisition covers the cameras of one tenant", field="camera_ids")
            tenant_id = next(iter(tenant_ids))
            assert tenant_id is not None
            req = Requisition(id=new_id(), tenant_id=tenant_id, procedure_number=procedure_number.strip(),
                              legal_frame=legal_frame, opj_name=opj_name.strip(), opj_service=opj_service.strip(),
                              opj_contact=opj_contact, camera_ids=list(owners), start_at=start, end_at=end,
                              received_at=received_at, registered_by=principal.user_id)
            await self.repo.insert_requisition(conn, req)
            try:
                for camera_id in owners:
                    for seg in await self.repo.segments_between(conn, camera_id, start, end):
                        await self._hold(conn, req, camera_id, "segment", seg.id, seg.object_key, seg.version_id,
                                         seg.sha256, placed)
                    for clip in await self.repo.clips_between(conn, camera_id, start, end):
                        await self._hold(conn, req, camera_id, "clip", clip.id, clip.object_key, clip.version_id,
                                         clip.sha256, placed)
                await self.journal.record(conn, tenant_id=tenant_id, actor=principal, action="evidence.hold_placed",
                                          target_type="requisition", target_id=req.id, range_start=start,
                                          range_end=end, recipient=opj_service,
                                          details={"procedure_number": req.procedure_number,
                                                   "recordings": len(placed)})
            except BaseException:
                await self._undo_holds(tenant_id, placed)
                raise
        return req

    async def _hold(self, conn: asyncpg.Connection, req: Requisition, camera_id: uuid.UUID, kind: str,
                    recording_id: uuid.UUID, key: str, version_id: str | None, sha256: str,
                    placed: list[tuple[uuid.UUID, str, str]]) -> None:
        await self.repo.insert_hold(conn, tenant_id=req.tenant_id, requisition_id=req.id, camera_id=camera_id,
                                    recording_type=kind, recording_id=recording_id, object_key=key,
                                    version_id=version_id, sha256=sha256)
        if version_id is not None:
            await self.store.set_legal_hold(req.tenant_id, key, version_id, on=True)
            placed.append((recording_id, key, version_id))

    async def _undo_holds(self, tenant_id: uuid.UUID, placed: list[tuple[uuid.UUID, str, str]]) -> None:
        for _, key, version_id in placed:
            try:
                await self.store.set_legal_hold(tenant_id, key, version_id, on=False)
            except (Unavailable, NotFound) as exc:
                log.error("dvr.hold_undo_failed", key=key, version_id=version_id, error=str(exc))

    async def release_requisition(self, principal: Principal, requisition_id: uuid.UUID, *, reason: str) -> None:
        """End a requisition's holds (the judicial authority lifted them); recordings resume normal retention."""
        require_role(principal, EVIDENCE_ROLES, "release a legal hold")
        if not reason.strip():
            raise InvalidInput("a release needs its reason", field="reason")
        tenants, department = _scope(principal)
        async with tenant_transaction(self.pool, tenants, department_id=department) as conn:
            req = await self.repo.requisition(conn, requisition_id)
            if req is None:
                raise NotFound("no such requisition")
            if not await self.repo.insert_release(conn, req.tenant_id, req.id, principal.user_id, reason.strip()):
                raise RequisitionReleased("this requisition's holds were already released")
            for hold in await self.repo.holds(conn, req.id):
                if hold["version_id"] is None or await self.repo.other_active_holds(conn, hold["recording_id"],
                                                                                    req.id):
                    continue
                try:
                    await self.store.set_legal_hold(req.tenant_id, hold["object_key"], hold["version_id"], on=False)
                except NotFound:
                    continue
            await self.journal.record(conn, tenant_id=req.tenant_id, actor=principal,
                                      action="evidence.hold_released", target_type="requisition",
                                      target_id=req.id, details={"reason": reason.strip()})

    async def requisition(self, principal: Principal, requisition_id: uuid.UUID) -> Requisition:
        require_role(principal, EVIDENCE_ROLES | {Role.AUDITOR, Role.TENANT_ADMIN}, "read requisitions")
        tenants, department = _scope(principal)
        async with tenant_transaction(self.pool, tenants, department_id=department, readonly=True) as conn:
            req = await self.repo.requisition(conn, requisition_id)
        if req is None:
            raise NotFound("no such requisition")
        return req

    # -- signed exports ------------------------------------------------------------------------------------------
    async def _signing_key(self, conn: asyncpg.Connection) -> Ed25519PrivateKey:
        row = await self.repo.signing_key(conn)
        if row is None:
            private = Ed25519PrivateKey.generate()
            raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
            public = private.public_key()
            await self.repo.insert_signing_key(conn, key_id(public), public_pem(public),
                                               self.secret_box.seal(raw, purpose=_SIGNING_PURPOSE))
            row = await self.repo.signing_key(conn)
            assert row is not None
        raw = self.secret_box.open(row["private_key_sealed"], purpose=_SIGNING_PURPOSE)
        return Ed25519PrivateKey.from_private_bytes(raw)

    async def signing_public_key(self) -> bytes:
        """The platform's export key (PEM), to publish so recipients verify packages against it."""
        async with connection(self.pool) as conn, conn.transaction():
            return public_pem((await self._signing_key(conn)).public_key())

    async def create_export(self, principal: Principal, requisition_id: uuid.UUID, *, motive: str) -> ExportResult:
        """Package the requisition's recordings (one remuxed clip per camera) with a signed manifest."""
        require_role(principal, EVIDENCE_ROLES, "export evidence")
        tenants, department = _scope(principal)
        async with tenant_transaction(self.pool, tenants, department_id=department, readonly=True) as conn:
            req = await self.repo.requisition(conn, requisition_id)
            if req is None:
                raise NotFound("no such requisition")
            per_camera = [(c, await self.repo.camera_name(conn, c),
                           await self.repo.segments_between(conn, c, req.start_at, req.end_at))
                          for c in req.camera_ids]
        if req.released_at is not None:
            raise RequisitionReleased("this requisition was released; its recordings are no longer held")
        export_id = new_id()
        files = []
        with tempfile.TemporaryDirectory(prefix="vigie-export-") as tmp:
            for i, (camera_id, name, segments) in enumerate(per_camera):
                if not segments:
                    continue
                work = Path(tmp) / str(i)
                work.mkdir()
                clip = await assemble(self.store, self.settings, req.tenant_id, segments, req.start_at, req.end_at,
                                      work)
                safe = re.sub(r"[^A-Za-z0-9_-]+", "-", name or str(camera_id)).strip("-")[:60]
                files.append(PackageFile(
                    name=f"{i + 1:02d}_{safe}_{clip.start_at:%Y%m%dT%H%M%SZ}.mp4",
                    data=await asyncio.to_thread(clip.data_path.read_bytes),
                    description={"camera_id": str(camera_id), "camera_name": name,
                                 "start_at": clip.start_at.isoformat(), "end_at": clip.end_at.isoformat(),
                                 "source_segments": clip.sources,
                                 "not_recorded": [[a.isoformat(), b.isoformat()] for a, b in clip.holes]}))
        if not files:
            raise NotRecorded("nothing was recorded for this requisition's cameras and interval")
        exported_at = datetime.now(UTC)
        header = {
            "export_id": str(export_id), "tenant_id": str(req.tenant_id), "exported_at": exported_at.isoformat(),
            "requisition": {"id": str(req.id), "procedure_number": req.procedure_number,
                            "legal_frame": req.legal_frame.value, "opj_name": req.opj_name,
                            "opj_service": req.opj_service, "start_at": req.start_at.isoformat(),
                            "end_at": req.end_at.isoformat()},
            "exported_by": {"user_id": str(principal.user_id), "name": principal.display_name,
                            "role": principal.role.value},
            "motive": motive,
        }
        async with tenant_transaction(self.pool, tenants, department_id=department) as conn:
            private = await self._signing_key(conn)
            package, manifest = build_package(files, header, private)
            stored = await self.store.put(req.tenant_id, export_key(export_id), package,
                                          content_type="application/zip", legal_hold=True)
            result = ExportResult(id=export_id, requisition_id=req.id, object_key=stored.key,
                                  version_id=stored.version_id, package_sha256=stored.sha256, files=len(files),
                                  signing_key_id=key_id(private.public_key()))
            await self.repo.insert_export(
                conn, export_id=export_id, tenant_id=req.tenant_id, requisition_id=req.id,
                exported_by=principal.user_id, exported_by_name=principal.display_name, object_key=stored.key,
                version_id=stored.version_id, package_sha256=stored.sha256,
                manifest_sha256=hashlib.sha256(manifest).hexdigest(), signing_key_id=result.signing_key_id)
            await self.journal.record(conn, tenant_id=req.tenant_id, actor=principal, action="media.export",
                                      target_type="export", target_id=export_id, range_start=req.start_at,
                                      range_end=req.end_at, motive=motive, recipient=req.opj_service,
                                      details={"requisition_id": str(req.id), "files": len(files),
                                               "package_sha256": stored.sha256})
        return result

    async def export_download(self, principal: Principal, export_id: uuid.UUID, *, motive: str) -> str:
        """A short-lived URL for a signed package, journaled like any media access."""
        require_role(principal, EVIDENCE_ROLES, "download an export")
        tenants, department = _scope(principal)
        async with tenant_transaction(self.pool, tenants, department_id=department) as conn:
            row = await self.repo.export(conn, export_id)
            if row is None:
                raise NotFound("no such export")
            await self.journal.record(conn, tenant_id=row["tenant_id"], actor=principal, action="media.export",
                                      target_type="export", target_id=export_id, motive=motive,
                                      details={"download": True})
        return await self.store.presigned_get(row["tenant_id"], row["object_key"], version_id=row["version_id"],
                                              expires=timedelta(seconds=self.settings.playback_url_ttl_s))

    async def record_transmission(self, principal: Principal, export_id: uuid.UUID, *, transmitted_at: datetime,
                                  recipient: str) -> None:
        """The register's "date de transmission au parquet" for one export."""
        require_role(principal, EVIDENCE_ROLES, "record a transmission")
        if not recipient.strip():
            raise InvalidInput("the recipient is required", field="recipient")
        tenants, department = _scope(principal)
        async with tenant_transaction(self.pool, tenants, department_id=department) as conn:
            row = await self.repo.export(conn, export_id)
            if row is None:
                raise NotFound("no such export")
            if not await self.repo.insert_transmission(conn, tenant_id=row["tenant_id"], export_id=export_id,
                                                       transmitted_at=transmitted_at, recipient=recipient.strip(),
                                                       recorded_by=principal.user_id):
                from core.errors import Conflict

                raise Conflict("this export's transmission is already recorded")
            await self.journal.record(conn, tenant_id=row["tenant_id"], actor=principal,
                                      action="evidence.transmitted", target_type="export", target_id=export_id,
                                      recipient=recipient.strip(),
                                      details={"transmitted_at": transmitted_at.isoformat()})


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

    pool: asyncpg.Pool
    store: ObjectStore
    repo: DvrRepository = field(default_factory=DvrRepository)
    batch: int = 500

    async def sweep(self, *, now: datetime | None = None) -> SweepReport:
        now = now or datetime.now(UTC)
        destroyed = held = locked = orphans = 0
        async with connection(self.pool) as conn:
            cameras = await self.repo.cameras_with_recordings(conn)
        per_tenant: dict[uuid.UUID, dict[uuid.UUID, dict[Tier, Retention]]] = {}
        for row in cameras:
            tenant_id, camera_id = row["tenant_id"], row["camera_id"]
            async with connection(self.pool) as conn:
                tiers = {}
                for tier in Tier:
                    inputs = await self.repo.retention_inputs(conn, camera_id, tier)
                    if inputs is not None:
                        tiers[tier] = effective_retention(inputs)
            per_tenant.setdefault(tenant_id, {})[camera_id] = tiers
            for tier, retention in tiers.items():
                d, h, lk = await self._sweep_camera(tenant_id, camera_id, tier, retention, now)
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
                            now: datetime) -> tuple[int, int, int]:
        cutoff = now - timedelta(days=retention.max_days)
        destroyed = held_count = locked = 0
        while True:
            async with connection(self.pool) as conn:
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
                async with connection(self.pool) as conn, conn.transaction():
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
        async with connection(self.pool) as conn:
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
