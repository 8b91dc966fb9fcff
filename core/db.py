"""The one way into the database: pools for the platform roles and the `Database` methods that open transactions."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import cast

import asyncpg
from prometheus_client import Counter

from core.errors import OutOfScope, Unavailable
from core.tenancy import Principal

# The only GUCs the row-level security policies read. Set per transaction, never per session.
TENANT_SCOPE_GUC = "app.tenant_ids"
DEPARTMENT_GUC = "app.department_id"
# Raised by app_camera_in_scope() (migration 0050) when an event names a camera outside its tenants.
CAMERA_OUT_OF_SCOPE_SQLSTATE = "VG001"

CROSS_TENANT_USES = Counter(
    "vigie_db_cross_tenant_total", "Connections taken on the RLS-bypassing department role", ["reason"]
)


async def _rollback_if_open(conn: asyncpg.Connection) -> None:
    """Release hook: only an interrupted transaction needs undoing. Tenant scope is transaction-local, so no
    session state survives a request; asyncpg's default reset (RESET ALL etc.) would cost a round trip each time."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool for one role; the only place the platform creates pools."""
    try:
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, command_timeout=30, reset=_rollback_if_open
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"database unreachable: {exc}") from exc
    assert pool is not None
    return pool


def scope_literal(tenant_ids: Iterable[uuid.UUID]) -> str:
    """A Postgres uuid[] literal; ids are UUID objects, so no quoting issue can arise."""
    return "{" + ",".join(str(uuid.UUID(str(t))) for t in tenant_ids) + "}"


def begin_statement(
    tenant_ids: Iterable[uuid.UUID],
    *,
    department_id: uuid.UUID | None = None,
    camera_id: uuid.UUID | None = None,
    readonly: bool = False,
) -> str:
    """BEGIN, the scope and the optional camera check as one simple query (one round trip)."""
    if camera_id is None and isinstance(tenant_ids, frozenset):
        # A principal's scope is a frozenset that every request of the session repeats: built once.
        return _scoped_begin(tenant_ids, department_id, readonly)
    return _begin(tenant_ids, department_id, camera_id, readonly)


@functools.lru_cache(maxsize=4096)
def _scoped_begin(tenant_ids: frozenset[uuid.UUID], department_id: uuid.UUID | None, readonly: bool) -> str:
    return _begin(tenant_ids, department_id, None, readonly)


def _begin(tenant_ids: Iterable[uuid.UUID], department_id: uuid.UUID | None, camera_id: uuid.UUID | None,
           readonly: bool) -> str:
    scope = scope_literal(tenant_ids)
    department = "" if department_id is None else str(uuid.UUID(str(department_id)))
    # Every value is rebuilt from a UUID above, so none can carry a quote: safe to inline in one simple query.
    check = "" if camera_id is None else f", app_camera_in_scope('{uuid.UUID(str(camera_id))}')"
    return (
        f"BEGIN{' READ ONLY' if readonly else ''}; "
        f"SELECT set_config('{TENANT_SCOPE_GUC}', '{scope}', true), "
        f"set_config('{DEPARTMENT_GUC}', '{department}', true){check}"
    )


@asynccontextmanager
async def _tenant_transaction(
    pool: asyncpg.Pool,
    tenant_ids: Iterable[uuid.UUID],
    *,
    department_id: uuid.UUID | None = None,
    camera_id: uuid.UUID | None = None,
    readonly: bool = False,
) -> AsyncIterator[asyncpg.Connection]:
    """Open a transaction whose row-level security scope is `tenant_ids` (and the department directory).

    The scope is set with set_config(..., is_local => true): it dies with the transaction, so a pooled
    connection never carries one request's tenants into the next. An empty scope sees nothing.
    BEGIN, the scope and the optional camera check travel in one round trip; inside, use SAVEPOINT for nested work
    (asyncpg refuses `conn.transaction()` within a transaction it did not start, loudly).
    """
    begin = begin_statement(tenant_ids, department_id=department_id, camera_id=camera_id, readonly=readonly)
    async with pool.acquire() as conn:
        try:
            await conn.execute(begin)
        except asyncpg.PostgresError as exc:
            if not conn.is_closed() and conn.is_in_transaction():
                await conn.execute("ROLLBACK")
            if exc.sqlstate == CAMERA_OUT_OF_SCOPE_SQLSTATE:
                raise OutOfScope(f"camera {camera_id} is not one of the event's tenants") from exc
            raise
        try:
            # The pool hands out proxies that forward every Connection method.
            yield cast(asyncpg.Connection, conn)
        except BaseException:
            if not conn.is_closed():
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")


