"""The watchers' side: a recorder or the detector reports what it sees of a camera's stream (department role)."""

from __future__ import annotations

import uuid

import asyncpg

from core.db import Database
from core.logging import get_logger
from health.model import SignalState, Transition, Watcher
from health.repository import HealthRepository

log = get_logger(__name__)


class HealthReporter:
    """Writes one watcher's reports; the combination, the transition and the camera's status happen in the database
    (camera_health_report, migration 0127), so recorders and detectors on several hosts agree."""

    def __init__(self, db: Database, source: Watcher, repository: HealthRepository | None = None) -> None:
        self.db = db
        self.source = source
        self.repo = repository or HealthRepository()

    async def report(self, tenant_id: uuid.UUID, camera_id: uuid.UUID, state: SignalState,
                     detail: str | None = None) -> Transition | None:
        """Record the state; a database outage is logged, not raised: the next report says it again."""
        try:
            # Watchers serve every tenant's cameras and write the shared health tables.
            async with self.db.cross_tenant("camera health") as conn, conn.transaction():
                transition = await self.repo.report(conn, tenant_id, camera_id, self.source, state, detail)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("health.report_failed", camera_id=str(camera_id), source=self.source, error=str(exc))
            return None
        if transition is not None:
            log.info("health.changed", camera_id=str(camera_id), source=self.source, from_state=transition.from_state,
                     to_state=transition.to_state, detail=transition.detail)
        return transition
