"""Interleaved requests of two tenants over a pool of two connections, some aborting mid-transaction:
no request ever sees a row of the other tenant."""

from __future__ import annotations

import asyncio
import random

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from cli.seed import SeedResult
from core.settings import Settings
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration
REQUESTS = 3000


async def test_pool_reuse_never_leaks_a_tenant(
    api_settings: Settings, actors: dict[str, Actor], seeded: SeedResult
) -> None:
    tiny = api_settings.model_copy(
        update={"database": api_settings.database.model_copy(update={"pool_min_size": 1, "pool_max_size": 2})}
    )
    tenants = {"maire@cergy.demo": str(seeded.tenants["cergy"]), "maire@marines.demo": str(seeded.tenants["marines"])}
    duplicate = {"maire@cergy.demo": "Quais", "maire@marines.demo": "Place du marché"}
    own_camera = {"maire@cergy.demo": seeded.cameras["c4"], "maire@marines.demo": seeded.cameras["c6"]}
    rng = random.Random(2026)
    plan = [rng.choice(list(tenants)) for _ in range(REQUESTS)]
    foreign_rows, aborted, checked = 0, 0, 0
    async with AsyncTestClient(app=create_app(tiny)) as client:

        async def one(email: str, n: int) -> tuple[int, int, int]:
            headers = actors[email].headers
            if n % 10 == 0:
                # Renaming onto an existing name fails inside the transaction: it rolls back mid-way.
                response = await client.patch(
                    f"/cameras/{own_camera[email]}", json={"name": duplicate[email]}, headers=headers
                )
                assert response.status_code == 409, response.text
                return 0, 1, 0
            path = ("/cameras", "/sites", "/journal")[n % 3]
            response = await client.get(f"{path}?limit=200", headers=headers)
            assert response.status_code == 200, response.text
            items = response.json()["items"]
            return sum(1 for item in items if item["tenant_id"] != tenants[email]), 0, len(items)

        for start in range(0, REQUESTS, 50):
            results = await asyncio.gather(*(one(email, start + i) for i, email in enumerate(plan[start : start + 50])))
            foreign_rows += sum(r[0] for r in results)
            aborted += sum(r[1] for r in results)
            checked += sum(r[2] for r in results)
    print(
        f"\npool leak: {REQUESTS} requests ({aborted} aborted mid-transaction), {checked} rows checked, "
        f"{foreign_rows} foreign rows seen"
    )
    assert foreign_rows == 0
    assert aborted == REQUESTS // 10
    assert checked > REQUESTS
