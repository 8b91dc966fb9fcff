"""The recorder fleet: the live `python -m dvr` processes share the department's cameras through Postgres leases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
import uuid
from contextlib import AbstractAsyncContextManager

import asyncpg
import msgspec

from core.crypto import CAMERA_CREDENTIALS, SecretBox
from core.db import Database
from core.logging import get_logger
from dvr.model import CameraTarget
from dvr.recorder import EventSink, StreamRecorder
from dvr.repository import DvrRepository
from dvr.rules import fair_share, redact_url, url_with_credentials
from dvr.settings import DvrSettings
from dvr.uploader import SegmentUploader, Spool

log = get_logger(__name__)


def new_recorder_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class FleetRecorder:
    """Shares the department's cameras among the live `python -m dvr` processes through Postgres leases.

    Each process takes at most its fair share of cameras; a dead process stops renewing, its leases expire after
    `lease_ttl_s`, and the survivors take its cameras over at their next poll.
    """

    def __init__(self, *, settings: DvrSettings, db: Database, uploader: SegmentUploader, spool: Spool,
                 publish: EventSink, secret_box: SecretBox, recorder_id: str | None = None,
                 tenant_ids: list[uuid.UUID] | None = None, repository: DvrRepository | None = None) -> None:
        self.settings = settings
        self.db = db
        self.uploader = uploader
        self.spool = spool
        self.publish = publish
        self.box = secret_box
        self.recorder_id = recorder_id or new_recorder_id()
        # A shard of the fleet (some tenants only), or every recordable camera when None.
        self.tenant_ids = tenant_ids
        self.repo = repository or DvrRepository()
        self.recorders: dict[uuid.UUID, tuple[StreamRecorder, asyncio.Task[None]]] = {}
        self.acquired_at: dict[uuid.UUID, float] = {}
        self.stopping: dict[uuid.UUID, asyncio.Task[None]] = {}

    def _leases(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        # A department job: the lease round sees every tenant's recordable cameras and the other recorders' leases.
        return self.db.cross_tenant("recorder leases")

    def target(self, row: asyncpg.Record) -> CameraTarget:
        url = row["main_stream_url"]
        if row["credentials_sealed"] is not None:
            creds = msgspec.json.decode(self.box.open(row["credentials_sealed"], column=CAMERA_CREDENTIALS,
                                                      row_id=row["camera_id"]))
            url = url_with_credentials(url, creds.get("username"), creds.get("password"))
        masks = tuple(tuple((float(x), float(y)) for x, y in mask.get("points", []))
                      for mask in msgspec.json.decode(row["privacy_masks"] or "[]"))
        masks = tuple(mask for mask in masks if len(mask) >= 3)
        return CameraTarget(tenant_id=row["tenant_id"], camera_id=row["camera_id"], name=row["name"], url=url,
                            masks=masks, mask_version=row["privacy_masks_version"],
                            expected_bitrate_kbps=row["expected_bitrate_kbps"])

    async def run(self, stop: asyncio.Event) -> None:
        async with self._leases() as conn:
            await self.repo.register_instance(conn, self.recorder_id, socket.gethostname(), os.getpid())
        log.info("dvr.recorder_started", recorder_id=self.recorder_id)
        try:
            while not stop.is_set():
                try:
                    await self.rebalance()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("dvr.lease_round_failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.lease_poll_s)
        finally:
            await self.stop_all()
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                async with self._leases() as conn:
                    await self.repo.remove_instance(conn, self.recorder_id)

    async def rebalance(self) -> None:
        ttl = self.settings.lease_ttl_s
        async with self._leases() as conn:
            lease_round = await self.repo.lease_round(conn, self.recorder_id, ttl, self.tenant_ids)
            live, cameras, held = lease_round.live, lease_round.cameras, lease_round.held
            for camera_id in list(self.recorders):
                if camera_id not in held or camera_id not in cameras:
                    self._stop_in_background(camera_id, release=camera_id in held)
            share = fair_share(len(cameras), live)
            if len(held) > share:
                for camera_id in sorted(held)[share:]:
                    self._stop_in_background(camera_id, release=True)
                    held.discard(camera_id)
            free = [c for c in cameras if c not in lease_round.holders]
            random.shuffle(free)
            for camera_id in free:
                if len(held) >= share:
                    break
                row = cameras[camera_id]
                if await self.repo.acquire_lease(conn, self.recorder_id, row["tenant_id"], camera_id, ttl):
                    held.add(camera_id)
            for camera_id in held:
                if camera_id not in self.recorders and camera_id not in self.stopping and camera_id in cameras:
                    self._start_camera(cameras[camera_id])
            self._follow_mask_changes(cameras)

    def _follow_mask_changes(self, cameras: dict[uuid.UUID, asyncpg.Record]) -> None:
        """A camera whose privacy masks changed is recorded with the new ones from its next segment on."""
        for camera_id, (recorder, _task) in self.recorders.items():
            row = cameras.get(camera_id)
            if row is None or row["privacy_masks_version"] == recorder.target.mask_version:
                continue
            log.info("dvr.masks_changed", camera_id=str(camera_id), version=row["privacy_masks_version"])
            recorder.retarget(self.target(row))

    def _stop_in_background(self, camera_id: uuid.UUID, *, release: bool) -> None:
        """Stop a camera without holding up the lease round: ffmpeg closing its segment and the last upload
        hand-off take a while, and the leases of every other camera must still be renewed on time."""
        if camera_id in self.stopping:
            return

        async def stop() -> None:
            try:
                await self._stop_camera(camera_id, release=release)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The lease was not released: it lapses after its TTL instead.
                log.warning("dvr.lease_release_failed", camera_id=str(camera_id), error=str(exc))

        task = asyncio.create_task(stop(), name=f"stop-{camera_id}")
        self.stopping[camera_id] = task
        task.add_done_callback(lambda _task: self.stopping.pop(camera_id, None))

    def _start_camera(self, row: asyncpg.Record) -> None:
        target = self.target(row)
        recorder = StreamRecorder(target=target, settings=self.settings, spool=self.spool, uploader=self.uploader,
                                  db=self.db, publish=self.publish, recorder_id=self.recorder_id)
        task = asyncio.create_task(recorder.run(), name=f"record-{target.camera_id}")
        self.recorders[target.camera_id] = (recorder, task)
        self.acquired_at[target.camera_id] = time.monotonic()
        log.info("dvr.camera_acquired", camera_id=str(target.camera_id), url=redact_url(target.url))

    async def _stop_camera(self, camera_id: uuid.UUID, *, release: bool) -> None:
        entry = self.recorders.pop(camera_id, None)
        if entry is not None:
            recorder, task = entry
            recorder.request_stop()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=15)
            except TimeoutError:
                task.cancel()
        if release:
            async with self._leases() as conn:
                await self.repo.release_lease(conn, self.recorder_id, camera_id)

    async def stop_all(self) -> None:
        # Every camera at once: a graceful stop costs one segment close, not one per camera in turn.
        await asyncio.gather(*self.stopping.values(), return_exceptions=True)
        await asyncio.gather(*(self._stop_camera(camera_id, release=True) for camera_id in list(self.recorders)),
                             return_exceptions=True)
