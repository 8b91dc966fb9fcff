"""Recordings and evidence: journaled playback, alert clips, retention tiers, requisitions, legal holds, exports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody
from litestar.response import Stream

from api.deps import PrincipalDep, ServicesDep
from core.errors import NotFound
from core.objectstore import FilesystemObjectStore
from dvr.model import ExportJob, HlsPlayback, LegalFrame, Playback, PlaybackItem, Requisition, Tier, Timeline

# Each limit is the database's CHECK on the column the value lands in (migration 0021), so a value the API accepts is
# a value the database stores; the motive is the journal's and the export job's (0091).
Motive = Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
ProcedureNumber = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
OpjText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class PlaybackRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: datetime
    end: datetime
    motive: Motive
    recipient: Text | None = None


class MotiveRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    motive: Motive


class RetentionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tier: Tier
    days: Annotated[int, msgspec.Meta(ge=1, le=3650)]


class RequisitionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    procedure_number: ProcedureNumber
    legal_frame: LegalFrame
    opj_name: OpjText
    opj_service: OpjText
    camera_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=100)]
    start: datetime
    end: datetime
    received_at: datetime
    opj_contact: Text | None = None


class ReleaseRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Motive


class TransmissionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    transmitted_at: datetime
    recipient: Text


class DownloadLink(msgspec.Struct, frozen=True):
    url: str


class EvidenceController(Controller):
    path = "/"
    tags = ["evidence"]

    @post("/cameras/{camera_id:uuid}/playback", summary="Short-lived links to a camera's recordings (journaled)")
    async def playback(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        camera_id: FromPath[uuid.UUID],
        data: JSONBody[PlaybackRequest],
    ) -> Playback:
        return await services.evidence.playback(
            principal, camera_id, data.start, data.end, motive=data.motive, recipient=data.recipient
        )

    @post("/cameras/{camera_id:uuid}/playback/hls",
          summary="A camera's recordings as an HLS (fMP4) playlist of short-lived signed links (journaled)")
    async def hls_playback(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        camera_id: FromPath[uuid.UUID],
        data: JSONBody[PlaybackRequest],
    ) -> HlsPlayback:
        return await services.evidence.hls_playback(
            principal, camera_id, data.start, data.end, motive=data.motive, recipient=data.recipient
        )

    @get("/cameras/{camera_id:uuid}/timeline", summary="Recorded spans and gaps of a camera over a period (7 days max)")
    async def timeline(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        camera_id: FromPath[uuid.UUID],
        start: FromQuery[datetime],
        end: FromQuery[datetime],
    ) -> Timeline:
        return await services.evidence.timeline(principal, camera_id, start, end)

    @post("/clips/{clip_id:uuid}/view", summary="A short-lived link to an alert's clip (journaled)")
    async def view_clip(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        clip_id: FromPath[uuid.UUID],
        data: JSONBody[MotiveRequest],
    ) -> PlaybackItem:
        return await services.evidence.clip_playback(principal, clip_id, motive=data.motive)

    @put("/tenants/{tenant_id:uuid}/retention", summary="Retention of a tier, within the legal month", status_code=204)
    async def set_retention(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[RetentionRequest],
    ) -> None:
        await services.evidence.set_retention(principal, tenant_id, data.tier, data.days)

    @post("/requisitions", summary="Register a judicial requisition and place legal holds")
    async def register_requisition(
        self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[RequisitionRequest]
    ) -> Requisition:
        return await services.evidence.register_requisition(
            principal,
            procedure_number=data.procedure_number,
            legal_frame=data.legal_frame,
            opj_name=data.opj_name,
            opj_service=data.opj_service,
            camera_ids=list(data.camera_ids),
            start=data.start,
            end=data.end,
            received_at=data.received_at,
            opj_contact=data.opj_contact,
        )

    @get("/requisitions/{requisition_id:uuid}", summary="Read a requisition")
    async def get_requisition(
        self, principal: PrincipalDep, services: ServicesDep, requisition_id: FromPath[uuid.UUID]
    ) -> Requisition:
        return await services.evidence.requisition(principal, requisition_id)

    @post("/requisitions/{requisition_id:uuid}/release", summary="Release the legal holds", status_code=204)
    async def release_requisition(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        requisition_id: FromPath[uuid.UUID],
        data: JSONBody[ReleaseRequest],
    ) -> None:
        await services.evidence.release_requisition(principal, requisition_id, reason=data.reason)

    @post(
        "/requisitions/{requisition_id:uuid}/exports",
        status_code=202,
        summary="Request a signed export package (built in the background; 422 past the size cap)",
    )
    async def request_export(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        requisition_id: FromPath[uuid.UUID],
        data: JSONBody[MotiveRequest],
    ) -> ExportJob:
        return await services.evidence.request_export(principal, requisition_id, motive=data.motive)

    @get("/export-jobs/{export_job_id:uuid}", summary="Where a requested export stands (its package once done)")
    async def export_job(
        self, principal: PrincipalDep, services: ServicesDep, export_job_id: FromPath[uuid.UUID]
    ) -> ExportJob:
        return await services.evidence.export_job(principal, export_job_id)

    @post("/exports/{export_id:uuid}/download", summary="A short-lived link to an export (journaled)")
    async def download_export(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        export_id: FromPath[uuid.UUID],
        data: JSONBody[MotiveRequest],
    ) -> DownloadLink:
        return DownloadLink(url=await services.evidence.export_download(principal, export_id, motive=data.motive))

    @post(
        "/exports/{export_id:uuid}/transmission", summary="Record the transmission to the prosecutor", status_code=204
    )
    async def record_transmission(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        export_id: FromPath[uuid.UUID],
        data: JSONBody[TransmissionRequest],
    ) -> None:
        await services.evidence.record_transmission(
            principal, export_id, transmitted_at=data.transmitted_at, recipient=data.recipient
        )

    @get("/evidence/signing-key", summary="The public key that signs export manifests (PEM)", media_type="text/plain")
    async def signing_key(self, services: ServicesDep) -> str:
        return (await services.evidence.signing_public_key()).decode()


@get(
    "/media/{tenant_id:uuid}/{key:path}",
    tags=["evidence"],
    summary="Serve a signed link of the filesystem store",
    include_in_schema=False,
)
async def media(
    services: ServicesDep,
    tenant_id: FromPath[uuid.UUID],
    key: FromPath[str],
    expires: FromQuery[int],
    signature: FromQuery[str],
    version: FromQuery[str] = "",
    byte_range: Annotated[str | None, HeaderParameter(name="Range")] = None,
) -> Stream | Response[bytes]:
    store = services.store
    key = key.lstrip("/")
    # The signature, not a bearer token, authorises this request: links are short-lived and journaled when issued.
    if not isinstance(store, FilesystemObjectStore) or not store.verify_presigned(
        tenant_id, key, version or None, expires, signature
    ):
        raise NotFound("no such media, or the link expired")
    media_type = "video/mp4" if key.endswith(".mp4") else None
    if byte_range is not None:
        # HLS players read a recorded segment's init section and its fragments as byte ranges of the one object.
        info = await store.stat(tenant_id, key, version_id=version or None)
        wanted = parse_byte_range(byte_range, info.size)
        if wanted is None:
            return Response(b"", status_code=416, headers={"Content-Range": f"bytes */{info.size}",
                                                           "Cache-Control": "private, no-store"})
        first, last = wanted
        part = await store.read_range(tenant_id, key, version_id=version or None, first=first, last=last)
        return Stream(part.chunks(), status_code=206,
                      media_type=media_type or part.content_type or "application/octet-stream",
                      headers={"Cache-Control": "private, no-store", "Content-Length": str(part.size),
                               "Content-Range": f"bytes {first}-{last}/{info.size}", "Accept-Ranges": "bytes"})
    # Streamed from the store in chunks: a recording or an export package is never held whole in memory.
    reader = await store.read_stream(tenant_id, key, version_id=version or None)
    return Stream(
        reader.chunks(),
        media_type=media_type or reader.content_type or "application/octet-stream",
        headers={"Cache-Control": "private, no-store", "Content-Length": str(reader.size), "Accept-Ranges": "bytes"},
    )


def parse_byte_range(header: str, size: int) -> tuple[int, int] | None:
    """One HTTP byte range (`bytes=first-last`, `bytes=first-`, `bytes=-suffix`) within an object of `size`
    bytes, as inclusive bounds; None when it is malformed, multiple or unsatisfiable (answered 416)."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash or not (first_text.isdigit() or last_text.isdigit()) or size == 0:
        return None
    if not first_text:
        suffix = int(last_text)
        return (max(0, size - suffix), size - 1) if suffix > 0 else None
    if not first_text.isdigit() or (last_text and not last_text.isdigit()):
        return None
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    return (first, last) if first <= last and first < size else None


ROUTES = [EvidenceController, media]
