"""Detection settings of a camera: zones and lines, analytics rules gated by legal basis; plans and metering."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from api.deps import PrincipalDep, ServicesDep
from inference.model import Rule, RuleInput, UsageDay, Zone, ZoneInput


class PlanRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    plan: Literal["essential", "standard", "premium"]


class DetectionController(Controller):
    path = "/"
    tags = ["detection"]

    @get("/cameras/{camera_id:uuid}/zones", summary="Zones and lines drawn on a camera")
    async def list_zones(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID]
    ) -> list[Zone]:
        return await services.detection.list_zones(principal, camera_id)

    @post("/cameras/{camera_id:uuid}/zones", summary="Draw a zone (polygon) or a line on a camera")
    async def create_zone(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID], data: JSONBody[ZoneInput]
    ) -> Zone:
        return await services.detection.create_zone(principal, camera_id, data)

    @put("/zones/{zone_id:uuid}", summary="Redraw a zone or a line")
    async def update_zone(
        self, principal: PrincipalDep, services: ServicesDep, zone_id: FromPath[uuid.UUID], data: JSONBody[ZoneInput]
    ) -> Zone:
        return await services.detection.update_zone(principal, zone_id, data)

    @delete("/zones/{zone_id:uuid}", summary="Delete a zone and the rules bound to it")
    async def delete_zone(self, principal: PrincipalDep, services: ServicesDep, zone_id: FromPath[uuid.UUID]) -> None:
        await services.detection.delete_zone(principal, zone_id)

    @get("/cameras/{camera_id:uuid}/rules", summary="Analytics enabled on a camera")
    async def list_rules(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID]
    ) -> list[Rule]:
        return await services.detection.list_rules(principal, camera_id)

    @post("/cameras/{camera_id:uuid}/rules", summary="Enable an analytic (needs a legal basis valid today)")
    async def create_rule(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID], data: JSONBody[RuleInput]
    ) -> Rule:
        return await services.detection.create_rule(principal, camera_id, data)

    @put("/rules/{rule_id:uuid}", summary="Change a rule's zone, parameters or state")
    async def update_rule(
        self, principal: PrincipalDep, services: ServicesDep, rule_id: FromPath[uuid.UUID], data: JSONBody[RuleInput]
    ) -> Rule:
        return await services.detection.update_rule(principal, rule_id, data)

    @delete("/rules/{rule_id:uuid}", summary="Remove an analytic")
    async def delete_rule(self, principal: PrincipalDep, services: ServicesDep, rule_id: FromPath[uuid.UUID]) -> None:
        await services.detection.delete_rule(principal, rule_id)

    @get("/tenants/{tenant_id:uuid}/detector-usage", summary="Detector-seconds per day, for invoicing")
    async def detector_usage(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        tenant_id: FromPath[uuid.UUID],
        since: FromQuery[date],
        until: FromQuery[date],
    ) -> list[UsageDay]:
        return await services.detection.detector_usage(principal, tenant_id, since, until)

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
        await services.detection.set_plan(principal, tenant_id, data.plan)


ROUTES = [DetectionController]
