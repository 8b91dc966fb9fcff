"""The auditor's desk: the journal searched with names, the chains' verification and last anchor, the destruction,
requisition, export and transmission registers, and each as CSV (auditors and department admins)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, Response, get
from litestar.params import FromQuery, QueryParameter

from api.deps import PrincipalDep, ServicesDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from api.routes.journal import JOURNAL_SEARCH, JournalSearchDep, check_period
from journal.anchors import anchor_space
from journal.desk.model import AuditLine, DestructionRow, ExportRow, JournalVerification, RequisitionRow
from journal.desk.service import RegisterKind
from journal.desk.verification import DEFAULT_DEPTH, MAX_DEPTH

Depth = Annotated[int, QueryParameter(ge=1, le=MAX_DEPTH, description="lines recomputed per chain, newest first")]


def _csv(body: bytes, name: str) -> Response[bytes]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(body, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"', "Cache-Control": "private, no-store"})


class AuditorController(Controller):
    path = "/"
    tags = ["audit"]

    @get("/journal/search", summary="The journal searched by camera, person, motive, action and period, with names",
         dependencies=JOURNAL_SEARCH)
    async def search_journal(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        search: JournalSearchDep,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[AuditLine]:
        lines = await services.audit.journal_lines(services.db, principal, search, after=decode_cursor(cursor),
                                                   limit=limit + 1)
        return page_of(lines, limit, lambda line: line.id)

    @get("/journal/search/csv", summary="The same search as a CSV document (10 000 lines at most)",
         media_type="text/csv", dependencies=JOURNAL_SEARCH)
    async def search_journal_csv(
        self,
        principal: PrincipalDep,
        services: ServicesDep,
        search: JournalSearchDep,
    ) -> Response[bytes]:
        return _csv(await services.audit.journal_csv(services.db, principal, search), "journal")

    @get("/journal/verification",
         summary="Each chain in scope verified (its newest lines recomputed) and the newest signed anchor")
    async def verification(self, principal: PrincipalDep, services: ServicesDep,
                           depth: Depth = DEFAULT_DEPTH) -> JournalVerification:
        return await services.audit.verification(services.db, principal, services.store,
                                                 anchor_space(services.settings.database.name), depth=depth)

    @get("/registers/destructions", summary="The destruction register (recordings destroyed), newest first")
    async def destructions(self, principal: PrincipalDep, services: ServicesDep,
                           since: FromQuery[datetime | None] = None, until: FromQuery[datetime | None] = None,
                           limit: Limit = 50, cursor: Cursor = None) -> Page[DestructionRow]:
        return await self._page(principal, services, "destructions", since, until, limit, cursor)  # type: ignore[return-value]

    @get("/registers/requisitions", summary="The requisition register (legal holds and their release)")
    async def requisitions(self, principal: PrincipalDep, services: ServicesDep,
                           since: FromQuery[datetime | None] = None, until: FromQuery[datetime | None] = None,
                           limit: Limit = 50, cursor: Cursor = None) -> Page[RequisitionRow]:
        return await self._page(principal, services, "requisitions", since, until, limit, cursor)  # type: ignore[return-value]

    @get("/registers/exports", summary="The export register (signed packages and their transmission)")
    async def exports(self, principal: PrincipalDep, services: ServicesDep,
                      since: FromQuery[datetime | None] = None, until: FromQuery[datetime | None] = None,
                      limit: Limit = 50, cursor: Cursor = None) -> Page[ExportRow]:
        return await self._page(principal, services, "exports", since, until, limit, cursor)  # type: ignore[return-value]

    @get("/registers/transmissions", summary="The transmission register (exports handed to the prosecutor)")
    async def transmissions(self, principal: PrincipalDep, services: ServicesDep,
                            since: FromQuery[datetime | None] = None, until: FromQuery[datetime | None] = None,
                            limit: Limit = 50, cursor: Cursor = None) -> Page[ExportRow]:
        return await self._page(principal, services, "transmissions", since, until, limit, cursor)  # type: ignore[return-value]

    @get("/registers/destructions/csv", summary="The destruction register over a period as CSV",
         media_type="text/csv")
    async def destructions_csv(self, principal: PrincipalDep, services: ServicesDep,
                               since: FromQuery[datetime | None] = None,
                               until: FromQuery[datetime | None] = None) -> Response[bytes]:
        return await self._csv(principal, services, "destructions", since, until)

    @get("/registers/requisitions/csv", summary="The requisition register over a period as CSV",
         media_type="text/csv")
    async def requisitions_csv(self, principal: PrincipalDep, services: ServicesDep,
                               since: FromQuery[datetime | None] = None,
                               until: FromQuery[datetime | None] = None) -> Response[bytes]:
        return await self._csv(principal, services, "requisitions", since, until)

    @get("/registers/exports/csv", summary="The export register over a period as CSV", media_type="text/csv")
    async def exports_csv(self, principal: PrincipalDep, services: ServicesDep,
                          since: FromQuery[datetime | None] = None,
                          until: FromQuery[datetime | None] = None) -> Response[bytes]:
        return await self._csv(principal, services, "exports", since, until)

    @get("/registers/transmissions/csv", summary="The transmission register over a period as CSV",
         media_type="text/csv")
    async def transmissions_csv(self, principal: PrincipalDep, services: ServicesDep,
                                since: FromQuery[datetime | None] = None,
                                until: FromQuery[datetime | None] = None) -> Response[bytes]:
        return await self._csv(principal, services, "transmissions", since, until)

    async def _csv(self, principal: PrincipalDep, services: ServicesDep, kind: RegisterKind,
                   since: datetime | None, until: datetime | None) -> Response[bytes]:
        check_period(since, until)
        return _csv(await services.audit.register_csv(services.db, principal, kind, since=since, until=until), kind)

    async def _page(self, principal: PrincipalDep, services: ServicesDep, kind: RegisterKind,
                    since: datetime | None, until: datetime | None, limit: int,
                    cursor: str | None) -> Page[DestructionRow | RequisitionRow | ExportRow]:
        check_period(since, until)
        rows = await services.audit.register(services.db, principal, kind, since=since, until=until,
                                             after=decode_cursor(cursor), limit=limit + 1)
        return page_of(rows, limit, lambda row: row.id)


ROUTES = [AuditorController]
