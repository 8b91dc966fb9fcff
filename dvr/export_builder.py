"""The export builder: a department job of the recorders' process (python -m dvr) that claims requested exports of
any tenant, first come, remuxes each camera's recordings, writes the signed package to disk in chunks, stores it
under a legal hold and settles the job; a package past the size cap is refused, never built in memory."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import socket
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from core.crypto import SecretBox
from core.db import Database
from core.errors import NotFound, Unavailable
from core.ids import new_id
from core.logging import get_logger
from core.objectstore import ObjectStore, sha256_file
from dvr.errors import ExportTooLarge, NotRecorded, RequisitionReleased
from dvr.export import PackageFile, build_package_file, key_id
from dvr.model import ExportStatus, Requisition, Segment, export_key
from dvr.remux import assemble
from dvr.repository import DvrRepository
from dvr.settings import DvrSettings
from journal.errors import EvidenceKeyMissing
from journal.keys import KeyPurpose, signing_key
from journal.service import JournalService

log = get_logger(__name__)


def _builder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class _Built:
    export_id: uuid.UUID
    object_key: str
    version_id: str | None
    package_sha256: str
    package_bytes: int
    manifest_sha256: str
    files: int
    signing_key_id: str


class _ClaimLost(Exception):
    """Another builder took the job over (this one stalled past its claim)."""


@dataclass
class ExportBuilder:
    """Builds requested exports one at a time; copies of the process share the queue (FOR UPDATE SKIP LOCKED), and a
    claim renewed while building lapses if its builder dies, so another one takes the job over."""

    db: Database
    store: ObjectStore
    settings: DvrSettings
    secret_box: SecretBox
    builder_id: str = field(default_factory=_builder_id)
    journal: JournalService = field(default_factory=JournalService)
    repo: DvrRepository = field(default_factory=DvrRepository)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                built = await self.build_next()
            except (Unavailable, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("dvr.export_queue_unavailable", error=str(exc))
                built = None
            if built is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.export_poll_s)

    async def build_next(self) -> uuid.UUID | None:
        """Claim and build the oldest pending export; its job id, or None when there is none."""
        # A department job: the queue holds every tenant's requests and none names this process's tenants.
        async with self.db.cross_tenant("export jobs") as conn, conn.transaction():
            job = await self.repo.claim_export_job(conn, self.builder_id, self.settings.export_claim_ttl_s,
                                                   self.settings.export_max_attempts)
        if job is None:
            return None
        renewal = asyncio.create_task(self._renew(job["id"]))
        try:
            built = await self._build(job)
            await self._settle(job, built)
        except ExportTooLarge as exc:
            await self._finish(job, ExportStatus.REFUSED, exc.detail)
        except (NotFound, RequisitionReleased, EvidenceKeyMissing) as exc:
            await self._finish(job, ExportStatus.FAILED, exc.detail)
        except _ClaimLost:
            log.warning("dvr.export_claim_lost", job_id=str(job["id"]))
        except (Unavailable, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Transient (store, ffmpeg, database): the claim is left to lapse and the job is tried again.
            log.warning("dvr.export_failed", job_id=str(job["id"]), attempt=job["attempts"], error=str(exc))
        except Exception:
            # One export that cannot be built must not stop the recorders that share this process.
            log.exception("dvr.export_crashed", job_id=str(job["id"]))
            with contextlib.suppress(Unavailable, OSError, asyncpg.PostgresError):
                await self._finish(job, ExportStatus.FAILED, "the export could not be built (internal error, logged)")
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        return uuid.UUID(str(job["id"]))

    async def _renew(self, job_id: uuid.UUID) -> None:
        ttl = self.settings.export_claim_ttl_s
        while True:
            await asyncio.sleep(ttl / 3)
            with contextlib.suppress(Unavailable, OSError, asyncpg.PostgresError):
                async with self.db.cross_tenant("export jobs") as conn:
                    await self.repo.renew_export_claim(conn, job_id, self.builder_id, ttl)

    async def _finish(self, job: asyncpg.Record, status: ExportStatus, error: str) -> None:
        async with self.db.cross_tenant("export jobs") as conn:
            await self.repo.finish_export_job(conn, job["id"], self.builder_id, status=status.value, error=error)
        log.info("dvr.export_not_built", job_id=str(job["id"]), status=status.value, error=error)

    async def _build(self, job: asyncpg.Record) -> _Built:
        tenant_id: uuid.UUID = job["tenant_id"]
        cap = int(job["size_cap_bytes"])
        # The job names its tenant: reading the requisition and its recordings needs no more than that scope.
        async with self.db.for_tenants([tenant_id], readonly=True) as conn:
            req = await self.repo.requisition(conn, job["requisition_id"])
            if req is None:
                raise NotFound("the requisition of this export no longer exists")
            cameras = [(c, await self.repo.camera_name(conn, c),
                        await self.repo.segments_between(conn, c, req.start_at, req.end_at)) for c in req.camera_ids]
            private = await signing_key(conn, self.secret_box, KeyPurpose.EXPORT)
        if req.released_at is not None:
            raise RequisitionReleased("this requisition was released; its recordings are no longer held")
        export_id = new_id()
        with tempfile.TemporaryDirectory(prefix="vigie-export-") as tmp:
            files = await self._clips(req, cameras, Path(tmp), cap)
            if not files:
                raise NotRecorded("nothing was recorded for this requisition's cameras and interval")
            package = Path(tmp) / "package.zip"
            manifest = await asyncio.to_thread(build_package_file, files, self._header(job, req, export_id), private,
                                               package)
            size = package.stat().st_size
            if size > cap:
                raise ExportTooLarge(_too_large(size, cap))
            digest = await asyncio.to_thread(sha256_file, package)
            key = export_key(export_id)
            stored = await self.store.put_file(tenant_id, key, package, content_type="application/zip",
                                               sha256=digest, legal_hold=True)
        return _Built(export_id=export_id, object_key=key, version_id=stored.version_id, package_sha256=digest,
                      package_bytes=size, manifest_sha256=hashlib.sha256(manifest).hexdigest(), files=len(files),
                      signing_key_id=key_id(private.public_key()))

    async def _clips(self, req: Requisition, cameras: list[tuple[uuid.UUID, str | None, list[Segment]]],
                     workdir: Path, cap: int) -> list[PackageFile]:
        """One clip per recorded camera, remuxed on disk; the sources of each are removed once it is cut, and the
        running total is held to the cap."""
        files: list[PackageFile] = []
        total = 0
        for i, (camera_id, name, segments) in enumerate(cameras):
            if not segments:
                continue
            work = workdir / str(i)
            work.mkdir()
            clip = await assemble(self.store, self.settings, req.tenant_id, segments, req.start_at, req.end_at, work)
            for source in work.glob("src-*.mp4"):
                source.unlink()
            total += clip.data_path.stat().st_size
            if total > cap:
                raise ExportTooLarge(_too_large(total, cap))
            safe = re.sub(r"[^A-Za-z0-9_-]+", "-", name or str(camera_id)).strip("-")[:60]
            files.append(PackageFile(
                name=f"{i + 1:02d}_{safe}_{clip.start_at:%Y%m%dT%H%M%SZ}.mp4", data=clip.data_path,
                description={"camera_id": str(camera_id), "camera_name": name,
                             "start_at": clip.start_at.isoformat(), "end_at": clip.end_at.isoformat(),
                             "source_segments": clip.sources,
                             "not_recorded": [[a.isoformat(), b.isoformat()] for a, b in clip.holes]}))
        return files

    @staticmethod
    def _header(job: asyncpg.Record, req: Requisition, export_id: uuid.UUID) -> dict[str, Any]:
        return {
            "export_id": str(export_id), "tenant_id": str(req.tenant_id),
            "exported_at": datetime.now(UTC).isoformat(),
            "requisition": {"id": str(req.id), "procedure_number": req.procedure_number,
                            "legal_frame": req.legal_frame.value, "opj_name": req.opj_name,
                            "opj_service": req.opj_service, "start_at": req.start_at.isoformat(),
                            "end_at": req.end_at.isoformat()},
            "exported_by": {"user_id": str(job["requested_by"]), "name": job["requested_by_name"],
                            "role": job["requested_by_role"]},
            "motive": job["motive"],
        }

    async def _settle(self, job: asyncpg.Record, built: _Built) -> None:
        """The export's register row, its journal line and the job's result, in one transaction."""
        tenant_id = job["tenant_id"]
        async with self.db.cross_tenant("export jobs") as conn, conn.transaction():
            await self.repo.insert_export(
                conn, export_id=built.export_id, tenant_id=tenant_id, requisition_id=job["requisition_id"],
                exported_by=job["requested_by"], exported_by_name=job["requested_by_name"],
                object_key=built.object_key, version_id=built.version_id, package_sha256=built.package_sha256,
                manifest_sha256=built.manifest_sha256, signing_key_id=built.signing_key_id)
            await self.journal.note(conn, None, "evidence.export_built", ("export", built.export_id),
                                    tenant_id=tenant_id, job_id=str(job["id"]),
                                    requisition_id=str(job["requisition_id"]), files=built.files,
                                    package_sha256=built.package_sha256, package_bytes=built.package_bytes)
            if not await self.repo.finish_export_job(
                    conn, job["id"], self.builder_id, status=ExportStatus.DONE.value, export_id=built.export_id,
                    package_sha256=built.package_sha256, package_bytes=built.package_bytes, files=built.files,
                    signing_key_id=built.signing_key_id):
                raise _ClaimLost()
        log.info("dvr.export_built", job_id=str(job["id"]), export_id=str(built.export_id), bytes=built.package_bytes)


def _too_large(size: int, cap: int) -> str:
    return (f"the package would exceed {cap / 2**20:.0f} MiB (at least {size / 2**20:.0f} MiB of recordings): "
            "request several exports over shorter intervals or fewer cameras")
