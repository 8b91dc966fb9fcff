"""S3 servers the contract tests run against: moto over TLS (a CA made here) and a single-node Ceph RGW."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.embedded import wait_for_port
from core.ports import free_port


def make_tls_pair(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 that is also its own CA, so clients verify TLS for real."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class MotoServer:
    """`moto_server` with TLS: minio sends Content-MD5 only over HTTPS, which object-lock PUTs require."""

    folder: Path
    port: int = 0
    ca_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        cert, key = make_tls_pair(self.folder)
        self.ca_file = cert
        self.port = self.port or free_port()
        binary = Path(sys.executable).parent / "moto_server"
        with (self.folder / "moto.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(self.port), "-c", str(cert), "-k", str(key)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        wait_for_port("127.0.0.1", self.port, timeout_s=30)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


CEPH_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph-authtool", "ceph")


def ceph_available() -> bool:
    return all(shutil.which(b) for b in CEPH_BINARIES)


@dataclass
class CephRgw:
    """One monitor, one memstore OSD and radosgw on loopback, cephx off; lifecycle "days" last `lc_day_s`."""

    folder: Path
    lc_day_s: int = 10
    access_key: str = "vigie-test"
    secret_key: str = "vigie-test-secret"
    rgw_port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _conf(self, fsid: str, mon_port: int) -> str:
        c = self.folder
        # Each line was needed to make a one-node Pacific cluster start (pool size one, crc messenger mode).
        return f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
ms_client_mode = crc
ms_mon_client_mode = crc
ms_cluster_mode = crc
ms_service_mode = crc
ms_mon_cluster_mode = crc
ms_mon_service_mode = crc
mon data avail warn = 1
run dir = {c}/run
admin socket = {c}/run/$name.asok
log file = {c}/log/$name.log
mon data = {c}/mon/$cluster-$id
osd data = {c}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = 2147483648
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{self.rgw_port}
rgw dns name = localhost
rgw lc debug interval = {self.lc_day_s}
rgw lifecycle work time = 00:00-23:59
"""

    def _run(self, *args: str) -> str:
        return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout

    def start(self) -> None:
        c = self.folder
        if c.exists():
            shutil.rmtree(c)
        for sub in ("run", "log", "mon", "osd"):
            (c / sub).mkdir(parents=True)
        fsid = str(uuid.uuid4())
        mon_port = free_port()
        self.rgw_port = self.rgw_port or free_port()
        conf = c / "ceph.conf"
        conf.write_text(self._conf(fsid, mon_port))
        cf = ["-c", str(conf)]
        self._run("monmaptool", "--create", "--add", "a", f"v2:127.0.0.1:{mon_port}", "--fsid", fsid,
                  str(c / "monmap"))
        self._run("ceph-authtool", "--create-keyring", str(c / "mon.keyring"), "--gen-key", "-n", "mon.",
                  "--cap", "mon", "allow *")
        self._run("ceph-mon", *cf, "--mkfs", "-i", "a", "--monmap", str(c / "monmap"),
                  "--keyring", str(c / "mon.keyring"))
        self._daemon("ceph-mon", *cf, "-i", "a")
        osd = self._run("ceph", *cf, "osd", "create").strip()
        (c / "osd" / f"ceph-{osd}").mkdir(parents=True, exist_ok=True)
        self._run("ceph-osd", *cf, "-i", osd, "--mkfs")
        subprocess.run(["ceph", *cf, "osd", "crush", "add", f"osd.{osd}", "1.0", "host=localhost",
                        "root=default"], capture_output=True, timeout=60, check=False)
        self._daemon("ceph-osd", *cf, "-i", osd)
        self._daemon("radosgw", *cf, "-n", "client.rgw.a", "--log-file", str(c / "log" / "rgw.log"))
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.rgw_port}", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("radosgw did not answer within 90 s") from None
                time.sleep(0.5)
        self._run("radosgw-admin", *cf, "user", "create", "--uid=vigie", "--display-name=vigie",
                  f"--access-key={self.access_key}", f"--secret-key={self.secret_key}")

    def _daemon(self, *args: str) -> None:
        # -f keeps each daemon in the foreground as our child, so stop() ends exactly what start() began.
        with (self.folder / "log" / "daemons.log").open("ab") as log:
            self.processes.append(subprocess.Popen([*args, "-f"], stdout=log, stderr=subprocess.STDOUT,
                                                   env={**os.environ}))

    def stop_gateway(self) -> None:
        """Take the S3 endpoint down (the cluster keeps its data), as a MinIO outage looks to clients."""
        gateway = self.processes.pop()
        gateway.kill()
        gateway.wait()

    def start_gateway(self) -> None:
        conf = str(self.folder / "ceph.conf")
        self._daemon("radosgw", "-c", conf, "-n", "client.rgw.a", "--log-file", str(self.folder / "log" / "rgw.log"))
        wait_for_port("127.0.0.1", self.rgw_port, timeout_s=60)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.rgw_port}"

    def stop(self) -> None:
        # memstore keeps nothing worth flushing: a kill is as good as a clean stop, and seconds faster.
        for p in reversed(self.processes):
            p.send_signal(signal.SIGKILL)
            p.wait()
        self.processes.clear()
