"""Live gateway fixtures: a tenant whose cameras are the simulated ones, an operator with a real session, tickets
issued by the live service, the gateway as its own process (`python -m live`), and a WebSocket client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from camsim.simulator import SimulatedCamera
from core.crypto import CAMERA_CREDENTIALS, SecretBox
from core.db import Database
from core.embedded import wait_for_port
from core.ports import free_port
from core.settings import Settings
from core.tenancy import Principal, Role, Scope
from live.model import Stream, TicketGrant
from live.service import LiveService
from live.settings import LiveSettings
from live.tickets import TicketSigner
from tests.processes import ModuleProcess

HEVC_CAMERA = Path(__file__).with_name("hevc_camera.py")
# What the gateway under test is told (short waits, so each test takes seconds).
GATEWAY_ENV = {
    "VIGIE_LIVE_VIEWER_CAP": "3",
    "VIGIE_LIVE_LINGER_S": "1",
    "VIGIE_LIVE_BACKOFF_BASE_S": "0.2",
    "VIGIE_LIVE_BACKOFF_CAP_S": "1",
    "VIGIE_LIVE_HEARTBEAT_S": "1",
    "VIGIE_LIVE_TICKET_WAIT_S": "2",
}


@dataclass
class LiveWorld:
    """One tenant of its own department, its cameras (added per test), an operator signed in (a real session)."""

    pool: asyncpg.Pool
    box: SecretBox
    department_id: uuid.UUID
    tenant_id: uuid.UUID
    site_id: uuid.UUID
    user_id: uuid.UUID
    session_id: uuid.UUID
    cameras: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def principal(self) -> Principal:
        return Principal(user_id=self.user_id, session_id=self.session_id, role=Role.OPERATOR,
                         home_tenant_id=self.tenant_id, department_id=self.department_id,
                         scope=Scope(frozenset({self.tenant_id}), self.department_id), display_name="Opératrice")

    async def camera(self, name: str, main_url: str, sub_url: str | None = None, *,
                     credentials: tuple[str, str] | None = None, transcode: bool = False,
                     masks: list[list[tuple[float, float]]] | None = None) -> uuid.UUID:
        camera_id = uuid.uuid4()
        sealed = None
        if credentials is not None:
            plain = msgspec.json.encode({"username": credentials[0], "password": credentials[1]})
            sealed = self.box.seal(plain, column=CAMERA_CREDENTIALS, row_id=camera_id)
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, sub_stream_url, "
                "credentials_sealed, insee_code, status, live_transcode, privacy_masks) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, '95127', 'online', $8, $9::jsonb)",
                camera_id, self.tenant_id, self.site_id, f"{name}-{camera_id.hex[:6]}", main_url, sub_url, sealed,
                transcode, json.dumps([{"points": polygon} for polygon in masks or []]))
        self.cameras[name] = camera_id
        return camera_id

    async def sim_camera(self, camera: SimulatedCamera, *, credentials: tuple[str, str] | None = None) -> uuid.UUID:
        return await self.camera(camera.name, camera.main_url, camera.sub_url, credentials=credentials)

    async def view(self, view_id: uuid.UUID) -> asyncpg.Record:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM live_views WHERE id = $1", view_id)
        assert row is not None
        return row


@pytest.fixture(scope="session")
async def live_world(department_pool: asyncpg.Pool, settings: Settings) -> LiveWorld:
    department_id, tenant_id, site_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    user_id, membership_id, session_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with department_pool.acquire() as conn, conn.transaction():
        # A department of its own (La Réunion's code), so no other suite's seed meets it.
        await conn.execute("INSERT INTO departments (id, code, name) VALUES ($1, '974', 'Live tests')", department_id)
        await conn.execute("INSERT INTO tenants (id, department_id, kind, name) VALUES ($1, $2, 'department', 'Live')",
                           tenant_id, department_id)
        await conn.execute("INSERT INTO sites (id, tenant_id, name, kind, insee_code) "
                           "VALUES ($1, $2, 'Site', 'public_space', '95127')", site_id, tenant_id)
        await conn.execute(
            "INSERT INTO users (id, department_id, email, display_name, habilitation_expires_on) "
            "VALUES ($1, $2, $3, 'Opératrice', $4)",
            user_id, department_id, f"op-{user_id.hex[:8]}@live.test", date.today() + timedelta(days=300))
        await conn.execute("INSERT INTO memberships (id, tenant_id, user_id, role) VALUES ($1, $2, $3, 'operator')",
                           membership_id, tenant_id, user_id)
        await conn.execute(
            "INSERT INTO auth_sessions (id, user_id, membership_id, amr, expires_at) "
            "VALUES ($1, $2, $3, '{pwd,otp}', now() + interval '1 hour')", session_id, user_id, membership_id)
    return LiveWorld(department_pool, SecretBox(settings.data_key.get_secret_value()), department_id, tenant_id,
                     site_id, user_id, session_id)


@pytest.fixture(scope="module")
def live_service(database: Database, gateway: Gateway) -> LiveService:
    """The API's side of the service (tickets), over the suite's database, with the gateway's key and address."""
    live = LiveSettings(public_url=gateway.base)
    return LiveService(db=database, signer=TicketSigner(live.ticket_key.get_secret_value()), settings=live)


