"""Zones and rules through the service functions, on real Postgres with row-level security (app role)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import asyncpg
import pytest

from core.crypto import SecretBox
from core.db import tenant_transaction
from core.errors import NotFound
from core.settings import Settings
from inference import service
from inference.errors import ForbiddenAnalysis, InvalidRule, InvalidZone, RuleNotAuthorised
from inference.model import RuleInput, RuleType, ZoneInput
from inference.scheduler import UsageMeter
from tests.inference.conftest import World, add_camera, authorise

pytestmark = pytest.mark.integration

LABELS = frozenset({"Person", "Car", "Box"})
TODAY = date.today()
SQUARE = [[0.1, 0.1], [0.6, 0.1], [0.6, 0.6], [0.1, 0.6]]


async def test_a_zone_is_validated_and_visible_only_to_its_tenant(
        world: World, department_pool: asyncpg.Pool, app_pool: asyncpg.Pool) -> None:
    alpha, beta = world.tenants
    async with department_pool.acquire() as conn:
        camera = await add_camera(conn, world, alpha, "gate", "rtsp://127.0.0.1:1/sub")
    async with tenant_transaction(app_pool, [alpha]) as conn:
        zone = await service.create_zone(conn, camera, ZoneInput(name="parvis", points=SQUARE))
        with pytest.raises(InvalidZone, match="self-intersects"):
            await service.create_zone(conn, camera, ZoneInput(name="bowtie", points=[[0.1, 0.1], [0.9, 0.9],
                                                                                       [0.9, 0.1], [0.1, 0.9]]))
        with pytest.raises(InvalidZone, match="leaves the frame"):
            await service.create_zone(conn, camera, ZoneInput(name="out", points=[[0.1, 0.1], [1.2, 0.1],
                                                                                    [0.5, 0.5]]))
        assert [z.name for z in await service.list_zones(conn, camera)] == ["parvis"]
    async with tenant_transaction(app_pool, [beta]) as conn:
        with pytest.raises(NotFound):
            await service.list_zones(conn, camera)
        with pytest.raises(NotFound):
            await service.update_zone(conn, zone.id, ZoneInput(name="stolen", points=SQUARE))
        with pytest.raises(NotFound):
            await service.delete_zone(conn, zone.id)


async def test_a_rule_is_enabled_only_with_a_legal_basis_valid_today(
        world: World, department_pool: asyncpg.Pool, app_pool: asyncpg.Pool) -> None:
    alpha = world.tenants[0]
    async with department_pool.acquire() as conn:
        camera = await add_camera(conn, world, alpha, "square", "rtsp://127.0.0.1:1/sub")
    async with tenant_transaction(app_pool, [alpha]) as conn:
        zone = await service.create_zone(conn, camera, ZoneInput(name="cordon", points=SQUARE))
        intrusion = RuleInput(rule_type="intrusion", zone_id=zone.id)
        with pytest.raises(RuleNotAuthorised, match="forbidden_zone"):
            await service.create_rule(conn, camera, intrusion, today=TODAY, model_labels=LABELS)
        prepared = await service.create_rule(conn, camera, RuleInput(rule_type="intrusion", zone_id=zone.id,
                                                                     enabled=False),
                                             today=TODAY, model_labels=LABELS)
        assert not prepared.enabled
    async with department_pool.acquire() as conn:
        await authorise(conn, world, camera, "forbidden_zone", TODAY - timedelta(days=10), TODAY + timedelta(days=30))
    async with tenant_transaction(app_pool, [alpha]) as conn:
        rule = await service.create_rule(conn, camera, intrusion, today=TODAY, model_labels=LABELS)
        assert rule.rule_type is RuleType.INTRUSION
        assert rule.enabled
        enabled = await service.update_rule(conn, prepared.id, intrusion, today=TODAY, model_labels=LABELS)
        assert enabled.enabled
        with pytest.raises(RuleNotAuthorised):
            await service.create_rule(conn, camera, RuleInput(rule_type="wrong_way", zone_id=zone.id),
                                      today=TODAY, model_labels=LABELS)
        with pytest.raises(ForbiddenAnalysis):
            await service.create_rule(conn, camera, RuleInput(rule_type="face_recognition"), today=TODAY,
                                      model_labels=LABELS)
        with pytest.raises(InvalidRule, match="dwell_s"):
            await service.create_rule(conn, camera, RuleInput(rule_type="intrusion", zone_id=zone.id,
                                                              params={"dwell_s": "long"}),
                                      today=TODAY, model_labels=LABELS)
        assert len(await service.list_rules(conn, camera)) == 2


async def test_database_refuses_a_forbidden_rule_type_even_bypassing_the_service(
        world: World, department_pool: asyncpg.Pool, app_pool: asyncpg.Pool) -> None:
    alpha = world.tenants[0]
    async with department_pool.acquire() as conn:
        camera = await add_camera(conn, world, alpha, "direct", "rtsp://127.0.0.1:1/sub")
    async with tenant_transaction(app_pool, [alpha]) as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO detection_rules (id, tenant_id, camera_id, rule_type) "
                               "VALUES ($1, $2, $3, 'face_recognition')", uuid.uuid4(), alpha, camera)


async def test_worker_switches_off_rules_whose_basis_lapsed_and_loads_runnable_configs(
        world: World, department_pool: asyncpg.Pool, app_pool: asyncpg.Pool, settings: Settings) -> None:
    alpha, beta = world.tenants
    secrets = SecretBox(settings.data_key.get_secret_value())
    async with department_pool.acquire() as conn:
        camera = await add_camera(conn, world, alpha, "expiring", "rtsp://127.0.0.1:1/sub", secrets=secrets,
                                  username="admin", password="p@ss:word")
        other = await add_camera(conn, world, beta, "beta-cam", "rtsp://127.0.0.1:2/sub")
        await authorise(conn, world, camera, "forbidden_zone", TODAY - timedelta(days=30), TODAY + timedelta(days=1))
    async with tenant_transaction(app_pool, [beta]) as conn:
        await service.set_detection_plan(conn, beta, "premium")
        with pytest.raises(InvalidRule):
            await service.set_detection_plan(conn, beta, "platinum")
    async with tenant_transaction(app_pool, [alpha]) as conn:
        zone = await service.create_zone(conn, camera, ZoneInput(name="z", points=SQUARE))
        rule = await service.create_rule(conn, camera, RuleInput(rule_type="loitering", zone_id=zone.id),
                                         today=TODAY, model_labels=LABELS)
        tamper = await service.create_rule(conn, camera, RuleInput(rule_type="camera_tamper"), today=TODAY,
                                           model_labels=LABELS)
    weights = {"essential": 1.0, "premium": 4.0}
    async with service.department_transaction(department_pool) as conn:
        assert await service.switch_off_unauthorised_rules(conn, TODAY) == []
        configs = {c.camera_id: c for c in await service.load_camera_configs(
            conn, today=TODAY, secrets=secrets, plan_weights=weights) if c.camera_id in (camera, other)}
    assert (configs[camera].username, configs[camera].password) == ("admin", "p@ss:word")
    assert {r.id for r in configs[camera].rules} == {rule.id, tamper.id}
    assert configs[camera].zones[0].points[0] == (0.1, 0.1)
    assert (configs[camera].weight, configs[other].weight) == (1.0, 4.0)
    later = TODAY + timedelta(days=2)
    async with service.department_transaction(department_pool) as conn:
        assert await service.switch_off_unauthorised_rules(conn, later) == [rule.id]
        configs = {c.camera_id: c for c in await service.load_camera_configs(
            conn, today=later, secrets=secrets, plan_weights=weights)}
    assert {r.id for r in configs[camera].rules} == {tamper.id}
    async with tenant_transaction(app_pool, [alpha]) as conn:
        stored = {r.id: r for r in await service.list_rules(conn, camera)}
    assert not stored[rule.id].enabled
    assert "legal basis" in (stored[rule.id].disabled_reason or "")


async def test_usage_is_metered_per_tenant_and_day(world: World, department_pool: asyncpg.Pool,
                                                    app_pool: asyncpg.Pool) -> None:
    import asyncio

    alpha, beta = world.tenants
    meter = UsageMeter()
    meter.record_batch([alpha, alpha, beta], 0.3)
    stop = asyncio.Event()
    stop.set()  # one flush, then return
    await service.flush_usage(department_pool, meter, timezone="Europe/Paris", every_s=0.01, stop=stop)
    async with tenant_transaction(app_pool, [alpha]) as conn:
        days = await service.detector_usage(conn, alpha, TODAY - timedelta(days=1), TODAY + timedelta(days=1))
        foreign = await service.detector_usage(conn, beta, TODAY - timedelta(days=1), TODAY + timedelta(days=1))
    assert [(round(d.detector_seconds, 6), d.frames) for d in days] == [(0.2, 2)]
    assert foreign == []  # row-level security: beta's metering is not alpha's to read
