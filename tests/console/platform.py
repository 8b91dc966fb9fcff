"""The whole platform as `vigie demo` starts it (API, NATS, simulated cameras, recorder, detector, alerts, push, live
gateway), on free ports and a database of its own, for the console's browser tests and benchmark."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from cli.seed import DEMO_PASSWORD
from core.ports import free_port, free_port_range
from core.settings import PROJECT_ROOT

VIGIE = str(Path(sys.executable).with_name("vigie"))
CHROMIUM = "/usr/bin/chromium"
AXE = PROJECT_ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
OFFICERS = ("pm@marines.demo", "gendarme@marines.demo", "policier@cergy.demo")


class DemoPlatform:
    """`vigie demo` as a child process group; stopped with SIGTERM (it stops its own children), then killed."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.fcm_port = free_port()
        live_port = free_port()
        self.env = {
            **os.environ,
            "VIGIE_DATABASE__NAME": f"vigie_console_{uuid.uuid4().hex[:10]}",
            "VIGIE_API__PORT": str(self.api_port),
            # `vigie demo` derives the signed media links' base from it (the console's clips and playback use them).
            "VIGIE_API__PUBLIC_URL": self.api_url,
            "VIGIE_API__METRICS_ADDRESS": "",
            "VIGIE_NATS__URL": f"nats://127.0.0.1:{free_port()}",
            "VIGIE_NATS__STORE_DIR": str(work / "nats"),
            "VIGIE_VAR_DIR": str(work / "var"),
            "VIGIE_OBJECTSTORE_ROOT": str(work / "objects"),
            "VIGIE_DVR_SPOOL_DIR": str(work / "spool"),
            "VIGIE_DEMO_CAMERAS_BASE_PORT": str(free_port_range(8)),
            "VIGIE_PUSH_LOCAL_ENDPOINT_PORT": str(self.fcm_port),
            # Written on first start with the local endpoint's address: one per platform, never a stale port.
            "VIGIE_PUSH_SERVICE_ACCOUNT_FILE": str(work / "push" / "service-account.json"),
            "VIGIE_LIVE_PORT": str(live_port),
            "VIGIE_LIVE_PUBLIC_URL": f"ws://127.0.0.1:{live_port}",
            "VIGIE_LIVE_METRICS_ADDRESS": "",
            "VIGIE_ALERTS_METRICS_PORT": "0",
            # Every test of a package signs in from 127.0.0.1 (browsers and API clients): the per-address budget of
            # a real deployment (20 a minute) would refuse a busy minute of the suite, not an attacker.
            "VIGIE_AUTH__LOGIN_RATE_PER_IP_PER_MINUTE": "10000",
        }
        self.log = work / "demo.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.phones: list[subprocess.Popen[bytes]] = []

    def start(self, timeout_s: float = 420) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([VIGIE, "demo"], cwd=PROJECT_ROOT, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while "Vigie is running." not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"vigie demo did not start:\n{self.tail()}")
            time.sleep(1)

    def totp(self, email: str) -> str:
        done = subprocess.run([VIGIE, "totp", email], cwd=PROJECT_ROOT, env=self.env, capture_output=True,
                              text=True, check=True, timeout=60)
        return done.stdout.strip()

    def start_phones(self) -> None:
        """The reference phone client of each officer with a device, acknowledging every dispatch it receives."""
        for email in OFFICERS:
            with (self.work / f"phone-{email.split('@')[0]}.log").open("ab") as log:
                self.phones.append(subprocess.Popen(
                    [sys.executable, "-m", "mobile_push.reference_client", "--api", self.api_url, "--fcm",
                     f"http://127.0.0.1:{self.fcm_port}", "--email", email, "--password", DEMO_PASSWORD,
                     "--acknowledge"], cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for phone in self.phones:
            phone.terminate()
        for phone in self.phones:
            try:
                phone.wait(timeout=10)
            except subprocess.TimeoutExpired:
                phone.kill()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Whatever of the group outlived its parent (a child it could not stop).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
