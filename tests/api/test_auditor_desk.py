"""The auditor's desk through the API: the journal searched by camera, person, motive and period, the chains'
verification (a tampered line reported at its position), the registers and their CSV, and who may not read them."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.crypto import SecretBox
from core.db import Database
from core.migrate import with_database
from core.objectstore_settings import ObjectStoreSettings, open_object_store
from core.settings import Settings
from journal.anchors import JournalAnchorer, anchor_space
from journal.keys import KeyPurpose, provision_key
from journal.service import JournalService
from tests.api.conftest import Actor
from tests.api.test_journal_anchors import _rewrite

pytestmark = pytest.mark.integration

AUDITOR, ADMIN = "auditeur@valdoise.demo", "admin@valdoise.demo"
OTHERS = ("operateur1@valdoise.demo", "superviseur@valdoise.demo", "maire@cergy.demo", "finances@valdoise.demo")
DESK = ("/journal/search", "/journal/search/csv", "/journal/verification", "/registers/destructions",
        "/registers/requisitions", "/registers/exports", "/registers/transmissions", "/registers/destructions/csv",
        "/registers/requisitions/csv", "/registers/exports/csv", "/registers/transmissions/csv")


def _rows(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


async def _downloads(pool: asyncpg.Pool, actor: Actor, action: str) -> list[dict[str, object]]:
    """The journal lines of an actor's CSV downloads, oldest first, their details decoded."""
    async with pool.acquire() as conn:
        lines = await conn.fetch(
            "SELECT target_id, details FROM access_journal WHERE action = $2 "
            "AND actor_user_id = (SELECT id FROM users WHERE email = $1) ORDER BY occurred_at, position",
            actor.email, action)
    return [{"target_id": line["target_id"], "details": json.loads(line["details"])} for line in lines]


async def test_the_journal_is_searched_by_camera_person_motive_and_period(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, database: Database
) -> None:
    auditor, admin = actors[AUDITOR], actors[ADMIN]
    camera = seeded.cameras["c4"]
    patched = await client.patch(f"/cameras/{camera}", json={"sub_stream_url": "rtsp://10.1.2.4/sub"},
                                 headers=admin.headers)
    assert patched.status_code == 200, patched.text
    motive = f"réquisition {uuid.uuid4().hex[:8]} 50%_x"
    async with database.for_tenants([seeded.tenants["cergy"]]) as conn:
        recorded = await JournalService().record(
            conn, tenant_id=seeded.tenants["cergy"], actor=None, actor_role="operator", action="media.playback",
            target_type="camera", target_id=seeded.cameras["c5"], camera_id=seeded.cameras["c5"], motive=motive)

    by_camera = (await client.get("/journal/search", params={"camera_id": str(camera)},
                                  headers=auditor.headers)).json()["items"]
    assert by_camera
    assert {line["camera_id"] for line in by_camera} == {str(camera)}
    update = next(line for line in by_camera if line["action"] == "camera.update")
    assert (update["actor_name"], update["tenant_name"]) == ("Claire Admin", "Cergy")
    assert update["camera_name"]

    # The motive's words are matched literally: % and _ are no wildcards.
    by_motive = (await client.get("/journal/search", params={"motive": motive[11:].upper()},
                                  headers=auditor.headers)).json()["items"]
    assert [line["id"] for line in by_motive] == [str(recorded.id)]
    assert (await client.get("/journal/search", params={"motive": "50%_y"}, headers=auditor.headers)
            ).json()["items"] == []
    # The same search on the journal's own listing (any journal reader).
    listed = (await client.get("/journal", params={"motive": motive}, headers=actors["superviseur@valdoise.demo"]
                               .headers)).json()["items"]
    assert [line["id"] for line in listed] == [str(recorded.id)]

    by_person = (await client.get("/journal/search", params={"person": "claire ADM"},
                                  headers=auditor.headers)).json()["items"]
    assert by_person
    assert {line["actor_name"] for line in by_person} == {"Claire Admin"}
    by_action = (await client.get("/journal/search", params={"action": "media"}, headers=auditor.headers)).json()
    assert by_action["items"]
    assert all(line["action"].startswith("media.") for line in by_action["items"])

    after = recorded.occurred_at + timedelta(seconds=1)
    in_period = (await client.get("/journal/search", params={
        "motive": motive, "since": (after - timedelta(minutes=5)).isoformat(), "until": after.isoformat()},
        headers=auditor.headers)).json()["items"]
    assert len(in_period) == 1
    later = (await client.get("/journal/search", params={"motive": motive, "since": after.isoformat()},
                              headers=auditor.headers)).json()["items"]
    assert later == []

    # Paginated: a page of one, then the next one from its cursor, without repeating a line.
    first = (await client.get("/journal/search", params={"limit": 1}, headers=auditor.headers)).json()
    second = (await client.get("/journal/search", params={"limit": 1, "cursor": first["next_cursor"]},
                               headers=auditor.headers)).json()
    assert first["next_cursor"]
    assert second["items"][0]["id"] != first["items"][0]["id"]