@dataclass
class Gateway:
    process: ModuleProcess
    port: int
    metrics_port: int

    @property
    def base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def url(self, camera_id: uuid.UUID, stream: str = "sub") -> str:
        return f"{self.base}/live/cameras/{camera_id}?stream={stream}"

    def metric(self, name: str) -> float:
        text = httpx2.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in the metrics")

    def ffmpeg_children(self) -> list[int]:
        """The gateway's ffmpeg children, read from /proc: the upstream sessions actually running."""
        assert self.process.proc is not None
        pid = self.process.proc.pid
        children: list[int] = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                children += [int(c) for c in (task / "children").read_text().split()]
        found = []
        for child in children:
            with contextlib.suppress(FileNotFoundError):
                if Path(f"/proc/{child}/comm").read_text().strip() == "ffmpeg":
                    found.append(child)
        return found


@pytest.fixture(scope="module")
def gateway(settings: Settings, live_world: LiveWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port, metrics_port = free_port(), free_port()
    env = settings.child_env(VIGIE_LIVE_PORT=str(port), VIGIE_LIVE_PUBLIC_URL=f"ws://127.0.0.1:{port}",
                             VIGIE_LIVE_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}", **GATEWAY_ENV)
    process = ModuleProcess("live", env, tmp_path_factory.mktemp("live") / "live.log")
    process.start()
    try:
        wait_for_port("127.0.0.1", port, 30)
        yield Gateway(process, port, metrics_port)
    finally:
        process.stop()


async def ticket(service: LiveService, world: LiveWorld, camera_id: uuid.UUID,
                 stream: Stream = Stream.SUB) -> TicketGrant:
    return await service.issue_ticket(world.principal, camera_id, stream=stream, motive="levée de doute")


class Watch:
    """One viewer's socket: sends the ticket first, then reads status (text) and fMP4 (binary) frames."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.statuses: list[dict[str, Any]] = []

    async def recv(self, within: float = 15) -> str | bytes:
        async with asyncio.timeout(within):
            return await self.ws.recv()

    async def until_status(self, state: str, within: float = 20) -> dict[str, Any]:
        """Reads (and drops binary frames) until a status of this state."""
        async with asyncio.timeout(within):
            while True:
                frame = await self.ws.recv()
                if isinstance(frame, str):
                    message = json.loads(frame)
                    self.statuses.append(message)
                    if message.get("state") == state:
                        return message

    async def init_and_fragments(self, count: int, within: float = 20) -> tuple[dict[str, Any], bytes, list[bytes]]:
        """The `online` status, the init segment that follows it, then `count` fragments."""
        online = await self.until_status("online", within)
        init = await self.recv(within)
        assert isinstance(init, bytes), init
        fragments: list[bytes] = []
        while len(fragments) < count:
            frame = await self.recv(within)
            assert isinstance(frame, bytes), f"unexpected text frame while streaming: {frame!r}"
            fragments.append(frame)
        return online, init, fragments

    async def closed(self, within: float = 15) -> tuple[int, str, list[str]]:
        """(code, reason, text frames received before the close)."""
        texts: list[str] = []
        closed: ConnectionClosed | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                try:
                    while True:
                        frame = await self.ws.recv()
                        if isinstance(frame, str):
                            texts.append(frame)
                except ConnectionClosed as exc:
                    closed = exc
        if closed is None:
            raise AssertionError(f"the socket stayed open for {within} s; texts: {texts}")
        if closed.rcvd is None:
            raise AssertionError("closed without a close frame")
        return closed.rcvd.code, closed.rcvd.reason, texts


@contextlib.asynccontextmanager
async def watch(url: str, ticket_text: str | None) -> AsyncIterator[Watch]:
    async with connect(url, max_size=None, open_timeout=10) as ws:
        if ticket_text is not None:
            # The gateway may have refused the socket already (a bad stream, an origin): its close frame is read next.
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"ticket": ticket_text}))
        yield Watch(ws)


@contextlib.contextmanager
def hevc_camera(python: str = "/usr/bin/python3") -> Iterator[str]:
    """An H.265 RTSP camera on loopback; yields its base URL (…/main and …/sub)."""
    port = free_port()
    process = subprocess.Popen([python, str(HEVC_CAMERA), str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "the H.265 camera did not start"
        assert process.stdout.readline().startswith(b"ready")
        yield f"rtsp://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
