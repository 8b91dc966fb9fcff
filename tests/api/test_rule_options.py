"""The rules editor's catalogue: each analytic's legal gating on a camera as the API would enforce it."""

from __future__ import annotations

import uuid

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from inference.mediapipe import prepare_detector_model
from inference.settings import InferenceSettings
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def detector_model() -> None:
    """The catalogue checks fire and weapon against the installed model's labels (cached under var/models)."""
    prepare_detector_model(InferenceSettings().models_dir)


async def test_options_follow_the_cameras_authorisation(
        client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult) -> None:
    admin = actors["admin@valdoise.demo"]
    college = seeded.cameras["c1"]  # forbidden_zone and abandoned_object granted
    response = await client.get(f"/cameras/{college}/rule-options", headers=admin.headers)
    assert response.status_code == 200, response.text
    options = {o["rule_type"]: o for o in response.json()}
    assert options["intrusion"]["available"] is True
    assert options["intrusion"]["needs"] == "zone"
    assert options["line_crossing"]["needs"] == "line"
    assert options["abandoned_object"]["available"] is True
    assert options["camera_tamper"]["available"] is True  # equipment health needs no legal basis
    wrong_way = options["wrong_way"]
    assert wrong_way["available"] is False
    assert "wrong_way" in wrong_way["reason"]
    assert wrong_way["reference"]
    assert not {"face_recognition", "licence_plate_reading"} & options.keys()


async def test_a_greyed_option_is_what_the_rules_endpoint_refuses(
        client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult) -> None:
    admin = actors["admin@valdoise.demo"]
    parvis = seeded.cameras["c4"]  # no forbidden_zone basis
    options = {o["rule_type"]: o for o in
               (await client.get(f"/cameras/{parvis}/rule-options", headers=admin.headers)).json()}
    assert options["intrusion"]["available"] is False
    zone = await client.post(f"/cameras/{parvis}/zones", headers=admin.headers, json={
        "name": f"Options {uuid.uuid4().hex[:6]}", "points": [[0.1, 0.1], [0.3, 0.1], [0.3, 0.3]]})
    refused = await client.post(f"/cameras/{parvis}/rules", headers=admin.headers, json={
        "rule_type": "intrusion", "zone_id": zone.json()["id"]})
    assert refused.status_code == 422
    assert refused.json()["reference"] == options["intrusion"]["reference"]


async def test_another_communes_camera_and_unknown_ones_are_not_found(
        client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult) -> None:
    mayor = actors["maire@marines.demo"]
    own = await client.get(f"/cameras/{seeded.cameras['c6']}/rule-options", headers=mayor.headers)
    assert own.status_code == 200
    cergy = await client.get(f"/cameras/{seeded.cameras['c1']}/rule-options", headers=mayor.headers)
    assert cergy.status_code == 404
    assert cergy.headers["content-type"].startswith("application/problem+json")
    missing = await client.get(f"/cameras/{uuid.uuid4()}/rule-options", headers=mayor.headers)
    assert missing.status_code == 404
    finance = await client.get(f"/cameras/{seeded.cameras['c1']}/rule-options",
                               headers=actors["finances@valdoise.demo"].headers)
    assert finance.status_code == 403
