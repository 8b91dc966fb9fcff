"""Camera networks through the API: a department admin declares them (journaled), whoever manages cameras reads
them, and a camera's stream must name an address inside one (the cloud metadata service is refused); pointing a
camera at another host drops its stored credentials unless new ones come with the change."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.crypto import CAMERA_CREDENTIALS, SecretBox
from core.settings import Settings
from tests.api.conftest import Actor, assert_problem

pytestmark = pytest.mark.integration

ADMIN, MAYOR, OFFICER = "admin@valdoise.demo", "maire@cergy.demo", "policier@cergy.demo"




@pytest.fixture
async def cergy_site(department_pool: asyncpg.Pool, seeded: SeedResult) -> uuid.UUID:
    site = await department_pool.fetchval("SELECT id FROM sites WHERE tenant_id = $1 LIMIT 1", seeded.tenants["cergy"])
    assert site is not None
    return uuid.UUID(str(site))


@pytest.fixture
async def demo_networks(client: AsyncTestClient[Litestar], actors: dict[str, Actor]) -> AsyncIterator[list[Any]]:
    """The demo's networks, put back after a test that changes them (other suites add cameras in 10.0.0.0/8)."""
    admin = actors[ADMIN]
    before = (await client.get("/camera-networks", headers=admin.headers)).json()
    yield before
    restored = await client.put("/camera-networks", headers=admin.headers, json={
        "networks": [{"network": n["network"], "label": n["label"]} for n in before]})
    assert restored.status_code == 200, restored.text


async def test_a_camera_must_name_an_address_of_the_department_networks(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], cergy_site: uuid.UUID,
) -> None:
    mayor = actors[MAYOR]

    async def create(url: str, field: str = "main_stream_url") -> Any:
        body = {"site_id": str(cergy_site), "name": f"net {uuid.uuid4().hex[:8]}", "main_stream_url": "rtsp://10.0.0.7/m"}
        body[field] = url
        return await client.post("/cameras", headers=mayor.headers, json=body)

    assert_problem(await create("rtsp://169.254.169.254:80/x"), 422, "main_stream_url")
    assert_problem(await create("rtsp://169.254.169.254:80/x", "sub_stream_url"), 422, "sub_stream_url")
    metadata_service = await create("rtsp://metadata.google.internal/x")
    assert "IP address" in assert_problem(metadata_service, 422, "main_stream_url")["detail"]
    assert "camera networks" in assert_problem(await create("rtsp://192.168.5.5/x"), 422, "main_stream_url")["detail"]
    created = await create("rtsp://10.0.0.7:554/main")
    assert created.status_code == 201, created.text
    # A change is checked the same way.
    moved = await client.patch(f"/cameras/{created.json()['id']}", headers=mayor.headers,
                               json={"main_stream_url": "rtsp://169.254.169.254/latest/meta-data"})
    assert_problem(moved, 422, "main_stream_url")


async def test_department_admins_declare_the_networks_and_it_is_journaled(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], cergy_site: uuid.UUID, demo_networks: list[Any],
) -> None:
    admin, mayor, officer = actors[ADMIN], actors[MAYOR], actors[OFFICER]
    assert {n["network"] for n in demo_networks} >= {"127.0.0.0/8", "10.0.0.0/8"}
    assert (await client.get("/camera-networks", headers=mayor.headers)).json() == demo_networks  # reads them
    assert (await client.get("/camera-networks", headers=officer.headers)).status_code == 403
    wanted = {"networks": [*({"network": n["network"], "label": n["label"]} for n in demo_networks),
                           {"network": "192.168.0.0/16", "label": "Réseau vidéo de Cergy"}]}
    assert (await client.put("/camera-networks", headers=mayor.headers, json=wanted)).status_code == 403
    assert_problem(await client.put("/camera-networks", headers=admin.headers,
                                    json={"networks": [{"network": "169.254.0.0/16", "label": "x"}]}), 422,
                   "networks[0].network")
    assert_problem(await client.put("/camera-networks", headers=admin.headers,
                                    json={"networks": [{"network": "0.0.0.0/0", "label": "everything"}]}), 422,
                   "networks[0].network")
    replaced = await client.put("/camera-networks", headers=admin.headers, json=wanted)
    assert replaced.status_code == 200, replaced.text
    assert "192.168.0.0/16" in {n["network"] for n in replaced.json()}
    camera = await client.post("/cameras", headers=mayor.headers, json={
        "site_id": str(cergy_site), "name": f"net {uuid.uuid4().hex[:8]}", "main_stream_url": "rtsp://192.168.5.5/m"})
    assert camera.status_code == 201, camera.text
    journal = (await client.get("/journal", headers=admin.headers)).json()["items"]
    line = next(line for line in journal if line["action"] == "camera_networks.replace")
    assert json.loads(line["details"])["added"] == ["192.168.0.0/16"]


async def test_pointing_a_camera_at_another_host_drops_its_credentials(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], cergy_site: uuid.UUID, api_settings: Settings,
    department_pool: asyncpg.Pool,
) -> None:
    mayor = actors[MAYOR]
    created = await client.post("/cameras", headers=mayor.headers, json={
        "site_id": str(cergy_site), "name": f"creds {uuid.uuid4().hex[:8]}", "main_stream_url": "rtsp://10.0.0.5/main",
        "sub_stream_url": "rtsp://10.0.0.5/sub", "credentials": {"username": "admin", "password": "hunter2"}})
    assert created.status_code == 201, created.text
    camera = created.json()["id"]
    assert created.json()["has_credentials"] is True

    async def patch(body: dict[str, Any]) -> dict[str, Any]:
        response = await client.patch(f"/cameras/{camera}", headers=mayor.headers, json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    # Another port of the same camera: the credentials stay.
    assert (await patch({"main_stream_url": "rtsp://10.0.0.5:8554/main"}))["has_credentials"] is True
    # Another host, without new credentials: the stored ones are dropped (they would be sent to that host).
    assert (await patch({"sub_stream_url": "rtsp://10.0.0.6/sub"}))["has_credentials"] is False
    # Another host with new credentials: they are kept, sealed for this camera's row.
    moved = await patch({"main_stream_url": "rtsp://10.0.0.8/main", "sub_stream_url": None,
                         "credentials": {"username": "viewer", "password": "n3w"}})
    assert moved["has_credentials"] is True
    sealed = await department_pool.fetchval("SELECT credentials_sealed FROM cameras WHERE id = $1", uuid.UUID(camera))
    box = SecretBox(api_settings.data_key.get_secret_value())
    assert msgspec.json.decode(box.open(sealed, column=CAMERA_CREDENTIALS, row_id=camera)) == {
        "username": "viewer", "password": "n3w"}
    journal = (await client.get(f"/journal?camera_id={camera}", headers=mayor.headers)).json()["items"]
    assert any(line["action"] == "camera.update" and json.loads(line["details"]).get("credentials_cleared")
               for line in journal)
