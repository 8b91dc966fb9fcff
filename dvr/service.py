"""Evidence use cases for the API and the alert-clip consumer: journaled playback, event clips, retention settings,
requisitions with legal holds, export requests (built by dvr.export_builder). Every media access is journaled in the
same transaction."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from core.crypto import SecretBox
from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound, Unavailable
from core.events import Event
from core.ids import new_id
from core.logging import get_logger
from core.objectstore import ObjectLocked, ObjectStore, sha256_file
from core.tenancy import HABILITATED_ROLES, Principal, Role, require_role
from dvr.errors import ClipNotReady, ExportTooLarge, NotRecorded, RequisitionReleased
from dvr.events import ClipRecorded
from dvr.hls import init_size, link_lifetime, playlist
from dvr.model import (
    Clip,
    ExportJob,
    HlsPlayback,
    LegalFrame,
    Playback,
    PlaybackItem,
    Requisition,
    Segment,
    Tier,
    Timeline,
    clip_key,
)
from dvr.remux import assemble
from dvr.repository import DvrRepository
from dvr.rules import (
    Retention,
    check_interval,
    check_retention_request,
    effective_retention,
    minimum_lock_until,
    timeline_gaps,
)
from dvr.settings import DvrSettings
from journal.errors import MotiveRequired
from journal.keys import KeyPurpose, public_key
from journal.service import JournalService

log = get_logger(__name__)

EventSink = Callable[[Event], Awaitable[None]]
EVIDENCE_ROLES = frozenset({Role.DEPARTMENT_ADMIN, Role.SUPERVISOR})
RETENTION_ROLES = frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN})
# A timeline shows when a camera recorded, no image: the roles that play back, and those who audit or run cameras.
TIMELINE_ROLES = HABILITATED_ROLES | EVIDENCE_ROLES | {Role.AUDITOR, Role.TENANT_ADMIN}
TIMELINE_MAX_S = 7 * 86400.0


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

    async def hls_playback(self, principal: Principal, camera_id: uuid.UUID, start: datetime, end: datetime, *,
                           motive: str, recipient: str | None = None) -> HlsPlayback:
        """The recordings of one camera over an interval as an HLS (fMP4) playlist of signed, short-lived links,
        after journaling who and why (a `media.playback` line, like the list of links)."""
        require_role(principal, HABILITATED_ROLES | EVIDENCE_ROLES, "play back recordings")
        check_interval(start, end, max_s=self.settings.playback_max_s, now=datetime.now(UTC))
        async with self.db.transaction(principal) as conn:
            tenant_id = await self.repo.camera_tenant(conn, camera_id)
            if tenant_id is None:
                raise NotFound("no such camera")
            found = await self.repo.segments_between(conn, camera_id, start, end)
            gaps = await self.repo.gaps_between(conn, camera_id, start, end)
            # Segments recorded before the recorder noted their init section: read from their head in the store.
            heads = [s.init_size or await self._read_init_size(tenant_id, s) for s in found]
            segments = [s for s, head in zip(found, heads, strict=True) if head]
            if not segments:
                raise NotRecorded("nothing playable was recorded for this camera over the requested interval")
            await self.journal.record(conn, tenant_id=tenant_id, actor=principal, action="media.playback",
                                      target_type="camera", target_id=camera_id, camera_id=camera_id,
                                      range_start=start, range_end=end, motive=motive, recipient=recipient,
                                      details={"segments": len(segments), "format": "hls"})
        ttl = link_lifetime(segments, self.settings.playback_url_ttl_s, self.settings.playback_max_s)
        urls = [await self.store.presigned_get(tenant_id, s.object_key, version_id=s.version_id, expires=ttl)
                for s in segments]
        text = playlist(segments, [h for h in heads if h], urls, start=start,
                        gap_tolerance_s=self.settings.gap_tolerance_s)
        return HlsPlayback(camera_id=camera_id, start_at=segments[0].start_at, end_at=segments[-1].end_at,
                           playlist=text, segments=len(segments), gaps=gaps, expires_at=datetime.now(UTC) + ttl)

    async def _read_init_size(self, tenant_id: uuid.UUID, segment: Segment) -> int | None:
        reader = await self.store.read_stream(tenant_id, segment.object_key, version_id=segment.version_id,
                                              chunk_size=64 * 1024)
        try:
            head = await asyncio.to_thread(reader.read)
        finally:
            await asyncio.to_thread(reader.close)
        size = init_size(head)
        if size is None:
            log.warning("dvr.segment_without_init_section", object_key=segment.object_key)
        return size

    async def timeline(self, principal: Principal, camera_id: uuid.UUID, start: datetime,
                       end: datetime) -> Timeline:
        """What was recorded of a camera over a period, and the gaps with their causes. Times only, no image: not
        a media access, so not journaled."""
        require_role(principal, TIMELINE_ROLES, "read recording timelines")
        now = datetime.now(UTC)
        async with self.db.transaction(principal, readonly=True) as conn:
            # The camera first: outside the caller's scope it does not exist, whatever the interval.
            if await self.repo.camera_tenant(conn, camera_id) is None:
                raise NotFound("no such camera")
            check_interval(start, end, max_s=TIMELINE_MAX_S, now=now)
            spans = await self.repo.recorded_spans(conn, camera_id, start, end, self.settings.gap_tolerance_s)
            known = await self.repo.gaps_between(conn, camera_id, start, end)
        # The future is not a gap: the timeline's holes stop at the present.
        gaps = timeline_gaps(spans, known, start, min(end, now), self.settings.gap_tolerance_s)
        return Timeline(camera_id=camera_id, start_at=start, end_at=end, recorded=spans, gaps=gaps)

    async def clip_playback(self, principal: Principal, clip_id: uuid.UUID, *, motive: str) -> PlaybackItem:
        """A short-lived URL for one clip (an alert's clip for an officer or operator), journaled with motive."""
        require_role(principal, HABILITATED_ROLES | EVIDENCE_ROLES | {Role.OFFICER}, "view clips")
        ttl = timedelta(seconds=self.settings.playback_url_ttl_s)
        async with self.db.transaction(principal) as conn:
            clip = await self.repo.clip(conn, clip_id)
            if clip is None or (principal.role is Role.OFFICER and (
                    principal.force_id is None or not await self.repo.clip_dispatched_to(conn, clip_id,
                                                                                         principal.force_id))):
                # The rule of POST /alerts/{id}/clip/view: an officer reaches the clip of an alert only once a human
                # sent that alert to their force; before that (or for another force's alert) it does not exist.
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
    async def signing_public_key(self) -> bytes:
        """The platform's export key (PEM), to publish so recipients verify packages against it. Only read here:
        the key is provisioned by `vigie evidence init-key`; until then this answers 503."""
        # A platform key, not a tenant's row: an empty-scope transaction on the runtime role is all it needs.
        async with self.db.anonymous(readonly=True) as conn:
            return await public_key(conn, KeyPurpose.EXPORT)

    async def request_export(self, principal: Principal, requisition_id: uuid.UUID, *, motive: str) -> ExportJob:
        """Queue the signed export of a requisition's recordings, journaled as a media export with its motive. The
        recorders' process builds it (dvr.export_builder); an export whose recordings exceed the size cap is
        refused here, before anything is built."""
        require_role(principal, EVIDENCE_ROLES, "export evidence")
        if not motive.strip():
            raise MotiveRequired()
        cap = self.settings.export_max_bytes
        async with self.db.transaction(principal) as conn:
            req = await self.repo.requisition(conn, requisition_id)
            if req is None:
                raise NotFound("no such requisition")
            if req.released_at is not None:
                raise RequisitionReleased("this requisition was released; its recordings are no longer held")
            segments, estimated = await self.repo.recorded_bytes(conn, req.camera_ids, req.start_at, req.end_at)
            if not segments:
                raise NotRecorded("nothing was recorded for this requisition's cameras and interval")
            if estimated > cap:
                raise ExportTooLarge(
                    f"this export would hold about {estimated / 2**20:.0f} MiB of recordings, above the "
                    f"{cap / 2**20:.0f} MiB an export may hold: request several exports over shorter intervals "
                    "or fewer cameras")
            job = await self.repo.insert_export_job(
                conn, job_id=new_id(), tenant_id=req.tenant_id, requisition_id=req.id,
                requested_by=principal.user_id, requested_by_name=principal.display_name,
                requested_by_role=principal.role.value, motive=motive.strip(), estimated_bytes=estimated,
                size_cap_bytes=cap)
            await self.journal.record(conn, tenant_id=req.tenant_id, actor=principal, action="media.export",
                                      target_type="export_job", target_id=job.id, range_start=req.start_at,
                                      range_end=req.end_at, motive=motive, recipient=req.opj_service,
                                      details={"requisition_id": str(req.id), "estimated_bytes": estimated})
        return job

    async def export_job(self, principal: Principal, job_id: uuid.UUID) -> ExportJob:
        """Where a requested export stands; once done, the package's id and SHA-256."""
        require_role(principal, EVIDENCE_ROLES, "follow an export")
        async with self.db.transaction(principal, readonly=True) as conn:
            job = await self.repo.export_job(conn, job_id)
        if job is None:
            raise NotFound("no such export job")
        return job

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