async def test_the_journal_search_downloads_as_csv_with_formulas_neutralised(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, database: Database,
    department_pool: asyncpg.Pool,
) -> None:
    motive = f"=HYPERLINK(\"http://x\",\"{uuid.uuid4().hex[:6]}\"), \"quoted\"; line"
    async with database.for_tenants([seeded.tenants["marines"]]) as conn:
        await JournalService().record(conn, tenant_id=seeded.tenants["marines"], actor=None, actor_role="operator",
                                      action="media.live", target_type="camera", camera_id=seeded.cameras["c6"],
                                      motive=motive)
    response = await client.get("/journal/search/csv", params={"motive": motive[-20:]},
                                headers=actors[AUDITOR].headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    header, *rows = _rows(response.content)
    assert header[0] == "Date"
    assert "Motif" in header
    assert len(rows) == 1
    assert rows[0][header.index("Motif")] == "'" + motive
    assert rows[0][header.index("Commune")] == "Marines"
    # The copy that left is journaled: who took it, what was asked, how many lines, and its SHA-256.
    taken = await _downloads(department_pool, actors[AUDITOR], "journal.csv_download")
    assert taken[-1]["details"] == {"rows": 1, "sha256": hashlib.sha256(response.content).hexdigest(),
                                    "query": {"motive": motive[-20:]}}


@pytest.mark.parametrize("query", [{"since": "2026-12-03T10:00:00Z", "until": "2026-12-03T09:00:00Z"},
                                   {"since": "yesterday"}])
@pytest.mark.parametrize("path", ["/journal/search", "/journal", "/registers/requisitions",
                                  "/registers/destructions/csv"])
async def test_a_bad_period_is_a_400_problem_naming_the_field(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], path: str, query: dict[str, str]
) -> None:
    response = await client.get(path, params=query, headers=actors[AUDITOR].headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == ("until" if "until" in query else "since")


@pytest.mark.parametrize("email", OTHERS)
async def test_other_roles_do_not_reach_the_desk(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], email: str
) -> None:
    for path in DESK:
        response = await client.get(path, headers=actors[email].headers)
        assert response.status_code == 403, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    # A department admin reaches it.
    assert (await client.get("/registers/exports", headers=actors[ADMIN].headers)).status_code == 200


async def test_verification_reports_intact_chains_and_a_tampered_line_at_its_position(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, settings: Settings,
    database: Database,
) -> None:
    cergy = seeded.tenants["cergy"]
    async with database.for_tenants([cergy]) as conn:
        line = await JournalService().record(conn, tenant_id=cergy, actor=None, actor_role="operator",
                                             action="media.playback", target_type="camera", motive="vérification")
    report = (await client.get("/journal/verification", headers=actors[AUDITOR].headers)).json()
    assert report["status"] == "intact", report
    chain = next(c for c in report["chains"] if c["tenant_id"] == str(cergy))
    assert chain["status"] == "intact"
    assert chain["complete"]
    assert chain["verified_from"] == 1
    assert chain["verified_to"] == chain["head_position"] >= line.position
    assert {c["tenant_name"] for c in report["chains"]} >= {"Cergy", "Marines"}

    # Only the newest lines are recomputed at a small depth, and the span says so.
    shallow = (await client.get("/journal/verification", params={"depth": 1},
                                headers=actors[AUDITOR].headers)).json()
    shallow_chain = next(c for c in shallow["chains"] if c["tenant_id"] == str(cergy))
    assert shallow_chain["verified_from"] == shallow_chain["head_position"]
    assert shallow_chain["lines_checked"] == 1
    assert not shallow_chain["complete"]

    admin = await asyncpg.connect(with_database(settings.database.admin_dsn.get_secret_value(),
                                                settings.database.name))
    try:
        # What an owner of the database could do: change a line's motive, its stored hash left as it was.
        await admin.execute("UPDATE access_journal SET motive = 'curiosité' WHERE tenant_id = $1 AND position = $2",
                            cergy, line.position)
        broken = (await client.get("/journal/verification", headers=actors[AUDITOR].headers)).json()
        assert broken["status"] == "broken"
        chain = next(c for c in broken["chains"] if c["tenant_id"] == str(cergy))
        assert chain["status"] == "broken"
        assert chain["first_broken_position"] == line.position
        assert chain["problems"][0] == {"position": line.position, "problem": "content altered after it was written",
                                     "kind": "altered"}
        others = [c for c in broken["chains"] if c["tenant_id"] != str(cergy)]
        assert others
        assert all(c["status"] == "intact" for c in others)
    finally:
        await admin.execute("UPDATE access_journal SET motive = 'vérification' WHERE tenant_id = $1 "
                            "AND position = $2", cergy, line.position)
        await admin.close()
    assert (await client.get("/journal/verification", headers=actors[AUDITOR].headers)).json()["status"] == "intact"


