"""Camera health (state, history, availability per day) and the maintenance tickets of cameras out of order."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Limit
from health.model import CameraHealth, MaintenanceTicket, TicketResolution

HistoryDays = Annotated[int, QueryParameter(ge=1, le=366, description="days of availability, 30 by default")]
TicketStateFilter = Annotated[Literal["open", "acknowledged", "resolved"] | None,
                              QueryParameter(name="state", description="only tickets in this state")]


class CameraHealthController(Controller):
    path = "/cameras"
    tags = ["cameras"]

    @get("/{camera_id:uuid}/health", summary="The camera's health: state, watchers, transitions, availability per day")
    async def camera_health(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID], days: HistoryDays = 30,
    ) -> CameraHealth:
        return await services.health.camera_health(principal, camera_id, days=days)


class MaintenanceTicketController(Controller):
    path = "/maintenance-tickets"
    tags = ["cameras"]

    @get("/", summary="Maintenance tickets of cameras out of order, newest first")
    async def list_tickets(
        self, principal: PrincipalDep, services: ServicesDep, ticket_state: TicketStateFilter = None,
        camera_id: Annotated[uuid.UUID | None, QueryParameter(description="one camera's tickets")] = None,
        limit: Limit = 100,
    ) -> list[MaintenanceTicket]:
        return await services.health.tickets(principal, state=ticket_state, camera_id=camera_id, limit=limit)

    @get("/{ticket_id:uuid}", summary="Read a maintenance ticket")
    async def get_ticket(
        self, principal: PrincipalDep, services: ServicesDep, ticket_id: FromPath[uuid.UUID]
    ) -> MaintenanceTicket:
        return await services.health.ticket(principal, ticket_id)

    @post("/{ticket_id:uuid}/acknowledge", summary="Take an open ticket in hand", status_code=200)
    async def acknowledge(
        self, principal: PrincipalDep, services: ServicesDep, ticket_id: FromPath[uuid.UUID]
    ) -> MaintenanceTicket:
        return await services.health.acknowledge(principal, ticket_id)

    @post("/{ticket_id:uuid}/resolve", summary="Close a ticket with what was done", status_code=200)
    async def resolve(
        self, principal: PrincipalDep, services: ServicesDep, ticket_id: FromPath[uuid.UUID],
        data: JSONBody[TicketResolution],
    ) -> MaintenanceTicket:
        return await services.health.resolve(principal, ticket_id, data.note)


ROUTES = [CameraHealthController, MaintenanceTicketController]
