"""Bad input gets a 4xx problem+json naming the field; never a 500, never a partial write."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from tests.api.conftest import Actor, assert_problem

pytestmark = pytest.mark.integration




async def _site(client: AsyncTestClient[Litestar], mayor: Actor, seeded: SeedResult) -> str:
    response = await client.post(
        f"/tenants/{seeded.tenants['cergy']}/sites",
        headers=mayor.headers,
        json={"name": f"site {uuid.uuid4().hex[:6]}", "kind": "other", "insee_code": "95127"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("http://cam.example/stream", "main_stream_url"),
        ("rtsp://", "main_stream_url"),
        ("rtsp://user:secret@10.0.0.5/stream", "main_stream_url"),
        ("rtsp://10.0.0.5:99999/stream", "main_stream_url"),
        ("not a url at all", "main_stream_url"),
    ],
)
async def test_invalid_rtsp_url(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, url: str, field: str
) -> None:
    mayor = actors["maire@cergy.demo"]
    site_id = await _site(client, mayor, seeded)
    response = await client.post(
        "/cameras", headers=mayor.headers, json={"site_id": site_id, "name": "x", "main_stream_url": url}
    )
    assert_problem(response, 422, field)
    listed = await client.get(f"/cameras?site_id={site_id}", headers=mayor.headers)
    assert listed.json()["items"] == []  # nothing half-written


async def test_retention_over_thirty_days_cites_the_law(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    response = await client.patch(
        f"/tenants/{seeded.tenants['cergy']}", json={"retention_days": 45}, headers=actors["maire@cergy.demo"].headers
    )
    body = assert_problem(response, 422, "retention_days")
    assert body["reference"] == "CSI L252-5"
    assert "L252-5" in body["detail"]


async def test_authorisation_rules(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    # Authorisations are recorded by the department's admins (issue 11): the same rules hold for them.
    mayor, camera = actors["admin@valdoise.demo"], seeded.cameras["c4"]
    today = date.today()
    valid = {
        "prefectoral_order_number": "2026-PREF-1",
        "purposes": ["crime_prevention"],
        "max_retention_days": 10,
        "valid_from": (today - timedelta(days=10)).isoformat(),
        "valid_until": (today + timedelta(days=300)).isoformat(),
    }
    url = f"/cameras/{camera}/authorisations"
    expired = {**valid, "valid_from": "2018-01-01", "valid_until": "2022-01-01"}
    assert_problem(await client.post(url, json=expired, headers=mayor.headers), 422, "valid_until")
    assert_problem(await client.post(url, json={**valid, "purposes": []}, headers=mayor.headers), 422, "purposes")
    refused = await client.post(url, json={**valid, "purposes": ["marketing"]}, headers=mayor.headers)
    assert_problem(refused, 422, "purposes")
    over = assert_problem(
        await client.post(url, json={**valid, "max_retention_days": 31}, headers=mayor.headers),
        422,
        "max_retention_days",
    )
    assert over["reference"] == "CSI L252-5"
    too_long = {**valid, "valid_until": (today + timedelta(days=6 * 366)).isoformat()}
    assert_problem(await client.post(url, json=too_long, headers=mayor.headers), 422, "valid_until")
    face = {
        **valid,
        "event_types": [
            {
                "event_type": "face_recognition",
                "legal_basis": "none",
                "valid_from": valid["valid_from"],
                "valid_until": valid["valid_until"],
            }
        ],
    }
    body = assert_problem(await client.post(url, json=face, headers=mayor.headers), 422, "event_types[0].event_type")
    assert "EU AI Act" in body["detail"]
    ok = await client.post(
        url,
        json={
            **valid,
            "event_types": [
                {
                    "event_type": "abandoned_object",
                    "legal_basis": "arrêté 2026-14",
                    "valid_from": valid["valid_from"],
                    "valid_until": valid["valid_until"],
                }
            ],
        },
        headers=mayor.headers,
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["event_types"][0]["event_type"] == "abandoned_object"


async def test_unknown_insee_code(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    mayor = actors["maire@cergy.demo"]
    url = f"/tenants/{seeded.tenants['cergy']}/sites"
    assert_problem(
        await client.post(url, json={"name": "a", "kind": "other", "insee_code": "99999"}, headers=mayor.headers),
        422,
        "insee_code",
    )
    assert_problem(
        await client.post(url, json={"name": "a", "kind": "other", "insee_code": "9512"}, headers=mayor.headers),
        400,
        "insee_code",
    )


async def test_duplicate_camera_name(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    mayor = actors["maire@cergy.demo"]
    site_id = await _site(client, mayor, seeded)
    camera = {"site_id": site_id, "name": "Parvis nord", "main_stream_url": "rtsp://10.0.0.9/s"}  # exists in Cergy
    assert_problem(await client.post("/cameras", json=camera, headers=mayor.headers), 409, "name")


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {"content-type": "application/json"}, 400),
        (b'{"name": "x"}', {"content-type": "text/plain"}, 415),
        (b"name=x", {"content-type": "application/x-www-form-urlencoded"}, 415),
        (
            b'{"site_id": "not-a-uuid", "name": "x", "main_stream_url": "rtsp://h/x"}',
            {"content-type": "application/json"},
            400,
        ),
        (
            b'{"site_id": "0190a000-0000-7000-8000-000000000000", "name": "x", '
            b'"main_stream_url": "rtsp://h/x", "evil": 1}',
            {"content-type": "application/json"},
            400,
        ),
        (b"[1, 2, 3]", {"content-type": "application/json"}, 400),
    ],
)
async def test_malformed_bodies(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], body: bytes, headers: dict[str, str], status: int
) -> None:
    response = await client.post("/cameras", content=body, headers={**actors["maire@cergy.demo"].headers, **headers})
    assert_problem(response, status)


async def test_oversized_body(client: AsyncTestClient[Litestar], actors: dict[str, Actor]) -> None:
    huge = b'{"name": "' + b"x" * 2_000_000 + b'"}'
    response = await client.post(
        "/cameras", content=huge, headers={**actors["maire@cergy.demo"].headers, "content-type": "application/json"}
    )
    assert_problem(response, 413)


async def test_foreign_id_and_missing_id_answer_the_same(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult
) -> None:
    mayor = actors["maire@cergy.demo"]
    foreign = await client.get(f"/cameras/{seeded.cameras['c6']}", headers=mayor.headers)
    missing = await client.get(f"/cameras/{uuid.uuid4()}", headers=mayor.headers)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"] == missing.json()["detail"]
    assert (await client.get("/cameras/not-a-uuid", headers=mayor.headers)).status_code in (400, 404)


async def test_bad_cursor_and_limit(client: AsyncTestClient[Litestar], actors: dict[str, Actor]) -> None:
    headers = actors["operateur1@valdoise.demo"].headers
    assert_problem(await client.get("/cameras?cursor=@@@", headers=headers), 422, "cursor")
    assert_problem(await client.get("/cameras?limit=100000", headers=headers), 400)


async def test_pagination_walks_every_item_once(client: AsyncTestClient[Litestar], actors: dict[str, Actor]) -> None:
    headers = actors["operateur1@valdoise.demo"].headers
    everything = (await client.get("/cameras?limit=200", headers=headers)).json()["items"]
    seen, cursor = [], None
    while True:
        url = "/cameras?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=headers)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["id"] for c in everything]
    assert len(seen) >= 6


async def test_nul_characters_are_refused_not_crashed_on(client: AsyncTestClient[Litestar]) -> None:
    body = b'{"email": "a\\u0000@b.fr", "password": "x"}'
    response = await client.post("/auth/login", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 400)
    literal = b'{"email": "a\\\\u0000@b.fr", "password": "x"}'  # the six characters \u0000, not a NUL
    response = await client.post("/auth/login", content=literal, headers={"content-type": "application/json"})
    assert response.status_code == 401
    assert_problem(await client.get("/healthz?x=%00"), 400)
