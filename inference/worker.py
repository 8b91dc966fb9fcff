"""The detection worker's loops: the backend, the publisher, the configuration sync, usage metering and the cameras'
picture health side by side.

The sync and the metering are department jobs: they read and write every tenant's detection settings and usage
through the department role, each under its own `cross_tenant` reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, cast, runtime_checkable
from zoneinfo import ZoneInfo

import asyncpg

from core.crypto import SecretBox
from core.db import Database
from core.errors import Unavailable
from core.logging import get_logger
from health.model import SignalState
from health.reporter import HealthReporter
from inference.model import CameraConfig
from inference.portable import HealthSink
from inference.scheduler import UsageMeter
from inference.service import load_camera_configs, record_usage, switch_off_unauthorised_rules
from inference.settings import InferenceSettings

log = get_logger(__name__)


class CameraSet(Protocol):
    def apply(self, configs: Sequence[CameraConfig]) -> None: ...


class Backend(CameraSet, Protocol):
    """What `python -m inference` runs: the portable backend or DeepStream, the same contract."""

    meter: UsageMeter

    async def run(self, stop: asyncio.Event) -> None: ...


@runtime_checkable
class WatchesPictures(Protocol):
    """A backend that judges each camera's picture health and hands changes to `health` (portable and DeepStream)."""

    health: HealthSink | None


class Publishing(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


async def keep_cameras_in_sync(db: Database, backend: CameraSet, *, secrets: SecretBox,
                               plan_weights: dict[str, float], timezone: str, refresh_s: float,
                               stop: asyncio.Event) -> None:
    """Reload cameras, zones and rules every `refresh_s`, so API changes reach the worker without a restart;
    rules whose legal basis lapsed are switched off in the database first."""
    tz = ZoneInfo(timezone)
    while not stop.is_set():
        today = datetime.now(tz).date()
        try:
            # The worker serves every tenant's cameras and switches off any tenant's lapsed rule.
            async with db.cross_tenant("detection config sync") as conn, conn.transaction():
                switched_off = await switch_off_unauthorised_rules(conn, today)
                configs = await load_camera_configs(conn, today=today, secrets=secrets, plan_weights=plan_weights)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, Unavailable) as exc:
            log.warning("inference.config_refresh_failed", error=str(exc))
        else:
            for rule_id in switched_off:
                log.warning("inference.rule_switched_off", rule_id=str(rule_id), reason="legal basis lapsed")
            backend.apply(configs)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=refresh_s)


async def flush_usage(db: Database, meter: UsageMeter, *, timezone: str, every_s: float,
                      stop: asyncio.Event) -> None:
    """Write metered detector-seconds per tenant and day; a failed write is kept for the next attempt."""
    tz = ZoneInfo(timezone)
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        pending = meter.drain()
        if pending:
            try:
                # One write for every tenant the detector served since the last flush.
                async with db.cross_tenant("detector usage metering") as conn, conn.transaction():
                    await record_usage(conn, datetime.now(tz).date(),
                                       {t: (u.detector_seconds, u.frames) for t, u in pending.items()})
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                meter.restore(pending)
                log.warning("inference.usage_flush_failed", error=str(exc))
        if stop.is_set():
            return


class PictureHealthReports:
    """The backend's picture-health changes, reported in order (one queue, one writer) by the detector's watcher."""

    def __init__(self, reporter: HealthReporter) -> None:
        self.reporter = reporter
        self.queue: asyncio.Queue[tuple[uuid.UUID, uuid.UUID, SignalState, str | None]] = asyncio.Queue()

    def __call__(self, tenant_id: uuid.UUID, camera_id: uuid.UUID, state: str, detail: str | None) -> None:
        self.queue.put_nowait((tenant_id, camera_id, cast(SignalState, state), detail))

    async def run(self, stop: asyncio.Event) -> None:
        while not (stop.is_set() and self.queue.empty()):
            try:
                tenant_id, camera_id, state, detail = await asyncio.wait_for(self.queue.get(), timeout=0.5)
            except TimeoutError:
                continue
            await self.reporter.report(tenant_id, camera_id, state, detail)


class Leasing(CameraSet, Protocol):
    """The cameras of this worker among several (inference.fleet): the sync's list in, the held part to the backend."""

    async def run(self, stop: asyncio.Event) -> None: ...


async def serve(db: Database, backend: Backend, publisher: Publishing, *, secrets: SecretBox,
                settings: InferenceSettings, stop: asyncio.Event, fleet: Leasing | None = None) -> None:
    """Run the worker until `stop`: detection, publishing, configuration sync (through the fleet's leases when
    several workers share the cameras), usage metering and the cameras' picture health side by side."""
    reports = PictureHealthReports(HealthReporter(db, "detector"))
    if isinstance(backend, WatchesPictures):
        backend.health = reports
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(reports.run(stop))
        tasks.create_task(backend.run(stop))
        tasks.create_task(publisher.run(stop))
        if fleet is not None:
            tasks.create_task(fleet.run(stop))
        tasks.create_task(keep_cameras_in_sync(
            db, fleet or backend, secrets=secrets, plan_weights=settings.plan_weights, timezone=settings.timezone,
            refresh_s=settings.config_refresh_s, stop=stop))
        tasks.create_task(flush_usage(db, backend.meter, timezone=settings.timezone,
                                      every_s=settings.usage_flush_s, stop=stop))
