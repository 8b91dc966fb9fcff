"""Alert clips: attaches the recorder's clip (or records its absence) on the alert, with a main courante line and an
outbox event so the operators' live queue learns it."""

from __future__ import annotations

import uuid

import asyncpg

from alerts.events import AlertClipAttached, AlertClipUnavailable
from alerts.repository import ALERT_OUTBOX, AlertRepository
from alerts.settings import AlertsSettings
from core.bus import ConsumerSpec, Reject, Retry
from core.db import Database
from core.errors import OutOfScope
from core.events import Event
from core.logging import get_logger
from core.outbox import Outbox
from dvr.events import DVR_STREAM, ClipRecorded, ClipUnavailable
from dvr.events import SUBJECT_PREFIX as DVR_PREFIX

log = get_logger(__name__)

CLIP_EVENTS: tuple[type[Event], ...] = (ClipRecorded, ClipUnavailable)


def clip_consumers(settings: AlertsSettings) -> list[ConsumerSpec]:
    """One durable consumer per event type: the DVR stream also carries every recorded segment, which alerts
    should not have to receive only to skip."""
    return [ConsumerSpec(DVR_STREAM.name, f"{settings.clip_durable}-{t.__name__}", f"{DVR_PREFIX}.*.{t.__name__}")
            for t in CLIP_EVENTS]


class AlertClipService:
    """Settles an alert's clip once: `pending` becomes `attached` (with the clip id) or `unavailable`. A redelivered
    or repeated event finds the clip settled and changes nothing, so the logbook and the outbox get one row each."""

    def __init__(self, db: Database, *, repo: AlertRepository | None = None, outbox: Outbox = ALERT_OUTBOX) -> None:
        self._db = db
        self._repo = repo or AlertRepository()
        self._outbox = outbox

    async def handle(self, event: Event, _msg: object = None) -> None:
        if isinstance(event, ClipRecorded):
            if event.alert_id is None:
                log.info("alerts.clip_without_alert", clip_id=str(event.clip_id))  # a clip cut for no alert
                return
            attached = AlertClipAttached(
                event_id=uuid.uuid5(event.event_id, "AlertClipAttached"), tenant_id=event.tenant_id,
                alert_id=event.alert_id, camera_id=event.camera_id, clip_id=event.clip_id, start_at=event.start_at,
                end_at=event.end_at)
            await self._settle(attached, {"clip_id": event.clip_id, "clip_status": "attached"},
                               f"Extrait vidéo joint (de {event.start_at:%H:%M:%S} à {event.end_at:%H:%M:%S} UTC)")
        elif isinstance(event, ClipUnavailable):
            unavailable = AlertClipUnavailable(
                event_id=uuid.uuid5(event.event_id, "AlertClipUnavailable"), tenant_id=event.tenant_id,
                alert_id=event.alert_id, camera_id=event.camera_id, reason=event.reason)
            await self._settle(unavailable, {"clip_status": "unavailable"},
                               f"Extrait vidéo indisponible : {event.reason}")
        else:
            log.info("alerts.clip_event_skipped", type=type(event).__name__, event_id=str(event.event_id))

    async def _settle(self, event: AlertClipAttached | AlertClipUnavailable, changes: dict[str, object],
                      text: str) -> None:
        try:
            async with self._db.for_tenants([event.tenant_id], camera_id=event.camera_id) as conn:
                alert = await self._repo.get(conn, event.alert_id, for_update=True)
                if alert is None:
                    # Row-level security also hides an alert of another tenant than the event claims.
                    raise Reject(f"unknown alert {event.alert_id} for tenant {event.tenant_id}")
                if alert.camera_id != event.camera_id:
                    raise Reject(f"the clip's camera {event.camera_id} is not alert {alert.id}'s camera "
                                 f"{alert.camera_id}")
                if alert.clip_status != "pending":
                    log.info("alerts.clip_already_settled", alert_id=str(alert.id), clip_status=alert.clip_status,
                             settled_by=type(event).__name__)
                    return
                await self._repo.update(conn, alert.id, changes)
                action = "alert.clip_attached" if isinstance(event, AlertClipAttached) else "alert.clip_unavailable"
                await self._repo.log(conn, tenant_id=alert.tenant_id, alert_id=alert.id, author_id=None, kind="auto",
                                     action=action, text=text)
                await self._outbox.add(conn, [event])
        except OutOfScope as exc:
            raise Reject(f"camera {event.camera_id} does not belong to tenant {event.tenant_id}") from exc
        except (asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError) as exc:
            raise Retry(f"database: {exc}") from exc
