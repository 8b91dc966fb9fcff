"""Reading the access journal (tenant admins see their own cameras' lines), searched by camera, person, motive,
action and period."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ValidationException
from litestar.params import FromQuery, QueryParameter

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from core.tenancy import Role, require_role
from journal.model import JournalEntry, JournalFilter

JOURNAL_READERS = frozenset({Role.AUDITOR, Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.TENANT_ADMIN})

Person = Annotated[str | None, QueryParameter(max_length=200, description="words of the actor's name or e-mail")]
MotiveWords = Annotated[str | None, QueryParameter(max_length=200, description="words of the motive")]
Action = Annotated[str | None, QueryParameter(pattern=r"^[a-z_]+(\.[a-z_]+)*$", max_length=100,
                                             description="an action (media.playback) or its family (media)")]


def check_period(since: datetime | None, until: datetime | None) -> None:
    """A period that ends before it starts is a bad request on `until`, like an unreadable date."""
    if since is not None and until is not None and until <= since:
        message = "the period ends before it starts"
        raise ValidationException(detail=message, extra=[{"key": "until", "message": message, "source": "query"}])


def provide_journal_filter(
    camera_id: FromQuery[uuid.UUID | None] = None,
    tenant_id: FromQuery[uuid.UUID | None] = None,
    since: FromQuery[datetime | None] = None,
    until: FromQuery[datetime | None] = None,
    actor_user_id: FromQuery[uuid.UUID | None] = None,
    person: Person = None,
    motive: MotiveWords = None,
    action: Action = None,
) -> JournalFilter:
    """The search from the query, once its period is checked: a period that ends before it starts is refused on
    `until`. One definition for every endpoint that searches the journal (its page, the desk, their CSV)."""
    check_period(since, until)
    return JournalFilter(camera_id=camera_id, tenant_id=tenant_id, since=since, until=until,
                         actor_user_id=actor_user_id, person=person, motive=motive, action=action)


JOURNAL_SEARCH = {"search": Provide(provide_journal_filter, sync_to_thread=False)}
JournalSearchDep = NamedDependency[JournalFilter]


class JournalController(Controller):
    path = "/journal"
    tags = ["journal"]

    @get("/", summary="Journal lines in scope, newest first", dependencies=JOURNAL_SEARCH)
    async def list_journal(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        search: JournalSearchDep,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[JournalEntry]:
        require_role(principal, JOURNAL_READERS, "read the access journal")
        async with services.db.transaction(principal, readonly=True) as conn:
            entries = await services.journal.page(conn, search, after=decode_cursor(cursor), limit=limit + 1)
        return page_of(entries, limit, lambda entry: entry.id)


ROUTES = [JournalController]
