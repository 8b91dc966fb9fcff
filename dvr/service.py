"""Evidence use cases for the API and the alert-clip consumer: journaled playback, event clips, retention settings,
requisitions with legal holds, signed exports. Every media access is journaled in the same transaction."""

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

import asyncpg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.crypto import SecretBox
from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound, Unavailable
from core.events import Event
from core.ids import new_id
from core.logging import get_logger
from core.objectstore import ObjectLocked, ObjectStore, sha256_file
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
    Tier,
    clip_key,
    export_key,
)
from dvr.remux import assemble
from dvr.repository import DvrRepository
from dvr.rules import Retention, check_interval, check_retention_request, effective_retention, minimum_lock_until
from dvr.settings import DvrSettings
from journal.service import JournalService

log = get_logger(__name__)

EventSink = Callable[[Event], Awaitable[None]]
EVIDENCE_ROLES = frozenset({Role.DEPARTMENT_ADMIN, Role.SUPERVISOR})
RETENTION_ROLES = frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN})
_SIGNING_PURPOSE = "export-signing-key"


async def _no_publish(_event: Event) -> None:
    return None


@dataclass
class EvidenceService:
    """Media access and evidence on the runtime role: a request sees its principal's scope, the alert-clip consumer
    the tenant its event names (row-level security on every query)."""

    db: Database
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
        async with self.db.transaction(principal) as conn:
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
        async with self.db.transaction(principal) as conn:
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
        # The event names the tenant; a camera outside it fails in the BEGIN round trip (OutOfScope).
        async with self.db.for_tenants([tenant_id], camera_id=camera_id, readonly=True) as conn:
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
        async with self.db.for_tenants([tenant_id], camera_id=camera_id) as conn:
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
        if not principal.scope.includes(tenant_id):
            raise NotFound("no such tenant")
        async with self.db.transaction(principal) as conn:
            await self.repo.set_retention_policy(conn, tenant_id, tier, days, principal.user_id)
            await self.journal.note(conn, principal, "retention.set", ("tenant", tenant_id), tenant_id=tenant_id,
                                    tier=tier.value, days=days)

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
        placed: list[tuple[uuid.UUID, str, str]] = []
        async with self.db.transaction(principal) as conn:
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
        async with self.db.transaction(principal) as conn:
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
            await self.journal.note(conn, principal, "evidence.hold_released", ("requisition", req.id),
                                    tenant_id=req.tenant_id, reason=reason.strip())

    async def requisition(self, principal: Principal, requisition_id: uuid.UUID) -> Requisition:
        require_role(principal, EVIDENCE_ROLES | {Role.AUDITOR, Role.TENANT_ADMIN}, "read requisitions")
        async with self.db.transaction(principal, readonly=True) as conn:
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
        # A platform key, not a tenant's row: an empty-scope transaction on the runtime role is all it needs.
        async with self.db.anonymous() as conn:
            return public_pem((await self._signing_key(conn)).public_key())

    async def create_export(self, principal: Principal, requisition_id: uuid.UUID, *, motive: str) -> ExportResult:
        """Package the requisition's recordings (one remuxed clip per camera) with a signed manifest."""
        require_role(principal, EVIDENCE_ROLES, "export evidence")
        async with self.db.transaction(principal, readonly=True) as conn:
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
        async with self.db.transaction(principal) as conn:
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
        async with self.db.transaction(principal) as conn:
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
        async with self.db.transaction(principal) as conn:
            row = await self.repo.export(conn, export_id)
            if row is None:
                raise NotFound("no such export")
            if not await self.repo.insert_transmission(conn, tenant_id=row["tenant_id"], export_id=export_id,
                                                       transmitted_at=transmitted_at, recipient=recipient.strip(),
                                                       recorded_by=principal.user_id):
                raise Conflict("this export's transmission is already recorded")
            await self.journal.record(conn, tenant_id=row["tenant_id"], actor=principal,
                                      action="evidence.transmitted", target_type="export", target_id=export_id,
                                      recipient=recipient.strip(),
                                      details={"transmitted_at": transmitted_at.isoformat()})
