"""Live video: a journaled, short-lived ticket per viewing for the live gateway, and the record of viewings."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from live.model import LiveView, Stream, TicketGrant


class LiveRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Optional in the schema so that a missing motive is the legal rule's refusal (422, field `motive`), as an empty
    # one is, rather than a parsing error.
    motive: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    stream: Stream = Stream.SUB


class LiveController(Controller):
    path = "/cameras/{camera_id:uuid}/live"
    tags = ["live"]

    @post("/", summary="A single-use ticket to watch a camera live on the gateway (journaled, with motive)",
          status_code=201)
    async def issue_ticket(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        camera_id: FromPath[uuid.UUID],
        data: JSONBody[LiveRequest],
    ) -> TicketGrant:
        return await services.live.issue_ticket(principal, camera_id, stream=data.stream, motive=data.motive)

    @get("/views", summary="Who watched the camera live, when and why, newest first")
    async def views(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        camera_id: FromPath[uuid.UUID],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[LiveView]:
        rows = await services.live.views(principal, camera_id, after=decode_cursor(cursor), limit=limit + 1)
        return page_of(rows, limit, lambda view: view.id)


ROUTES = [LiveController]
