"""What the department admin's console pages added to the API: a camera moves between the sites of its own tenant
(its commune follows, journaled; another tenant's site or an unknown one refused on `site_id`; a mayor cannot reach
another commune's camera), and the sites map's tile source (none by default; when set, the console's CSP lets images
come from that origin only)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pydantic import ValidationError

from api.map_settings import MapSettings
from api.routes.console import content_security_policy
from cli.seed import SeedResult
from tests.api.conftest import Actor, assert_problem

pytestmark = pytest.mark.integration

ADMIN, MAYOR_CERGY, MAYOR_MARINES = "admin@valdoise.demo", "maire@cergy.demo", "maire@marines.demo"




async def _sites(client: AsyncTestClient[Litestar], actor: Actor) -> list[dict[str, Any]]:
    response = await client.get("/sites?limit=200", headers=actor.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_camera_moves_between_the_sites_of_its_tenant_only(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    admin, mayor = actors[ADMIN], actors[MAYOR_CERGY]
    sites = await _sites(client, admin)
    cergy = [s for s in sites if s["tenant_id"] == str(seeded.tenants["cergy"])]
    marines = next(s for s in sites if s["tenant_id"] == str(seeded.tenants["marines"]))
    assert len(cergy) >= 2
    created = await client.post("/cameras", headers=mayor.headers, json={
        "site_id": cergy[0]["id"], "name": f"move {uuid.uuid4().hex[:8]}", "main_stream_url": "rtsp://10.0.0.9/m",
        "credentials": {"username": "u", "password": "never-shown"}})
    assert created.status_code == 201, created.text
    camera = created.json()
    assert "never-shown" not in created.text
    assert "credentials" not in camera

    moved = await client.patch(f"/cameras/{camera['id']}", headers=mayor.headers, json={"site_id": cergy[1]["id"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["site_id"] == cergy[1]["id"]
    assert moved.json()["insee_code"] == cergy[1]["insee_code"]
    assert moved.json()["has_credentials"] is True  # same stream, same credentials
    journal = (await client.get(f"/journal?camera_id={camera['id']}", headers=admin.headers)).json()["items"]
    assert any(line["action"] == "camera.update" and json.loads(line["details"])["changed"] == ["site_id"]
               for line in journal)

    # Another tenant's site: refused on the field, even for the department (the camera's records are its tenant's).
    for elsewhere in (marines["id"], str(uuid.uuid4())):
        moved = await client.patch(f"/cameras/{camera['id']}", headers=admin.headers, json={"site_id": elsewhere})
        assert_problem(moved, 422, "site_id")
    # Another commune's mayor neither sees the camera nor moves it.
    assert_problem(await client.patch(f"/cameras/{camera['id']}", headers=actors[MAYOR_MARINES].headers,
                                      json={"site_id": marines["id"]}), 404)
    after = await client.get(f"/cameras/{camera['id']}", headers=admin.headers)
    assert after.json()["site_id"] == cergy[1]["id"]


async def test_the_map_has_no_tile_source_by_default(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIGIE_MAP_TILE_URL", raising=False)
    assert (await client.get("/map/config")).status_code == 401
    response = await client.get("/map/config", headers=actors[MAYOR_MARINES].headers)
    assert response.status_code == 200, response.text
    assert response.json()["tile_url"] is None


async def test_a_configured_tile_source_is_served_and_allowed_by_the_csp_alone(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    template = "https://tiles.example.fr/osm/{z}/{x}/{y}.png"
    monkeypatch.setenv("VIGIE_MAP_TILE_URL", template)
    monkeypatch.setenv("VIGIE_MAP_ATTRIBUTION", "© OpenStreetMap")
    body = (await client.get("/map/config", headers=actors[ADMIN].headers)).json()
    assert body["tile_url"] == template
    assert body["attribution"] == "© OpenStreetMap"

    settings = MapSettings()
    assert settings.tile_origin == "https://tiles.example.fr"
    directives = dict(d.split(" ", 1) for d in content_security_policy(
        "ws://127.0.0.1:8010", "", settings.tile_origin).split("; "))
    assert directives["img-src"] == "'self' blob: data: https://tiles.example.fr"
    assert all("tiles.example.fr" not in value for name, value in directives.items() if name != "img-src")
    without = MapSettings(tile_url="").tile_origin
    assert "tiles.example.fr" not in content_security_policy("ws://127.0.0.1:8010", "", without)


@pytest.mark.parametrize("bad", ["javascript:alert(1)//{z}{x}{y}", "https://tiles.example.fr/tile.png",
                                 "ftp://tiles.example.fr/{z}/{x}/{y}.png"])
def test_a_tile_source_must_be_an_http_template(bad: str) -> None:
    with pytest.raises(ValidationError):
        MapSettings(tile_url=bad)
