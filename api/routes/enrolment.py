"""The enrolment link's page: the person who holds it sees what it offers and sets their own credentials. Public (no
bearer token): the link's token, sent in a header so that it never lands in a URL, a log line or a Referer."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import HeaderParameter, JSONBody

from api.deps import ServicesDep
from api.proxies import client_host
from identity.model import EnrolmentCompleted, EnrolmentRequest, EnrolmentView

EnrolmentToken = Annotated[
    str,
    HeaderParameter(
        name="X-Enrolment-Token",
        min_length=20,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="the token of the enrolment link (its fragment)",
    ),
]
NO_STORE = {"Cache-Control": "no-store"}


class EnrolmentController(Controller):
    path = "/auth/enrolment"
    tags = ["auth"]

    @get(
        "/",
        summary="What an enrolment link offers, with a fresh second-factor seed to scan (shown to its holder only)",
        exclude_from_auth=True,
        security=[],
    )
    async def view(
        self, request: Request[Any, Any, Any], services: ServicesDep, token: EnrolmentToken
    ) -> Response[EnrolmentView]:
        view = await services.enrolment.view(token, client_ip=client_host(request))
        return Response(content=view, headers=NO_STORE)

    @post(
        "/",
        summary="Set one's own password and second factor through an enrolment link (it works once)",
        status_code=200,
        exclude_from_auth=True,
        security=[],
    )
    async def complete(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        token: EnrolmentToken,
        data: JSONBody[EnrolmentRequest],
    ) -> Response[EnrolmentCompleted]:
        done = await services.enrolment.complete(token, data, client_ip=client_host(request))
        return Response(content=done, headers=NO_STORE)


ROUTES = [EnrolmentController]
