"""Zones and rules through the detection service, on real Postgres with row-level security (app role)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest

from core.crypto import SecretBox
from core.db import Database
from core.errors import NotFound, PermissionDenied, Unavailable
from core.settings import Settings
from core.tenancy import Principal, Role, Scope
from inference import service, worker
from inference.errors import ForbiddenAnalysis, InvalidRule, InvalidZone, RuleNotAuthorised
from inference.model import CameraConfig, RuleInput, RuleType, ZoneInput
from inference.scheduler import UsageMeter
from tests.inference.conftest import World, add_camera, authorise

pytestmark = pytest.mark.integration

LABELS = frozenset({"Person", "Car", "Box"})
TODAY = date.today()
SQUARE = [[0.1, 0.1], [0.6, 0.1], [0.6, 0.6], [0.1, 0.6]]


async def test_a_zone_is_validated_and_visible_only_to_its_tenant(
        world: World, department_pool: asyncpg.Pool, database: Database) -> None:
    alpha, beta = world.tenants
    async with department_pool.acquire() as conn:
        camera = await add_camera(conn, world, alpha, "gate", "rtsp://127.0.0.1:1/sub")
    async with database.for_tenants([alpha]) as conn:
        zone = await service.create_zone(conn, camera, ZoneInput(name="parvis", points=SQUARE))
        with pytest.raises(InvalidZone, match="self-intersects"):
            await service.create_zone(conn, camera, ZoneInput(name="bowtie", points=[[0.1, 0.1], [0.9, 0.9],
                                                                                       [0.9, 0.1], [0.1, 0.9]]))
        with pytest.raises(InvalidZone, match="leaves the frame"):
            await service.create_zone(conn, camera, ZoneInput(name="out", points=[[0.1, 0.1], [1.2, 0.1],
                                                                                    [0.5, 0.5]]))
        assert [z.name for z in await service.list_zones(conn, camera)] == ["parvis"]
    async with database.for_tenants([beta]) as conn:
        with pytest.raises(NotFound):
            await service.list_zones(conn, camera)
        with pytest.raises(NotFound):
            await service.update_zone(conn, zone.id, ZoneInput(name="stolen", points=SQUARE))
        with pytest.raises(NotFound):
            await service.delete_zone(conn, zone.id)


async def test_a_rule_is_enabled_only_with_a_legal_basis_valid_today(
        world: World, department_pool: asyncpg.Pool, database: Database) -> None:
    alpha = world.tenants[0]
    async with department_pool.acquire() as conn:
        camera = await add_camera(conn, world, alpha, "square", "rtsp://127.0.0.1:1/sub")
    async with database.for_tenants([alpha]) as conn:
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
    async with database.for_tenants([alpha]) as conn:
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
        world: World, department_pool: asyncpg.Pool, database: Database) -> None:
    alpha = world.tenants[0]
    async with department_pool.acquire() as conn:
        camera = await add_camera(conn, world, alpha, "direct", "rtsp://127.0.0.1:1/sub")
    async with database.for_tenants([alpha]) as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO detection_rules (id, tenant_id, camera_id, rule_type) "
                               "VALUES ($1, $2, $3, 'face_recognition')", uuid.uuid4(), alpha, camera)


async def test_worker_switches_off_rules_whose_basis_lapsed_and_loads_runnable_configs(
        world: World, department_pool: asyncpg.Pool, database: Database, settings: Settings) -> None:
    alpha, beta = world.tenants
    secrets = SecretBox(settings.data_key.get_secret_value())
    async with department_pool.acquire() as conn:
        camera = await add_camera(conn, world, alpha, "expiring", "rtsp://127.0.0.1:1/sub", secrets=secrets,
                                  username="admin", password="p@ss:word")
        other = await add_camera(conn, world, beta, "beta-cam", "rtsp://127.0.0.1:2/sub")
        await authorise(conn, world, camera, "forbidden_zone", TODAY - timedelta(days=30), TODAY + timedelta(days=1))
    async with database.for_tenants([beta]) as conn:
        await service.set_detection_plan(conn, beta, "premium")
        with pytest.raises(InvalidRule):
            await service.set_detection_plan(conn, beta, "platinum")
    async with database.for_tenants([alpha]) as conn:
        zone = await service.create_zone(conn, camera, ZoneInput(name="z", points=SQUARE))
        rule = await service.create_rule(conn, camera, RuleInput(rule_type="loitering", zone_id=zone.id),
                                         today=TODAY, model_labels=LABELS)
        tamper = await service.create_rule(conn, camera, RuleInput(rule_type="camera_tamper"), today=TODAY,
                                           model_labels=LABELS)
    weights = {"essential": 1.0, "premium": 4.0}
    async with department_pool.acquire() as conn, conn.transaction():
        assert await service.switch_off_unauthorised_rules(conn, TODAY) == []
        configs = {c.camera_id: c for c in await service.load_camera_configs(
            conn, today=TODAY, secrets=secrets, plan_weights=weights) if c.camera_id in (camera, other)}
    assert (configs[camera].username, configs[camera].password) == ("admin", "p@ss:word")
    assert {r.id for r in configs[camera].rules} == {rule.id, tamper.id}
    assert configs[camera].zones[0].points[0] == (0.1, 0.1)
    assert (configs[camera].weight, configs[other].weight) == (1.0, 4.0)
    later = TODAY + timedelta(days=2)
    async with department_pool.acquire() as conn, conn.transaction():
        assert await service.switch_off_unauthorised_rules(conn, later) == [rule.id]
        configs = {c.camera_id: c for c in await service.load_camera_configs(
            conn, today=later, secrets=secrets, plan_weights=weights)}
    assert {r.id for r in configs[camera].rules} == {tamper.id}
    async with database.for_tenants([alpha]) as conn:
        stored = {r.id: r for r in await service.list_rules(conn, camera)}
    assert not stored[rule.id].enabled
    assert "legal basis" in (stored[rule.id].disabled_reason or "")


async def test_usage_is_metered_per_tenant_and_day(world: World, department_pool: asyncpg.Pool,
                                                    database: Database) -> None:
    alpha, beta = world.tenants
    meter = UsageMeter()
    meter.record_batch([alpha, alpha, beta], 0.3)
    stop = asyncio.Event()
    stop.set()  # one flush, then return
    await worker.flush_usage(database, meter, timezone="Europe/Paris", every_s=0.01, stop=stop)
    async with database.for_tenants([alpha]) as conn:
        days = await service.detector_usage(conn, alpha, TODAY - timedelta(days=1), TODAY + timedelta(days=1))
        foreign = await service.detector_usage(conn, beta, TODAY - timedelta(days=1), TODAY + timedelta(days=1))
    assert [(round(d.detector_seconds, 6), d.frames) for d in days] == [(0.2, 2)]
    assert foreign == []  # row-level security: beta's metering is not alpha's to read


def _principal(world: World, role: Role, tenant: uuid.UUID) -> Principal:
    return Principal(user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=role, home_tenant_id=tenant,
                     department_id=world.department_id, scope=Scope(frozenset({tenant}), world.department_id))


async def test_the_detection_service_checks_roles_journals_and_needs_the_installed_model(
        world: World, department_pool: asyncpg.Pool, database: Database, tmp_path: Path) -> None:
    alpha = world.tenants[0]
    async with department_pool.acquire() as conn:
        camera = await add_camera(conn, world, alpha, "journaled", "rtsp://127.0.0.1:1/sub")
    labels = tmp_path / "labels.txt"
    detection = service.DetectionService(database, service.ModelLabels(labels))
    operator, auditor = _principal(world, Role.OPERATOR, alpha), _principal(world, Role.AUDITOR, alpha)
    with pytest.raises(PermissionDenied):
        await detection.create_zone(auditor, camera, ZoneInput(name="parvis", points=SQUARE))
    zone = await detection.create_zone(operator, camera, ZoneInput(name="parvis", points=SQUARE))
    stranger = _principal(world, Role.OPERATOR, world.tenants[1])
    with pytest.raises(NotFound):  # out of scope answers 404 before the model is looked for
        await detection.create_rule(stranger, camera, RuleInput(rule_type="camera_tamper"))
    with pytest.raises(Unavailable, match="not installed"):
        await detection.create_rule(operator, camera, RuleInput(rule_type="camera_tamper"))
    labels.write_text("Person\nCar\nBox\n")  # the model is installed: the next request reads its labels
    rule = await detection.create_rule(operator, camera, RuleInput(rule_type="camera_tamper"))
    assert [r.id for r in await detection.list_rules(auditor, camera)] == [rule.id]
    await detection.delete_zone(operator, zone.id)
    async with database.for_tenants([alpha]) as conn:
        rows = await conn.fetch("SELECT action, target_type, target_id, actor_role, actor_user_id, details "
                                "FROM access_journal WHERE camera_id = $1 ORDER BY position", camera)
    assert [(r["action"], r["target_type"], r["target_id"], r["actor_role"], r["actor_user_id"]) for r in rows] == [
        ("detection.zone.create", "zone", str(zone.id), "operator", operator.user_id),
        ("detection.rule.create", "rule", str(rule.id), "operator", operator.user_id),
        ("detection.zone.delete", "zone", str(zone.id), "operator", operator.user_id),
    ]
    assert [json.loads(r["details"]) if isinstance(r["details"], str) else r["details"] for r in rows] == [
        {"name": "parvis", "kind": "zone"}, {"rule_type": "camera_tamper", "enabled": True}, {"name": "parvis"}]


async def test_a_camera_without_a_current_authorisation_runs_no_analytics(
        world: World, department_pool: asyncpg.Pool, database: Database, settings: Settings) -> None:
    """The worker's configuration sync, as `python -m inference` runs it, hands the backend only cameras with a
    prefectoral authorisation current today: none, expired, or recorded by a tenant admin means no detection."""
    alpha, _ = world.tenants
    secrets = SecretBox(settings.data_key.get_secret_value())
    async with department_pool.acquire() as conn:
        authorised = await add_camera(conn, world, alpha, "authorised", "rtsp://127.0.0.1:1/sub")
        expired = await add_camera(conn, world, alpha, "expired", "rtsp://127.0.0.1:2/sub")
        await conn.execute("UPDATE camera_authorisations SET valid_from = $2, valid_until = $3 WHERE camera_id = $1",
                           expired, TODAY - timedelta(days=5 * 365), TODAY - timedelta(days=1))
        tenant_recorded = await add_camera(conn, world, alpha, "tenant-recorded", "rtsp://127.0.0.1:3/sub")
        await conn.execute("UPDATE camera_authorisations SET department_recorded = false WHERE camera_id = $1",
                           tenant_recorded)
        never = uuid.uuid4()
        await conn.execute(
            "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, insee_code, status) "
            "SELECT $1, $2, id, 'never', 'rtsp://127.0.0.1:4/sub', '95127', 'online' FROM sites "
            "WHERE tenant_id = $2 LIMIT 1", never, alpha)

    class Applied:
        def __init__(self) -> None:
            self.configs: list[list[uuid.UUID]] = []

        def apply(self, configs: Sequence[CameraConfig]) -> None:
            self.configs.append([c.camera_id for c in configs])
            stop.set()

    stop, backend = asyncio.Event(), Applied()
    await worker.keep_cameras_in_sync(database, backend, secrets=secrets, plan_weights={}, timezone="Europe/Paris",
                                      refresh_s=60, stop=stop)
    seen = set(backend.configs[0])
    assert authorised in seen
    assert not seen & {expired, tenant_recorded, never}

    # The day the authorisation ends is still covered; the day after, analytics stop.
    async with department_pool.acquire() as conn:
        until = await conn.fetchval("SELECT valid_until FROM camera_authorisations WHERE camera_id = $1", authorised)
        for day, expected in ((until, True), (until + timedelta(days=1), False)):
            configs = await service.load_camera_configs(conn, today=day, secrets=secrets, plan_weights={})
            assert (authorised in {c.camera_id for c in configs}) is expected
