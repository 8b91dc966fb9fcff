"""The API bench's second baseline: a raw asyncpg loop issuing one GET /cameras/{id}'s statements over the same pool.

Run by bench.api in its own process, pinned to the core the API gets, with Postgres on the other core: what the API
does per request minus HTTP, authentication and the framework. Prints the transactions per second it sustained.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from core.db import begin_statement, create_pool
from core.settings import get_settings
from tenants.repository import TenancyRepository


async def run(tenant_id: uuid.UUID, camera_id: uuid.UUID, *, seconds: float, concurrency: int) -> float:
    settings = get_settings()
    pool = await create_pool(settings.database.app_dsn, min_size=settings.database.pool_min_size,
                             max_size=settings.database.pool_max_size)
    # The statements of a tenant admin's read-only request, as core.db sends them.
    begin = begin_statement([tenant_id], readonly=True)
    repository = TenancyRepository()
    done = 0
    deadline = time.perf_counter() + seconds

    async def one_client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with pool.acquire() as conn:
                await conn.execute(begin)
                camera = await repository.camera(conn, camera_id)  # type: ignore[arg-type]
                await conn.execute("COMMIT")
            assert camera is not None
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenant", type=uuid.UUID, required=True)
    parser.add_argument("--camera", type=uuid.UUID, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    import uvloop

    rate = uvloop.run(run(args.tenant, args.camera, seconds=args.seconds, concurrency=args.concurrency))
    print(f"{rate:.1f}")


if __name__ == "__main__":
    main()