async def test_the_registers_list_their_rows_by_period_and_download_as_csv(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult,
    department_pool: asyncpg.Pool,
) -> None:
    auditor, supervisor = actors[AUDITOR], actors["superviseur@valdoise.demo"]
    cergy, camera = seeded.tenants["cergy"], seeded.cameras["c4"]
    now = datetime.now(UTC)
    procedure = f"PV {uuid.uuid4().hex[:8]}"
    created = await client.post("/requisitions", headers=supervisor.headers, json={
        "procedure_number": procedure, "legal_frame": "flagrance", "opj_name": "@Lt. Morel",
        "opj_service": "Commissariat de Cergy", "camera_ids": [str(camera)],
        "start": (now - timedelta(hours=2)).isoformat(), "end": (now - timedelta(hours=1)).isoformat(),
        "received_at": now.isoformat()})
    assert created.status_code == 201, created.text
    requisition = uuid.UUID(created.json()["id"])
    # The export builder and the retention sweeper write these registers; here they are written as they do.
    export_id, destroyed = uuid.uuid4(), uuid.uuid4()
    sha = hashlib.sha256(export_id.bytes).hexdigest()
    async with department_pool.acquire() as conn:
        supervisor_id = await conn.fetchval("SELECT id FROM users WHERE email = 'superviseur@valdoise.demo'")
        await conn.execute(
            "INSERT INTO evidence_exports (id, tenant_id, requisition_id, exported_by, exported_by_name, object_key, "
            "package_sha256, manifest_sha256, signing_key_id) VALUES ($1, $2, $3, $4, 'Hugo Superviseur', 'k', $5, "
            "$5, 'key-1')", export_id, cergy, requisition, supervisor_id, sha)
        await conn.execute(
            "INSERT INTO destruction_register (id, tenant_id, camera_id, recording_type, recording_id, start_at, "
            "end_at, sha256, size_bytes, object_key, retention_days, due_at, destroyed_at, method) VALUES ($1, $2, "
            "$3, 'segment', $4, $5, $6, $7, 1024, 'seg', 30, $6, $8, 'retention_sweeper')",
            destroyed, cergy, camera, uuid.uuid4(), now - timedelta(days=31), now - timedelta(days=31, seconds=-6),
            sha, now)
    transmitted = await client.post(f"/exports/{export_id}/transmission", headers=supervisor.headers,
                                    json={"transmitted_at": now.isoformat(), "recipient": "Parquet de Pontoise"})
    assert transmitted.status_code == 204, transmitted.text

    period = {"since": (now - timedelta(minutes=5)).isoformat(), "until": (now + timedelta(minutes=5)).isoformat()}
    requisitions = (await client.get("/registers/requisitions", params=period, headers=auditor.headers)).json()
    row = next(r for r in requisitions["items"] if r["id"] == str(requisition))
    assert (row["procedure_number"], row["tenant_name"], row["registered_by_name"]) == (
        procedure, "Cergy", "Hugo Superviseur")
    assert row["camera_names"]
    assert row["released_at"] is None
    exports = (await client.get("/registers/exports", params=period, headers=auditor.headers)).json()["items"]
    export = next(r for r in exports if r["id"] == str(export_id))
    assert (export["procedure_number"], export["recipient"]) == (procedure, "Parquet de Pontoise")
    transmissions = (await client.get("/registers/transmissions", params=period, headers=auditor.headers)).json()
    assert str(export_id) in {r["id"] for r in transmissions["items"]}
    destructions = (await client.get("/registers/destructions", params=period, headers=auditor.headers)).json()
    assert str(destroyed) in {r["id"] for r in destructions["items"]}

    earlier = {"until": (now - timedelta(hours=1)).isoformat()}
    for kind, wanted in (("requisitions", requisition), ("exports", export_id), ("destructions", destroyed)):
        items = (await client.get(f"/registers/{kind}", params=earlier, headers=auditor.headers)).json()["items"]
        assert str(wanted) not in {r["id"] for r in items}

    document = await client.get("/registers/requisitions/csv", params=period, headers=auditor.headers)
    assert document.status_code == 200, document.text
    header, *rows = _rows(document.content)
    assert header[:3] == ["Enregistrée le", "Commune", "Procédure"]
    mine = next(r for r in rows if r[2] == procedure)
    assert mine[header.index("OPJ")] == "'@Lt. Morel"
    for kind in ("destructions", "exports", "transmissions"):
        listed = await client.get(f"/registers/{kind}/csv", params=period, headers=auditor.headers)
        assert listed.status_code == 200, listed.text
        assert len(_rows(listed.content)) >= 2
    taken = await _downloads(department_pool, auditor, "register.csv_download")
    assert [line["target_id"] for line in taken[-4:]] == ["requisitions", "destructions", "exports", "transmissions"]
    assert taken[-4]["details"] == {"rows": len(rows), "sha256": hashlib.sha256(document.content).hexdigest(),
                                    "query": period}



