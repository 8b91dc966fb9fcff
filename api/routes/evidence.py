"""Recordings and evidence: journaled playback, alert clips, retention tiers, requisitions, legal holds, exports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from api.deps import PrincipalDep, ServicesDep
from core.errors import NotFound
from core.objectstore import FilesystemObjectStore
from dvr.model import ExportResult, LegalFrame, Playback, PlaybackItem, Requisition, Tier

Motive = Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]


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
    procedure_number: Text
    legal_frame: LegalFrame
    opj_name: Text
    opj_service: Text
    camera_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=200)]
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

    @post("/requisitions/{requisition_id:uuid}/exports", summary="Build a signed export package")
    async def create_export(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        requisition_id: FromPath[uuid.UUID],
        data: JSONBody[MotiveRequest],
    ) -> ExportResult:
        return await services.evidence.create_export(principal, requisition_id, motive=data.motive)

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
) -> Response[bytes]:
    store = services.store
    key = key.lstrip("/")
    # The signature, not a bearer token, authorises this request: links are short-lived and journaled when issued.
    if not isinstance(store, FilesystemObjectStore) or not store.verify_presigned(
        tenant_id, key, version or None, expires, signature
    ):
        raise NotFound("no such media, or the link expired")
    data = await store.get(tenant_id, key, version_id=version or None)
    return Response(
        content=data,
        media_type="video/mp4" if key.endswith(".mp4") else "application/octet-stream",
        headers={"Cache-Control": "private, no-store"},
    )


ROUTES = [EvidenceController, media]
