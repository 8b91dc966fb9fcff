"""Detection settings through the API: zones and rules per camera, gated by the camera's legal basis, journaled."""

from __future__ import annotations

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
    """The API checks rule classes against the installed model's labels (cached under var/models)."""
    prepare_detector_model(InferenceSettings().models_dir)


async def test_operator_draws_a_zone_and_enables_intrusion_where_the_law_allows(
        client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult) -> None:
    operator = actors["operateur2@valdoise.demo"]
    college = seeded.cameras["c1"]  # forbidden_zone has a legal basis on this camera
    zone = await client.post(f"/cameras/{college}/zones", headers=operator.headers, json={
        "name": "Grille nord", "points": [[0.6, 0.0], [1.0, 0.0], [1.0, 1.0], [0.6, 1.0]]})
    assert zone.status_code == 201, zone.text
    rule = await client.post(f"/cameras/{college}/rules", headers=operator.headers, json={
        "rule_type": "intrusion", "zone_id": zone.json()["id"], "params": {"classes": ["Person"]}})
    assert rule.status_code == 201, rule.text
    listed = (await client.get(f"/cameras/{college}/rules", headers=operator.headers)).json()
    assert [r["id"] for r in listed] == [rule.json()["id"]]
    lines = (await client.get(f"/journal?camera_id={college}", headers=actors["admin@valdoise.demo"].headers))
    actions = {line["action"] for line in lines.json()["items"]}
    assert {"detection.zone.create", "detection.rule.create"} <= actions


async def test_rules_without_legal_basis_or_biometric_are_refused(
        client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult) -> None:
    mayor = actors["maire@cergy.demo"]
    parvis = seeded.cameras["c4"]  # no forbidden_zone basis on this one
    zone = await client.post(f"/cameras/{parvis}/zones", headers=mayor.headers, json={
        "name": "Fontaine", "points": [[0.1, 0.1], [0.3, 0.1], [0.3, 0.3]]})
    assert zone.status_code == 201, zone.text
    no_basis = await client.post(f"/cameras/{parvis}/rules", headers=mayor.headers, json={
        "rule_type": "intrusion", "zone_id": zone.json()["id"]})
    assert no_basis.status_code == 422
    assert no_basis.json().get("reference")
    biometric = await client.post(f"/cameras/{parvis}/rules", headers=mayor.headers,
                                  json={"rule_type": "face_recognition"})
    assert biometric.status_code == 422
    bowtie = await client.post(f"/cameras/{parvis}/zones", headers=mayor.headers, json={
        "name": "Noeud", "points": [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]})
    assert bowtie.status_code == 422
    assert bowtie.json()["field"]


async def test_officers_cannot_change_detection(client: AsyncTestClient[Litestar], actors: dict[str, Actor],
                                                seeded: SeedResult) -> None:
    response = await client.post(f"/cameras/{seeded.cameras['c6']}/zones", headers=actors["pm@marines.demo"].headers,
                                 json={"name": "x", "points": [[0.1, 0.1], [0.3, 0.1], [0.3, 0.3]]})
    assert response.status_code == 403
