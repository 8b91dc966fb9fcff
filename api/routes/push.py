"""Officers' devices, the app's dispatches and status reports, and the push side of a dispatch for staff."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mobile_push.model import (
    Device,
    DeviceRegistration,
    DispatchReport,
    DispatchView,
    HealthAlarm,
    ResponderState,
    StatusReport,
    TokenRefresh,
)


class DeviceController(Controller):
    path = "/devices"
    tags = ["devices"]

    @get("/", summary="List devices: an officer's own, or those in the caller's scope (tokens are never shown)")
    async def list_devices(
        self, principal: PrincipalDep, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[Device]:
        rows = await services.push.list_devices(principal, decode_cursor(cursor), limit + 1)
        return page_of(rows, limit, lambda d: d.id)

    @post("/", summary="Register this phone's FCM registration token (officers)")
    async def register(
        self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[DeviceRegistration]
    ) -> Device:
        return await services.push.register_device(principal, data)

    @put("/{device_id:uuid}/token", summary="Replace the device's token after FCM rotated it")
    async def refresh_token(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        device_id: FromPath[uuid.UUID],
        data: JSONBody[TokenRefresh],
    ) -> Device:
        return await services.push.refresh_token(principal, device_id, data)

    @post("/{device_id:uuid}/heartbeat", summary="The app is alive on this device", status_code=200)
    async def heartbeat(self, principal: PrincipalDep, services: ServicesDep, device_id: FromPath[uuid.UUID]) -> Device:
        return await services.push.heartbeat(principal, device_id)

    @delete("/{device_id:uuid}", summary="Sign this device out: it gets no more pushes")
    async def remove(self, principal: PrincipalDep, services: ServicesDep, device_id: FromPath[uuid.UUID]) -> None:
        await services.push.remove_device(principal, device_id)


class MobileDispatchController(Controller):
    path = "/mobile/dispatches"
    tags = ["mobile"]

    @get("/", summary="Dispatches sent to the calling officer; with alert_id, the app's journaled fetch after a push")
    async def list_dispatches(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        alert_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> list[DispatchView]:
        return await services.push.my_dispatches(principal, alert_id=alert_id, limit=limit)

    @get("/{dispatch_id:uuid}", summary="Fetch one dispatch sent to the calling officer (journaled)")
    async def get_dispatch(
        self, principal: PrincipalDep, services: ServicesDep, dispatch_id: FromPath[uuid.UUID]
    ) -> DispatchView:
        return await services.push.fetch_dispatch(principal, dispatch_id)

    @post(
        "/{dispatch_id:uuid}/status",
        summary="Post a receipt (delivered) or a status: acknowledged, en_route, on_scene, closed — in that order",
        status_code=200,
    )
    async def report_status(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        dispatch_id: FromPath[uuid.UUID],
        data: JSONBody[StatusReport],
    ) -> ResponderState:
        return await services.push.report_status(principal, dispatch_id, data)


class PushReportController(Controller):
    path = "/push"
    tags = ["push"]

    @get("/dispatches/{dispatch_id:uuid}", summary="Each officer's status and every FCM attempt of a dispatch")
    async def dispatch_report(
        self, principal: PrincipalDep, services: ServicesDep, dispatch_id: FromPath[uuid.UUID]
    ) -> DispatchReport:
        return await services.push.dispatch_report(principal, dispatch_id)

    @get("/alarms", summary="Health alarms of the push channel (FCM credentials refused)")
    async def alarms(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        open_only: FromQuery[bool] = True,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[HealthAlarm]:
        return await services.push.alarms(principal, open_only=open_only, limit=limit)


ROUTES = [DeviceController, MobileDispatchController, PushReportController]