class Database:
    """Every transaction of the platform is opened here, by a method named for who acts.

    * `transaction(principal)`: a request; the scope is the verified principal's.
    * `for_tenants(tenant_ids, camera_id=...)`: a worker acting on an event or a job; the tenants come from the event
      and, when the event names a camera, the camera is checked to belong to them in the same round trip.
    * `anonymous()`: sign-in and session flows before a principal exists; an empty scope sees identity tables only
      (`anonymous_statement()`: the same for one statement outside a transaction, e.g. a sign-in function's call).
    * `cross_tenant(reason)`: the RLS-bypassing department role, for the department jobs whose call sites are an
      explicit allow-list (tests/unit/test_seams.py). A process given no department pool (the API) cannot use it.
    """

    def __init__(self, app_pool: asyncpg.Pool, department_pool: asyncpg.Pool | None = None) -> None:
        self._app_pool = app_pool
        self._department_pool = department_pool

    @property
    def pool_size(self) -> int:
        """Connections the runtime pool may open (for callers sizing their own concurrency)."""
        return int(self._app_pool.get_max_size())

    def transaction(
        self,
        principal: Principal,
        *,
        readonly: bool = False,
        with_home_tenant: bool = False,
    ) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A transaction that sees exactly the principal's scope; `with_home_tenant` adds the tenant of the
        principal's own membership (one's own account and journal lines, outside an officer's working scope)."""
        tenants = principal.scope.tenant_ids
        if with_home_tenant:
            tenants = tenants | {principal.home_tenant_id}
        return _tenant_transaction(
            self._app_pool, tenants, department_id=principal.scope.department_id, readonly=readonly
        )

    def for_tenants(
        self,
        tenant_ids: Iterable[uuid.UUID],
        *,
        camera_id: uuid.UUID | None = None,
        department_id: uuid.UUID | None = None,
        readonly: bool = False,
    ) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A worker's transaction over the tenants an event (or a job's work item) names; raises OutOfScope when
        `camera_id` is given and the camera belongs to none of them."""
        return _tenant_transaction(
            self._app_pool, tenant_ids, department_id=department_id, camera_id=camera_id, readonly=readonly
        )

    def anonymous(self, *, readonly: bool = False) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A transaction on the runtime role with an empty scope: identity tables only, no tenant row visible."""
        return _tenant_transaction(self._app_pool, (), readonly=readonly)

    @asynccontextmanager
    async def anonymous_statement(self) -> AsyncIterator[asyncpg.Connection]:
        """A runtime-role connection with no scope and outside any transaction, for ONE statement that needs no
        BEGIN/COMMIT: a call of a sign-in function (SECURITY DEFINER, migration 0052) or a single read of the
        identity tables, in one round trip. Like `anonymous()`, it sees no tenant row on its own."""
        async with self._app_pool.acquire() as conn:
            yield cast(asyncpg.Connection, conn)

    async def ping(self) -> None:
        """One round trip on the runtime role (readiness)."""
        async with self._app_pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    @asynccontextmanager
    async def cross_tenant(self, reason: str) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the department role (BYPASSRLS), outside any transaction; `reason` names the job."""
        if self._department_pool is None:
            raise RuntimeError(f"this process holds no department connection ({reason})")
        CROSS_TENANT_USES.labels(reason).inc()
        async with self._department_pool.acquire() as conn:
            yield cast(asyncpg.Connection, conn)

    async def close(self) -> None:
        await self._app_pool.close()
        if self._department_pool is not None:
            await self._department_pool.close()


async def open_database(
    app_dsn: str,
    department_dsn: str | None = None,
    *,
    app_pool_size: tuple[int, int] = (2, 10),
    department_pool_size: tuple[int, int] = (1, 3),
) -> Database:
    """Pools for a process: the runtime role always; the department role only where a job needs it."""
    app_pool = await create_pool(app_dsn, min_size=app_pool_size[0], max_size=app_pool_size[1])
    department_pool = None
    if department_dsn is not None:
        try:
            department_pool = await create_pool(
                department_dsn, min_size=department_pool_size[0], max_size=department_pool_size[1]
            )
        except Unavailable:
            await app_pool.close()
            raise
    return Database(app_pool, department_pool)
