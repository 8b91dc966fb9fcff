"""Detection settings of a camera: zones and lines, analytics rules gated by legal basis; plans and metering."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, Literal

import asyncpg
import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from api.deps import PrincipalDep, ServicesDep
from core.errors import InvalidInput, NotFound, Unavailable
from core.tenancy import DEPARTMENT_ADMINS, STAFF_READERS, Principal, Role, require_role
from inference import service as detection
from inference.model import Rule, RuleInput, UsageDay, Zone, ZoneInput
from inference.onnx_detector import read_labels
from inference.settings import InferenceSettings

# Who draws zones and enables rules: the tenant's admins and the CSU's operators (CSI: audited).
DETECTION_EDITORS = frozenset({Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.TENANT_ADMIN})


class PlanRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    plan: Literal["essential", "standard", "premium"]


def model_labels(request: Request[Any, Any, Any]) -> frozenset[str]:
    """The classes the installed detector knows, read once per process."""
    labels = getattr(request.app.state, "detector_labels", None)
    if labels is None:
        path = InferenceSettings().labels_file
        if not path.is_file():
            raise Unavailable("the detection model is not installed on this platform (make detector-model)")
        labels = request.app.state.detector_labels = frozenset(read_labels(path))
    return labels


def _today() -> date:
    return datetime.now(UTC).date()


async def _journal(
    services: ServicesDep,
    conn: asyncpg.Connection,
    principal: Principal,
    action: str,
    *,
    tenant_id: uuid.UUID,
    camera_id: uuid.UUID,
    target_type: str,
    target_id: uuid.UUID,
    details: dict[str, object],
) -> None:
    await services.journal.record(
        conn,
        tenant_id=tenant_id,
        actor=principal,
        action=action,
        target_type=target_type,
        target_id=target_id,
        camera_id=camera_id,
        details=details,
    )


class DetectionController(Controller):
    path = "/"
    tags = ["detection"]

    @get("/cameras/{camera_id:uuid}/zones", summary="Zones and lines drawn on a camera")
    async def list_zones(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID]
    ) -> list[Zone]:
        require_role(principal, STAFF_READERS, "read detection zones")
        async with services.db.transaction(principal, readonly=True) as conn:
            return await detection.list_zones(conn, camera_id)

    @post("/cameras/{camera_id:uuid}/zones", summary="Draw a zone (polygon) or a line on a camera")
    async def create_zone(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID], data: JSONBody[ZoneInput]
    ) -> Zone:
        require_role(principal, DETECTION_EDITORS, "draw detection zones")
        async with services.db.transaction(principal) as conn:
            zone = await detection.create_zone(conn, camera_id, data)
            await _journal(
                services,
                conn,
                principal,
                "detection.zone.create",
                tenant_id=zone.tenant_id,
                camera_id=camera_id,
                target_type="zone",
                target_id=zone.id,
                details={"name": zone.name, "kind": zone.kind},
            )
        return zone

    @put("/zones/{zone_id:uuid}", summary="Redraw a zone or a line")
    async def update_zone(
        self, principal: PrincipalDep, services: ServicesDep, zone_id: FromPath[uuid.UUID], data: JSONBody[ZoneInput]
    ) -> Zone:
        require_role(principal, DETECTION_EDITORS, "redraw detection zones")
        async with services.db.transaction(principal) as conn:
            zone = await detection.update_zone(conn, zone_id, data)
            await _journal(
                services,
                conn,
                principal,
                "detection.zone.update",
                tenant_id=zone.tenant_id,
                camera_id=zone.camera_id,
                target_type="zone",
                target_id=zone.id,
                details={"name": zone.name},
            )
        return zone

    @delete("/zones/{zone_id:uuid}", summary="Delete a zone and the rules bound to it")
    async def delete_zone(self, principal: PrincipalDep, services: ServicesDep, zone_id: FromPath[uuid.UUID]) -> None:
        require_role(principal, DETECTION_EDITORS, "delete detection zones")
        async with services.db.transaction(principal) as conn:
            zone = await detection.get_zone(conn, zone_id)
            await detection.delete_zone(conn, zone_id)
            await _journal(
                services,
                conn,
                principal,
                "detection.zone.delete",
                tenant_id=zone.tenant_id,
                camera_id=zone.camera_id,
                target_type="zone",
                target_id=zone_id,
                details={"name": zone.name},
            )

    @get("/cameras/{camera_id:uuid}/rules", summary="Analytics enabled on a camera")
    async def list_rules(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID]
    ) -> list[Rule]:
        require_role(principal, STAFF_READERS, "read detection rules")
        async with services.db.transaction(principal, readonly=True) as conn:
            return await detection.list_rules(conn, camera_id)

    @post("/cameras/{camera_id:uuid}/rules", summary="Enable an analytic (needs a legal basis valid today)")
    async def create_rule(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        services: ServicesDep,
        camera_id: FromPath[uuid.UUID],
        data: JSONBody[RuleInput],
    ) -> Rule:
        require_role(principal, DETECTION_EDITORS, "enable analytics")
        async with services.db.transaction(principal) as conn:
            await detection.list_rules(conn, camera_id)  # a camera out of scope answers 404 before anything else
            labels = model_labels(request)
            rule = await detection.create_rule(conn, camera_id, data, today=_today(), model_labels=labels)
            await _journal(
                services,
                conn,
                principal,
                "detection.rule.create",
                tenant_id=rule.tenant_id,
                camera_id=camera_id,
                target_type="rule",
                target_id=rule.id,
                details={"rule_type": rule.rule_type.value, "enabled": rule.enabled},
            )
        return rule

    @put("/rules/{rule_id:uuid}", summary="Change a rule's zone, parameters or state")
    async def update_rule(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        services: ServicesDep,
        rule_id: FromPath[uuid.UUID],
        data: JSONBody[RuleInput],
    ) -> Rule:
        require_role(principal, DETECTION_EDITORS, "change analytics")
        async with services.db.transaction(principal) as conn:
            await detection.get_rule(conn, rule_id)  # a rule out of scope answers 404 before anything else
            labels = model_labels(request)
            rule = await detection.update_rule(conn, rule_id, data, today=_today(), model_labels=labels)
            await _journal(
                services,
                conn,
                principal,
                "detection.rule.update",
                tenant_id=rule.tenant_id,
                camera_id=rule.camera_id,
                target_type="rule",
                target_id=rule.id,
                details={"rule_type": rule.rule_type.value, "enabled": rule.enabled},
            )
        return rule

    @delete("/rules/{rule_id:uuid}", summary="Remove an analytic")
    async def delete_rule(self, principal: PrincipalDep, services: ServicesDep, rule_id: FromPath[uuid.UUID]) -> None:
        require_role(principal, DETECTION_EDITORS, "remove analytics")
        async with services.db.transaction(principal) as conn:
            rule = await detection.get_rule(conn, rule_id)
            await detection.delete_rule(conn, rule_id)
            await _journal(
                services,
                conn,
                principal,
                "detection.rule.delete",
                tenant_id=rule.tenant_id,
                camera_id=rule.camera_id,
                target_type="rule",
                target_id=rule_id,
                details={"rule_type": rule.rule_type.value},
            )

    @get("/tenants/{tenant_id:uuid}/detector-usage", summary="Detector-seconds per day, for invoicing")
    async def detector_usage(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        tenant_id: FromPath[uuid.UUID],
        since: FromQuery[date],
        until: FromQuery[date],
    ) -> list[UsageDay]:
        require_role(
            principal, frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN, Role.AUDITOR}), "read detector usage"
        )
        if until < since:
            raise InvalidInput("until must not be before since", field="until")
        if not principal.scope.includes(tenant_id):
            raise NotFound("no such tenant")
        async with services.db.transaction(principal, readonly=True) as conn:
            return await detection.detector_usage(conn, tenant_id, since, until)

    @put(
        "/tenants/{tenant_id:uuid}/detection-plan",
        summary="A tenant's detection plan (share of the detector)",
        status_code=204,
    )
    async def set_plan(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[PlanRequest],
    ) -> None:
        require_role(principal, DEPARTMENT_ADMINS, "set detection plans")
        if not principal.scope.includes(tenant_id):
            raise NotFound("no such tenant")
        async with services.db.transaction(principal) as conn:
            await detection.set_detection_plan(conn, tenant_id, data.plan)
            await services.journal.record(
                conn,
                tenant_id=tenant_id,
                actor=principal,
                action="detection.plan.set",
                target_type="tenant",
                target_id=tenant_id,
                details={"plan": data.plan},
            )


ROUTES = [DetectionController]
