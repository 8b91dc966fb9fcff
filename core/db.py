"""asyncpg pools for the platform roles and the one helper that opens a tenant-scoped transaction."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import cast

import asyncpg

from core.errors import Unavailable
from core.tenancy import Principal

# The only GUCs the row-level security policies read. Set per transaction, never per session.
TENANT_SCOPE_GUC = "app.tenant_ids"
DEPARTMENT_GUC = "app.department_id"


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


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool,
    tenant_ids: Iterable[uuid.UUID],
    *,
    department_id: uuid.UUID | None = None,
    readonly: bool = False,
) -> AsyncIterator[asyncpg.Connection]:
    """Open a transaction whose row-level security scope is `tenant_ids` (and the department directory).

    The scope is set with set_config(..., is_local => true): it dies with the transaction, so a pooled
    connection never carries one request's tenants into the next. An empty scope sees nothing.
    BEGIN and the scope travel in one round trip; inside, use SAVEPOINT for nested work (asyncpg refuses
    `conn.transaction()` within a transaction it did not start, loudly).
    """
    scope = scope_literal(tenant_ids)
    department = "" if department_id is None else str(uuid.UUID(str(department_id)))
    # Both values are rebuilt from UUIDs above, so they cannot carry quotes: safe to inline in one simple query.
    begin = (
        f"BEGIN{' READ ONLY' if readonly else ''}; "
        f"SELECT set_config('{TENANT_SCOPE_GUC}', '{scope}', true), "
        f"set_config('{DEPARTMENT_GUC}', '{department}', true)"
    )
    async with pool.acquire() as conn:
        await conn.execute(begin)
        try:
            # The pool hands out proxies that forward every Connection method.
            yield cast(asyncpg.Connection, conn)
        except BaseException:
            if not conn.is_closed():
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")


@dataclass(frozen=True)
class Database:
    """The runtime pool (RLS applies) and the cross-tenant pool (department jobs only, always journaled)."""

    app_pool: asyncpg.Pool
    department_pool: asyncpg.Pool

    def transaction(
        self,
        principal: Principal,
        *,
        readonly: bool = False,
    ) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A transaction that sees exactly the principal's scope."""
        return tenant_transaction(
            self.app_pool, principal.scope.tenant_ids, department_id=principal.scope.department_id, readonly=readonly
        )

    def unscoped(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A transaction on the runtime role with an empty scope: identity tables only, no tenant row visible."""
        return tenant_transaction(self.app_pool, ())

    @asynccontextmanager
    async def cross_tenant(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the department role (BYPASSRLS): sign-in lookups and department jobs only."""
        async with self.department_pool.acquire() as conn:
            yield cast(asyncpg.Connection, conn)

    async def close(self) -> None:
        await self.app_pool.close()
        await self.department_pool.close()
