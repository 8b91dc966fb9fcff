"""The detector fleet: live `python -m inference` processes share the department's cameras through Postgres leases."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import uuid
from collections.abc import Sequence

import asyncpg

from core.db import Database
from core.errors import Unavailable
from core.logging import get_logger
from inference.model import CameraConfig
from inference.repository import DetectionRepository
from inference.worker import CameraSet

log = get_logger(__name__)


def new_detector_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def fair_share(cameras: int, workers: int) -> int:
    """The most cameras one worker takes: an even split, rounded up, so that every camera has a taker."""
    return math.ceil(cameras / max(1, workers))


class DetectorFleet(CameraSet):
    """Sits between the configuration sync and the backend: the backend is given only the cameras this worker holds
    a lease on. Each poll renews the leases, gives back what is over the fair share, and takes free or expired ones
    up to it; a dead worker stops renewing, and the others take its cameras after `ttl_s`. The fair scheduling of
    the backend's batches (per tenant, by weight) works on the cameras held, as before."""

    def __init__(self, db: Database, backend: CameraSet, *, detector_id: str | None = None, ttl_s: float = 10.0,
                 poll_s: float = 2.0) -> None:
        self.db, self.backend = db, backend
        self.detector_id = detector_id or new_detector_id()
        self.ttl_s, self.poll_s = ttl_s, poll_s
        self.repo = DetectionRepository()
        self.held: set[uuid.UUID] = set()
        self._configs: dict[uuid.UUID, CameraConfig] = {}
        self._applied: tuple[CameraConfig, ...] | None = None

    def apply(self, configs: Sequence[CameraConfig]) -> None:
        """The configuration sync's full camera list: kept, and the held part of it handed to the backend."""
        self._configs = {c.camera_id: c for c in configs}
        self._hand_over()

    def _hand_over(self) -> None:
        mine = tuple(c for camera_id, c in sorted(self._configs.items()) if camera_id in self.held)
        if mine != self._applied:
            self._applied = mine
            self.backend.apply(mine)

    async def rebalance(self) -> None:
        # A department job: the lease round sees every tenant's cameras and the other workers' leases.
        async with self.db.cross_tenant("detector leases") as conn:
            live, renewed, holders = await self.repo.detector_lease_round(
                conn, self.detector_id, socket.gethostname(), os.getpid(), self.ttl_s)
            held = {c for c in renewed if c in self._configs}
            gone = renewed - held
            share = fair_share(len(self._configs), live)
            surplus = sorted(held)[share:]
            if gone or surplus:
                await self.repo.release_detector_leases(conn, self.detector_id, [*gone, *surplus])
                held -= set(surplus)
            for camera_id, config in sorted(self._configs.items()):
                if len(held) >= share:
                    break
                if camera_id in holders or camera_id in held:
                    continue
                if await self.repo.acquire_detector_lease(conn, self.detector_id, config.tenant_id, camera_id,
                                                          self.ttl_s):
                    held.add(camera_id)
        if held != self.held:
            log.info("inference.leases_changed", detector_id=self.detector_id, held=len(held), live=live)
        self.held = held
        self._hand_over()

    async def run(self, stop: asyncio.Event) -> None:
        """Lease rounds every `poll_s` until `stop`; on a clean stop the leases are given back at once."""
        loop = asyncio.get_running_loop()
        renewed_at = loop.time()
        while not stop.is_set():
            try:
                await self.rebalance()
                renewed_at = loop.time()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, Unavailable) as exc:
                log.warning("inference.lease_round_failed", error=str(exc))
                if self.held and loop.time() - renewed_at > self.ttl_s * 0.8:
                    # Leases not renewed lapse after their TTL: stop analysing before another worker takes them.
                    self.held = set()
                    self._hand_over()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_s)
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError, Unavailable):
            async with self.db.cross_tenant("detector leases") as conn:
                await self.repo.release_detector_leases(conn, self.detector_id)
        self.held = set()
        self._hand_over()
