"""Camera health (issue 15 items 2-4): what the recorder and the detector report combines into one state with its
transitions, the camera's status follows it, a lapsed authorisation reads `unauthorised`, availability per day is a
view billing can read, transitions are published once; an outage past the threshold opens one maintenance ticket,
e-mailed (local SMTP server) to the commune's maintainer and the department, recording-only communes included."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import SeedResult
from core.db import Database
from core.errors import Conflict, NotFound
from core.ids import new_id
from core.ports import free_port
from core.tenancy import Principal, Role, Scope
from dvr.events import CameraHealthChanged
from dvr.workers import health_event
from health.reporter import HealthReporter
from health.service import HealthService
from health.settings import HealthSettings
from health.watch import HealthWatch, PublishedTransition
from tests.api.conftest import Actor

pytestmark = pytest.mark.integration

PARIS = ZoneInfo("Europe/Paris")


async def _camera(pool: asyncpg.Pool, seeded: SeedResult, tenant: str, site_camera: str, name: str) -> uuid.UUID:
    """A camera of `tenant` on the site of a seeded camera, authorised from a year ago for four years."""
    camera = new_id()
    async with pool.acquire() as conn:
        site = await conn.fetchval("SELECT site_id FROM cameras WHERE id = $1", seeded.cameras[site_camera])
        await conn.execute(
            "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, insee_code, status) "
            "SELECT $1, $2, $3, $4, 'rtsp://10.0.0.9/main', insee_code, 'provisioning' FROM sites WHERE id = $3",
            camera, seeded.tenants[tenant], site, f"{name}-{camera.hex[:6]}")
        await conn.execute(
            "INSERT INTO camera_authorisations (id, tenant_id, camera_id, prefectoral_order_number, purposes, "
            "max_retention_days, valid_from, valid_until) VALUES ($1, $2, $3, 'AP-health', '{crime_prevention}', 30, "
            "current_date - 365, current_date + 1400)", new_id(), seeded.tenants[tenant], camera)
    return camera


async def _status(pool: asyncpg.Pool, camera: uuid.UUID) -> str:
    async with pool.acquire() as conn:
        return str(await conn.fetchval("SELECT status FROM cameras WHERE id = $1", camera))


@pytest.fixture
async def cameras_to_retire(department_pool: asyncpg.Pool) -> AsyncIterator[list[uuid.UUID]]:
    made: list[uuid.UUID] = []
    yield made
    async with department_pool.acquire() as conn:
        await conn.execute("UPDATE cameras SET status = 'disabled' WHERE id = ANY ($1::uuid[])", made)


async def test_watchers_reports_combine_into_the_cameras_health_and_status(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, database: Database,
    department_pool: asyncpg.Pool, cameras_to_retire: list[uuid.UUID],
) -> None:
    camera = await _camera(department_pool, seeded, "cergy", "c4", "santé")
    cameras_to_retire.append(camera)
    tenant = seeded.tenants["cergy"]
    recorder, detector = HealthReporter(database, "recorder"), HealthReporter(database, "detector")

    first = await recorder.report(tenant, camera, "online")
    assert first is not None
    assert (first.from_state, first.to_state) == (None, "online")
    assert await _status(department_pool, camera) == "online"
    assert await recorder.report(tenant, camera, "online") is None  # no news, no transition
    tampered = await detector.report(tenant, camera, "tampered", "caméra masquée, floutée ou détournée : blackout")
    assert tampered is not None
    assert tampered.to_state == "tampered"
    assert await _status(department_pool, camera) == "tampered"
    await detector.report(tenant, camera, "online")
    offline = await recorder.report(tenant, camera, "offline", "connection refused")
    assert offline is not None
    assert (offline.from_state, offline.to_state) == ("online", "offline")  # offline outranks the detector's view

    # The authorisation ends: the watch re-evaluates every camera, nobody else has to report.
    async with department_pool.acquire() as conn:
        await conn.execute("UPDATE camera_authorisations SET valid_from = current_date - 2000, "
                           "valid_until = current_date - 1 WHERE camera_id = $1", camera)
    published: list[PublishedTransition] = []

    async def publish(transition: PublishedTransition) -> None:
        published.append(transition)

    watch = HealthWatch(db=database, publish=publish)
    assert await watch.reevaluate() >= 1
    assert await _status(department_pool, camera) == "unauthorised"
    # A report changes nothing while unauthorised.
    assert await recorder.report(tenant, camera, "online") is None

    response = await client.get(f"/cameras/{camera}/health", headers=actors["maire@cergy.demo"].headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "unauthorised"
    assert [h["to_state"] for h in body["history"]] == ["unauthorised", "offline", "online", "tampered", "online"]
    assert {s["source"]: s["state"] for s in body["signals"]} == {"recorder": "online", "detector": "online"}
    today = datetime.now(PARIS).date()
    assert [d["day"] for d in body["availability"]] == [today.isoformat()]
    # Another commune's admin does not learn the camera exists; the CSU reads it.
    other = await client.get(f"/cameras/{camera}/health", headers=actors["maire@marines.demo"].headers)
    assert other.status_code == 404
    assert (await client.get(f"/cameras/{camera}/health",
                             headers=actors["operateur1@valdoise.demo"].headers)).status_code == 200

    # Every stored transition is published once, with an id derived from it (a republish is a duplicate).
    await watch.relay()
    mine = [p for p in published if p.camera_id == camera]
    assert [p.to_state for p in mine] == ["online", "tampered", "online", "offline", "unauthorised"]
    published.clear()
    await watch.relay()
    assert not [p for p in published if p.camera_id == camera]
    event = health_event(mine[-1])
    assert isinstance(event, CameraHealthChanged)
    assert event.event_id == health_event(mine[-1]).event_id
    assert (event.tenant_id, event.to_state) == (tenant, "unauthorised")


async def test_availability_per_camera_and_day_is_a_view_billing_reads(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, database: Database,
    department_pool: asyncpg.Pool, cameras_to_retire: list[uuid.UUID],
) -> None:
    camera = await _camera(department_pool, seeded, "cergy", "c4", "dispo")
    cameras_to_retire.append(camera)
    tenant = seeded.tenants["cergy"]
    day = datetime.now(PARIS).date() - timedelta(days=2)

    def at(hour: int) -> datetime:
        return datetime.combine(day, datetime.min.time(), PARIS) + timedelta(hours=hour)

    async with department_pool.acquire() as conn:
        # Online from midnight, offline 06:00 to 12:00 (six hours), frozen 20:00 to 22:00, online until the next day.
        for hour, state in ((0, "online"), (6, "offline"), (12, "online"), (20, "frozen"), (22, "online"),
                            (24, "online")):
            await conn.execute("INSERT INTO camera_health_transitions (tenant_id, camera_id, to_state, at, "
                               "published_at) VALUES ($1, $2, $3, $4, now())", tenant, camera, state, at(hour))
    async with database.for_tenants([tenant], readonly=True) as conn:
        row = await conn.fetchrow("SELECT observed_s, available_s, availability FROM camera_availability_v "
                                  "WHERE camera_id = $1 AND day = $2", camera, day)
    assert row is not None
    assert row["observed_s"] == pytest.approx(24 * 3600)
    assert row["available_s"] == pytest.approx(16 * 3600)
    assert row["availability"] == pytest.approx(16 / 24)
    async with database.for_tenants([seeded.tenants["marines"]], readonly=True) as conn:
        assert await conn.fetchval("SELECT count(*) FROM camera_availability_v WHERE camera_id = $1", camera) == 0
    async with database.for_tenants([tenant], readonly=True) as conn:
        # Billing's SLA reads the same history as unavailability: offline and frozen spans (not degraded ones).
        outages = await conn.fetch("SELECT start_at, end_at, source FROM billing_camera_outages_v "
                                   "WHERE camera_id = $1 ORDER BY start_at", camera)
    assert [(o["start_at"], o["end_at"], o["source"]) for o in outages] == [
        (at(6), at(12), "camera_health"), (at(20), at(22), "camera_health")]
    response = await client.get(f"/cameras/{camera}/health?days=3", headers=actors["admin@valdoise.demo"].headers)
    days = {d["day"]: d for d in response.json()["availability"]}
    assert days[day.isoformat()]["availability"] == pytest.approx(16 / 24)
    assert days[(day + timedelta(days=1)).isoformat()]["availability"] == pytest.approx(1.0)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


async def test_an_outage_past_the_threshold_opens_one_ticket_mailed_to_the_maintainer_and_the_department(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, database: Database,
    department_pool: asyncpg.Pool, cameras_to_retire: list[uuid.UUID], smtp_server: tuple[Inbox, int],
) -> None:
    inbox, port = smtp_server
    # Magny-en-Vexin records only (no live supervision): nobody watches its pictures, the ticket is its alarm.
    magny = seeded.tenants["magny"]
    camera = await _camera(department_pool, seeded, "magny", "c8", "tribune-nord")
    cameras_to_retire.append(camera)
    async with department_pool.acquire() as conn:
        assert not await conn.fetchval("SELECT live_supervision FROM tenants WHERE id = $1", magny)
        await conn.execute("UPDATE tenants SET maintainer_email = 'maintenance@magny.example' WHERE id = $1", magny)
        await conn.execute("UPDATE departments SET maintenance_email = 'csu-maintenance@valdoise.example' "
                           "WHERE id = $1", seeded.department_id)
    recorder = HealthReporter(database, "recorder")
    await recorder.report(magny, camera, "online")
    await recorder.report(magny, camera, "offline", "connection refused")

    async def publish(_transition: PublishedTransition) -> None:
        return None

    settings = HealthSettings(ticket_after_s=900, smtp_host="127.0.0.1", smtp_port=port)
    watch = HealthWatch(db=database, publish=publish, settings=settings)
    assert camera not in await _ticketed(watch)  # offline for seconds only: under the threshold
    async with department_pool.acquire() as conn:
        await conn.execute("UPDATE camera_health SET since = now() - interval '20 minutes' WHERE camera_id = $1",
                           camera)
    opened = await _ticketed(watch)
    assert camera in opened
    assert camera not in await _ticketed(watch)  # one ticket until it is resolved

    mails = [(to, m) for to, m in inbox.messages if "tribune-nord" in str(m["Subject"])]
    assert len(mails) == 1
    to, mail = mails[0]
    assert sorted(to) == ["csu-maintenance@valdoise.example", "maintenance@magny.example"]
    assert "hors ligne" in str(mail["Subject"])
    assert "Magny-en-Vexin" in str(mail["Subject"])

    # The commune's admin handles it in the console: acknowledge, then resolve once the camera is back.
    admin = Principal(user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=Role.TENANT_ADMIN, home_tenant_id=magny,
                      department_id=seeded.department_id, scope=Scope(frozenset({magny}), None),
                      display_name="Mairie de Magny")
    service = HealthService(database)
    [ticket] = await service.tickets(admin, camera_id=camera)
    assert (ticket.state, ticket.health_state, ticket.time_to_repair_s) == ("open", "offline", None)
    assert ticket.notified_at is not None
    assert sorted(ticket.notified_to) == ["csu-maintenance@valdoise.example", "maintenance@magny.example"]
    acknowledged = await service.acknowledge(admin, ticket.id)
    assert acknowledged.state == "acknowledged"
    with pytest.raises(Conflict):
        await service.acknowledge(admin, ticket.id)
    await recorder.report(magny, camera, "online")
    await _ticketed(watch)  # the watch notes when the camera came back
    resolved = await service.resolve(admin, ticket.id, "Alimentation PoE remplacée")
    assert resolved.state == "resolved"
    assert resolved.restored_at is not None
    assert resolved.time_to_repair_s is not None
    assert 20 * 60 - 5 <= resolved.time_to_repair_s < 30 * 60
    # Another commune's admin sees no such ticket; the API lists it for whoever's scope holds Magny.
    cergy = Principal(user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=Role.TENANT_ADMIN,
                      home_tenant_id=seeded.tenants["cergy"], department_id=seeded.department_id,
                      scope=Scope(frozenset({seeded.tenants["cergy"]}), None))
    with pytest.raises(NotFound):
        await service.ticket(cergy, ticket.id)
    response = await client.get(f"/maintenance-tickets/{ticket.id}", headers=actors["maire@cergy.demo"].headers)
    assert response.status_code == 404
    bad = await client.post(f"/maintenance-tickets/{ticket.id}/resolve", json={"note": ""},
                            headers=actors["maire@cergy.demo"].headers)
    assert bad.status_code == 400


async def _ticketed(watch: HealthWatch) -> list[uuid.UUID]:
    ids = await watch.open_tickets()
    async with watch.db.cross_tenant("camera health watch") as conn:
        rows = await conn.fetch("SELECT camera_id FROM maintenance_tickets WHERE id = ANY ($1::uuid[])", ids)
    return [r["camera_id"] for r in rows]


async def test_the_cameras_profile_is_set_through_the_api(
    client: AsyncTestClient[Litestar], actors: dict[str, Actor], seeded: SeedResult, department_pool: asyncpg.Pool,
    cameras_to_retire: list[uuid.UUID],
) -> None:
    camera = await _camera(department_pool, seeded, "cergy", "c4", "profil")
    cameras_to_retire.append(camera)
    admin = actors["admin@valdoise.demo"].headers
    response = await client.patch(f"/cameras/{camera}", json={"expected_fps": 12.5, "expected_bitrate_kbps": 2048},
                                  headers=admin)
    assert response.status_code == 200, response.text
    assert (response.json()["expected_fps"], response.json()["expected_bitrate_kbps"]) == (12.5, 2048)
    async with department_pool.acquire() as conn:
        row = await conn.fetchrow("SELECT expected_fps, expected_bitrate_kbps FROM cameras WHERE id = $1", camera)
    assert row is not None
    assert (float(row["expected_fps"]), row["expected_bitrate_kbps"]) == (12.5, 2048)
    for bad in ({"expected_fps": 0}, {"expected_bitrate_kbps": 8}):
        refused = await client.patch(f"/cameras/{camera}", json=bad, headers=admin)
        assert refused.status_code == 400, bad