async def test_the_last_anchor_is_shown_and_a_consistent_rewrite_breaks_against_it(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, settings: Settings,
    database: Database, department_pool: asyncpg.Pool,
) -> None:
    cergy = seeded.tenants["cergy"]
    async with database.for_tenants([cergy]) as conn:
        line = await JournalService().record(conn, tenant_id=cergy, actor=None, actor_role="operator",
                                             action="media.playback", target_type="camera", motive="ancrage")
    async with department_pool.acquire() as conn:
        await provision_key(conn, SecretBox(settings.data_key.get_secret_value()),  # type: ignore[arg-type]
                            KeyPurpose.JOURNAL_ANCHOR)
    # The anchoring job of the platform, writing to the store and space the API reads.
    anchorer = JournalAnchorer(db=database, store=open_object_store(ObjectStoreSettings()),
                               secret_box=SecretBox(settings.data_key.get_secret_value()),
                               space=anchor_space(settings.database.name))
    anchor = await anchorer.anchor_once(force=True)
    assert anchor is not None
    report = (await client.get("/journal/verification", headers=actors[AUDITOR].headers)).json()
    assert report["status"] == "intact", report
    last = report["last_anchor"]
    assert (last["anchor_id"], last["store"], last["space"]) == (
        str(anchor.anchor_id), "fs", str(anchor_space(settings.database.name)))
    assert last["object_key"].startswith("journal-anchors/")
    assert len(last["payload_sha256"]) == 64
    chain = next(c for c in report["chains"] if c["tenant_id"] == str(cergy))
    assert chain["anchored_position"] >= line.position
    assert chain["anchor_matches"] is True

    admin = await asyncpg.connect(with_database(settings.database.admin_dsn.get_secret_value(),
                                                settings.database.name))
    try:
        # Rewritten consistently (hashes, links and head recomputed): only the signed anchor tells.
        await _rewrite(admin, cergy, line.position, "curiosité")
        broken = (await client.get("/journal/verification", headers=actors[AUDITOR].headers)).json()
        chain = next(c for c in broken["chains"] if c["tenant_id"] == str(cergy))
        assert chain["status"] == "broken"
        assert chain["anchor_matches"] is False
        assert {p["kind"] for p in chain["problems"]} == {"anchor_mismatch"}
    finally:
        await _rewrite(admin, cergy, line.position, "ancrage")
        await admin.close()
    assert (await client.get("/journal/verification", headers=actors[AUDITOR].headers)).json()["status"] == "intact"
