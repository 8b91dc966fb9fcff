"""Alarm queue and operator workflow, live queue over SSE, main courante, routing rules and alert policies."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent

from alerts.errors import ClipNotAttached
from alerts.events import ALERTS_STREAM
from alerts.model import Alert as AlertRecord
from alerts.model import (
    AlertDetail,
    CloseInput,
    DismissInput,
    Dispatch,
    DispatchInput,
    ForceRecommendation,
    Handover,
    HandoverInput,
    LogbookEntry,
    LogbookInput,
    PolicyInput,
    PolicyRecord,
    PrecisionRow,
    Responders,
    RoutingRuleInput,
    RoutingRuleRecord,
    SlaBreach,
    SopStepInput,
    VerifyInput,
)
from alerts.service import OPERATORS
from api.deps import PrincipalDep, ServicesDep
from api.live_queue import HEARTBEAT_S as HEARTBEAT_S  # the default, which tests wait for
from api.live_queue import live_stream, parse_last_event_id
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from api.routes.evidence import MotiveRequest
from core.errors import Unavailable
from core.tenancy import require_role
from dvr.model import PlaybackItem

AlertState = Literal["new", "claimed", "verified", "dispatched", "dismissed", "closed"]
Days = Annotated[int, QueryParameter(ge=1, le=366, description="evaluation period in days")]
Hours = Annotated[int, QueryParameter(ge=1, le=168, description="how far back, in hours")]
Search = Annotated[str | None, QueryParameter(min_length=1, max_length=200,
                                              description="words the line's text or action contains (any case)")]
class AlertController(Controller):
    path = "/alerts"
    tags = ["alerts"]

    @get("/", summary="The alarm queue (open alerts by default), newest first")
    async def list_alerts(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        states: FromQuery[list[AlertState] | None] = None,
        tenant_id: FromQuery[uuid.UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[AlertRecord]:
        rows = await services.alerts.queue(principal, states=list(states) if states else None, tenant_id=tenant_id,
                                  after=decode_cursor(cursor), limit=limit + 1)
        return page_of(rows, limit, lambda a: a.id)

    # Left out of the OpenAPI document: an endless text/event-stream has no response schema a client generator or
    # a fuzzer can use (schemathesis would wait on it forever). Events: ready, raised, state_changed,
    # dispatch_ordered, dispatch_withdrawn, escalation_raised, clip_attached, clip_unavailable; data is the event's
    # JSON.
    # Each event's `id:` is its ALERTS stream sequence, and `ready`'s the sequence the stream starts after (the
    # stream's end at the first connection): a client reconnecting with `Last-Event-ID` gets every event it missed,
    # in order, even when none had reached it yet. The caller is authorised again at every heartbeat; the stream
    # ends with an `end` event (data: the reason) at token expiry, logout, revocation or lost habilitation. A session
    # holds at most VIGIE_API__LIVE_STREAMS_PER_SESSION streams (429 beyond).
    @get("/stream", include_in_schema=False, summary="Live alarm queue (Server-Sent Events)")
    async def stream(self, request: Request[Any, Any, Any], principal: PrincipalDep, services: ServicesDep,
                     last_event_id: Annotated[str | None, HeaderParameter(name="Last-Event-ID")] = None,
                     ) -> ServerSentEvent:
        require_role(principal, OPERATORS, "watch the live alarm queue")
        after_sequence = parse_last_event_id(last_event_id)
        if services.bus is None:
            raise Unavailable("the event bus is not connected: the live queue is unavailable")
        # Checked before answering: once the 200 is sent, a failure to subscribe can only cut the connection, and
        # a browser's EventSource reconnects into the same failure every few seconds.
        try:
            last = await services.bus.last_sequence(ALERTS_STREAM.name)
        except Unavailable as exc:
            raise Unavailable("the event bus does not answer: the live queue is unavailable") from exc
        if last is None:
            raise Unavailable("the alerts stream does not exist yet (the alert engine never ran): the live queue is "
                              "unavailable")
        # A first connection starts at the stream's present end, taken before subscribing: nothing published in
        # between is skipped (the subscription starts at the next sequence, not at "new messages"). An id past that
        # end was seen on a stream since restored or recreated: waiting for its sequence would hide every alert
        # until then, so it starts at the end too.
        start_after = last if after_sequence is None or after_sequence > last else after_sequence
        return ServerSentEvent(live_stream(services, principal, str(request.auth), start_after))

    @get("/sla-breaches", summary="Alerts unclaimed past their SLA, dispatches no force acknowledged")
    async def sla_breaches(self, principal: PrincipalDep, services: ServicesDep) -> list[SlaBreach]:
        return await services.alerts.sla_breaches(principal)

    @get("/precision", summary="Precision of the detections from operators' verdicts (evaluation report)")
    async def precision(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        group_by: FromQuery[Literal["rule", "camera", "commune", "event_type"]] = "rule",
        days: Days = 30,
    ) -> list[PrecisionRow]:
        return await services.alerts.precision(principal, group_by, days)

    @get("/{alert_id:uuid}", summary="An alert with its procedure checklist and dispatches")
    async def get_alert(self, principal: PrincipalDep, services: ServicesDep,
                        alert_id: FromPath[uuid.UUID]) -> AlertDetail:
        return await services.alerts.get(principal, alert_id)

    @post("/{alert_id:uuid}/claim", status_code=200, summary="Take an alert (409 if another operator holds it)")
    async def claim(self, principal: PrincipalDep, services: ServicesDep, alert_id: FromPath[uuid.UUID]) -> AlertRecord:
        return await services.alerts.claim(principal, alert_id)

    @post("/{alert_id:uuid}/release", status_code=200, summary="Put a claimed alert back in the queue")
    async def release(self, principal: PrincipalDep, services: ServicesDep,
                      alert_id: FromPath[uuid.UUID]) -> AlertRecord:
        return await services.alerts.release(principal, alert_id)

    @post("/{alert_id:uuid}/verify", status_code=200, summary="Verify on images (journaled with the motive)")
    async def verify(self, principal: PrincipalDep, services: ServicesDep, alert_id: FromPath[uuid.UUID],
                     data: JSONBody[VerifyInput]) -> AlertRecord:
        return await services.alerts.verify(principal, alert_id, data)

    @post("/{alert_id:uuid}/dismiss", status_code=200, summary="Dismiss with a reason")
    async def dismiss(self, principal: PrincipalDep, services: ServicesDep, alert_id: FromPath[uuid.UUID],
                      data: JSONBody[DismissInput]) -> AlertRecord:
        return await services.alerts.dismiss(principal, alert_id, data)

    @post("/{alert_id:uuid}/dispatch", status_code=200, summary="Send a verified alert to competent forces")
    async def dispatch(self, principal: PrincipalDep, services: ServicesDep, alert_id: FromPath[uuid.UUID],
                       data: JSONBody[DispatchInput]) -> list[Dispatch]:
        return await services.alerts.dispatch(principal, alert_id, data)

    @post("/{alert_id:uuid}/close", status_code=200, summary="Close with an outcome")
    async def close(self, principal: PrincipalDep, services: ServicesDep, alert_id: FromPath[uuid.UUID],
                    data: JSONBody[CloseInput]) -> AlertRecord:
        return await services.alerts.close(principal, alert_id, data)

    @post("/{alert_id:uuid}/sop-steps", status_code=200, summary="Record a step of the procedure")
    async def sop_step(self, principal: PrincipalDep, services: ServicesDep, alert_id: FromPath[uuid.UUID],
                       data: JSONBody[SopStepInput]) -> AlertDetail:
        return await services.alerts.record_step(principal, alert_id, data)

    @get("/{alert_id:uuid}/responders", summary="Dispatches and what the responders' phones reported")
    async def responders(self, principal: PrincipalDep, services: ServicesDep,
                         alert_id: FromPath[uuid.UUID]) -> Responders:
        return await services.alerts.responders(principal, alert_id)

    @get("/{alert_id:uuid}/competent-forces", summary="Forces competent for the alert (jurisdiction routing)")
    async def competent_forces(self, principal: PrincipalDep, services: ServicesDep,
                               alert_id: FromPath[uuid.UUID]) -> list[ForceRecommendation]:
        return await services.alerts.recommendations(principal, alert_id)

    @post("/{alert_id:uuid}/clip/view", status_code=200,
          summary="A short-lived link to the alert's clip (journaled with the motive; 409 while it has none)")
    async def view_clip(self, principal: PrincipalDep, services: ServicesDep,
                        alert_id: FromPath[uuid.UUID], data: JSONBody[MotiveRequest]) -> PlaybackItem:
        # The alert is read first under the caller's scope, so an officer reaches only clips of alerts sent to them.
        alert = (await services.alerts.get(principal, alert_id)).alert
        if alert.clip_id is None:
            raise ClipNotAttached("the alert's clip is still being cut from the recordings" if alert.clip_status ==
                                  "pending" else "no clip could be made: nothing was recorded over the alert's time")
        return await services.evidence.clip_playback(principal, alert.clip_id, motive=data.motive)

    @post("/{alert_id:uuid}/snapshot/view", status_code=200, media_type="image/jpeg",
          summary="The alert's snapshot, a JPEG (journaled with the motive; 409 when it has none)",
          responses={200: ResponseSpec(data_container=bytes, media_type="image/jpeg",
                                       description="the picture the detector stored when the rule fired")})
    async def view_snapshot(self, principal: PrincipalDep, services: ServicesDep,
                            alert_id: FromPath[uuid.UUID], data: JSONBody[MotiveRequest]) -> Response[bytes]:
        snapshot = await services.alerts.view_snapshot(principal, alert_id, motive=data.motive)
        # Images of people: never kept by a browser's or a proxy's cache.
        return Response(snapshot.content, media_type="image/jpeg",
                        headers={"Cache-Control": "private, no-store",
                                 "Vigie-Taken-At": snapshot.taken_at.isoformat()})


class LogbookController(Controller):
    path = "/logbook"
    tags = ["logbook"]

    @get("/", summary="The main courante, newest first (optionally only the lines containing `search`)")
    async def list_entries(self, principal: PrincipalDep, services: ServicesDep, hours: Hours = 24, limit: Limit = 50,
                           cursor: Cursor = None, search: Search = None) -> Page[LogbookEntry]:
        rows = await services.alerts.logbook(principal, hours=hours, before=decode_cursor(cursor), limit=limit + 1,
                                             search=search)
        return page_of(rows, limit, lambda e: e.id)

    @post("/", summary="A free entry in the main courante")
    async def add_entry(self, principal: PrincipalDep, services: ServicesDep,
                        data: JSONBody[LogbookInput]) -> LogbookEntry:
        return await services.alerts.add_entry(principal, data)

    @get("/handovers", summary="Shift handovers, newest first")
    async def handovers(self, principal: PrincipalDep, services: ServicesDep, limit: Limit = 20) -> list[Handover]:
        return await services.alerts.handovers(principal, limit)

    @post("/handovers", summary="Hand over the shift: summary of the period and open alerts")
    async def handover(self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[HandoverInput]) -> Handover:
        return await services.alerts.handover(principal, data)


class RoutingController(Controller):
    path = "/routing-rules"
    tags = ["alerts"]

    @get("/", summary="Jurisdiction routing rules of the department")
    async def list_rules(self, principal: PrincipalDep, services: ServicesDep) -> list[RoutingRuleRecord]:
        return await services.alerts.routing_rules(principal)

    @post("/", summary="Add or remove a force for a commune, event type and hours")
    async def add_rule(self, principal: PrincipalDep, services: ServicesDep,
                       data: JSONBody[RoutingRuleInput]) -> RoutingRuleRecord:
        return await services.alerts.add_routing_rule(principal, data)

    @delete("/{routing_rule_id:uuid}", summary="Delete a routing rule")
    async def delete_rule(self, principal: PrincipalDep, services: ServicesDep,
                          routing_rule_id: FromPath[uuid.UUID]) -> None:
        await services.alerts.delete_routing_rule(principal, routing_rule_id)


class PolicyController(Controller):
    path = "/alert-policies"
    tags = ["alerts"]

    @get("/", summary="Severity, dedupe, cooldown, SLA and auto-dispatch per rule type")
    async def list_policies(self, principal: PrincipalDep, services: ServicesDep) -> list[PolicyRecord]:
        return await services.alerts.policies(principal)

    @put("/", summary="Set a rule type's policy (department admin; auto-dispatch is journaled)")
    async def set_policy(self, principal: PrincipalDep, services: ServicesDep,
                         data: JSONBody[PolicyInput]) -> PolicyRecord:
        return await services.alerts.set_policy(principal, data)


ROUTES = [AlertController, LogbookController, RoutingController, PolicyController]
