"""Alert clips in the recorder: a durable consumer of AlertRaised that cuts each alert's clip once it is recorded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.aio.msg import Msg

from alerts.events import ALERTS_STREAM, SUBJECT_PREFIX, AlertRaised, kind_of
from core.bus import ConsumerSpec, Reject, RetryAfter
from core.errors import InvalidInput, NotFound, OutOfScope
from core.events import Event
from core.logging import get_logger
from dvr.errors import ClipNotReady, NotRecorded
from dvr.events import ClipRecorded, ClipUnavailable
from dvr.service import EventSink, EvidenceService
from dvr.settings import DvrSettings

log = get_logger(__name__)

# An outage alert has no footage to show by definition: the alerts engine marks its clip unavailable itself.
RULES_WITHOUT_CLIP = frozenset({"camera_offline"})


def clip_consumer(settings: DvrSettings) -> ConsumerSpec:
    """One durable consumer shared by every recorder process: each alert is handed to one of them (work queue)."""
    return ConsumerSpec(
        ALERTS_STREAM.name, settings.clip_durable, f"{SUBJECT_PREFIX}.*.{kind_of(AlertRaised)}",
        # Remuxing is ffmpeg work: a few at a time per process, and long enough to finish before a redelivery.
        batch=settings.clip_concurrency, ack_wait_s=120.0,
        # Waiting for the post-event buffer takes one or two deliveries; the budget leaves room for a slow upload.
        max_waits=10,
    )


@dataclass
class AlertClipRecorder:
    """Cuts the clip [first seen - pre, first seen + post] of each new alert and announces it on the DVR stream:
    ClipRecorded when stored, ClipUnavailable when nothing was recorded over the interval."""

    evidence: EvidenceService
    publish: EventSink
    settings: DvrSettings

    async def handle(self, event: Event, msg: Msg | None = None) -> None:
        if not isinstance(event, AlertRaised):
            log.info("dvr.clip_event_skipped", type=type(event).__name__, event_id=str(event.event_id))
            return
        if event.rule_type in RULES_WITHOUT_CLIP:
            return
        at = event.first_seen_at or event.occurred_at
        try:
            clip = await self.evidence.clip_for_alert(event.tenant_id, event.alert_id, event.camera_id, at)
        except ClipNotReady as exc:
            raise RetryAfter(self.wait_s(at, datetime.now(UTC)), str(exc)) from exc
        except NotRecorded as exc:
            await self.publish(ClipUnavailable(
                event_id=uuid.uuid5(event.alert_id, "ClipUnavailable"), tenant_id=event.tenant_id,
                alert_id=event.alert_id, camera_id=event.camera_id, reason=str(exc)))
            log.info("dvr.clip_unavailable", alert_id=str(event.alert_id), camera_id=str(event.camera_id),
                     reason=str(exc))
            return
        except (NotFound, OutOfScope) as exc:
            raise Reject(f"unknown camera {event.camera_id} for tenant {event.tenant_id}: {exc}") from exc
        except InvalidInput as exc:
            raise Reject(f"no clip interval around {at.isoformat()}: {exc}") from exc
        # Published here rather than by the service, on every delivery, under an id derived from the clip: a recorder
        # that stored the clip and died before announcing it announces it on the redelivery, and a repeat is dropped
        # by the stream's duplicate window or by the alerts consumer's pending check.
        await self.publish(ClipRecorded(
            event_id=uuid.uuid5(clip.id, "ClipRecorded"), tenant_id=clip.tenant_id, clip_id=clip.id,
            camera_id=clip.camera_id, alert_id=clip.alert_id, start_at=clip.start_at, end_at=clip.end_at,
            sha256=clip.sha256))
        log.info("dvr.clip_recorded", alert_id=str(event.alert_id), clip_id=str(clip.id))

    def wait_s(self, at: datetime, now: datetime) -> float:
        """When to look again: once the segment holding the end of the post-event buffer is likely uploaded, then
        at the service's settling deadline (past it, a missing end is a gap, not a delay)."""
        end = at + timedelta(seconds=self.settings.clip_post_s)
        target = end + timedelta(seconds=self.settings.segment_s + 2)
        if now >= target:
            target = end + timedelta(seconds=2 * self.settings.segment_s + 5 + 1)
        return max(1.0, (target - now).total_seconds())
