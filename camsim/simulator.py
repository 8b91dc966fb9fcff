"""Starts and controls simulated IP cameras: one RTSP server process per camera, so each fails on its own."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from camsim.footage import FOOTAGES, black_clip, encoded_clip
from core.ports import free_port

SERVER_SCRIPT = Path(__file__).with_name("server.py")
# GStreamer's Python bindings come from Debian (python3-gi), so the servers run under the system interpreter.
DEFAULT_SYSTEM_PYTHON = "/usr/bin/python3"
STARTUP_TIMEOUT_S = 20.0


class SimulatorError(RuntimeError):
    """A simulated camera could not be started or controlled."""


@dataclass(frozen=True)
class CameraSpec:
    """What a simulated camera shows and how it is protected."""

    name: str
    footage: str = "vtest"
    username: str | None = None
    password: str | None = None
    # Further footages whose sub streams follow the first one's in turn: the picture changes resolution mid-stream.
    then: tuple[str, ...] = ()
    clip_seconds: float | None = None


def check_system_python(python: str = DEFAULT_SYSTEM_PYTHON) -> None:
    """Fail with the fix in the message when the system interpreter lacks GStreamer's RTSP server."""
    if shutil.which(python) is None:
        raise SimulatorError(f"{python} not found: the camera simulator needs Debian's python3")
    probe = subprocess.run(  # noqa: S603 - fixed interpreter and fixed code
        [python, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                       "from gi.repository import GstRtspServer"],
        capture_output=True, text=True, check=False, timeout=30,
    )
    if probe.returncode != 0:
        raise SimulatorError(
            "GStreamer's RTSP server is not importable by the system python; run scripts/install-system-deps.sh "
            f"(packages in scripts/apt-packages/inference.txt). Detail: {probe.stderr.strip()[-300:]}"
        )


class SimulatedCamera:
    """One camera: a main and a sub RTSP stream on its own port, which can fail the ways real cameras do."""

    def __init__(self, spec: CameraSpec, *, cache_dir: Path, host: str, port: int, python: str) -> None:
        for footage in (spec.footage, *spec.then):
            if footage not in FOOTAGES:
                raise SimulatorError(f"unknown footage {footage!r}; known: {', '.join(sorted(FOOTAGES))}")
        self.spec = spec
        self.host = host
        self.port = port
        self._cache_dir = cache_dir
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False

    @property
    def name(self) -> str:
        return self.spec.name

    def url(self, stream: str = "main", *, with_credentials: bool = False) -> str:
        """RTSP URL of `stream`; credentials go in the URL only when asked (the platform stores them apart)."""
        userinfo = ""
        if with_credentials and self.spec.username is not None:
            userinfo = f"{quote(self.spec.username, safe='')}:{quote(self.spec.password or '', safe='')}@"
        return f"rtsp://{userinfo}{self.host}:{self.port}/{stream}"

    @property
    def main_url(self) -> str:
        return self.url("main")

    @property
    def sub_url(self) -> str:
        return self.url("sub")

    @property
    def log_path(self) -> Path:
        return self._cache_dir / "logs" / f"{self.name}-{self.port}.log"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def is_frozen(self) -> bool:
        return self.is_running and self._frozen

    def command(self) -> list[str]:
        args = [self._python, str(SERVER_SCRIPT), "--host", self.host, "--port", str(self.port)]
        for stream in ("main", "sub"):
            clip = encoded_clip(self._cache_dir, self.spec.footage, stream)
            black = black_clip(self._cache_dir, self.spec.footage, stream)
            args += [f"--{stream}", str(clip.data), str(clip.index)]
            args += [f"--black-{stream}", str(black.data), str(black.index)]
        for footage in self.spec.then:
            clip = encoded_clip(self._cache_dir, footage, "sub")
            args += ["--sub", str(clip.data), str(clip.index)]
        if self.spec.clip_seconds is not None:
            args += ["--clip-seconds", str(self.spec.clip_seconds)]
        if self.spec.username is not None:
            args += ["--username", self.spec.username, "--password", self.spec.password or ""]
        return args

    def start(self) -> None:
        """Start serving; returns once the server listens. Starting a running camera is an error."""
        if self.is_running:
            raise SimulatorError(f"camera {self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # stderr goes to a file: a pipe nobody reads would fill up and block the server.
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own script under a fixed interpreter
                self.command(), stdout=subprocess.PIPE, stderr=log, start_new_session=True,
            )
        self._process = process
        self._frozen = False
        try:
            self._wait_ready(process)
        except SimulatorError:
            self.kill()
            raise

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        line = b""
        while time.monotonic() < deadline:
            readable, _, _ = select.select([process.stdout], [], [], 0.2)
            if readable:
                line = process.stdout.readline()
                if line.startswith(b"ready"):
                    return
            if process.poll() is not None:
                stderr = self.log_path.read_text(errors="replace")
                raise SimulatorError(f"camera {self.name} exited at start ({process.returncode}): {stderr[-500:]}")
        raise SimulatorError(f"camera {self.name} not ready after {STARTUP_TIMEOUT_S} s (last output {line!r})")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Graceful shutdown: the server closes its connections, as a camera being rebooted does."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        if self._frozen:
            self.thaw()
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._close_pipes(process)

    def kill(self) -> None:
        """Abrupt loss: SIGKILL, as a power cut does; clients see the connection drop."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()
        self._frozen = False
        self._close_pipes(process)

    def freeze(self) -> None:
        """The process stops (SIGSTOP): connections stay open but no byte flows, as with a hung camera."""
        process = self._require_running()
        os.kill(process.pid, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """Resume a frozen camera; it skips the frames it missed, like a live source."""
        process = self._require_running()
        os.kill(process.pid, signal.SIGCONT)
        self._frozen = False

    def toggle_blackout(self) -> None:
        """Cover or uncover the lens: both streams switch to black (or back) at their next keyframe."""
        process = self._require_running()
        os.kill(process.pid, signal.SIGUSR1)

    def toggle_corruption(self) -> None:
        """Start or stop garbling the bytes of every access unit (both streams), as a flaky link does."""
        process = self._require_running()
        os.kill(process.pid, signal.SIGUSR2)

    def restart(self) -> None:
        """Stop (or reap) the camera, then serve again on the same port."""
        if self._frozen and self.is_running:
            self.kill()
        self.stop()
        self.start()

    def _require_running(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            raise SimulatorError(f"camera {self.name} is not running")
        return self._process

    @staticmethod
    def _close_pipes(process: subprocess.Popen[bytes]) -> None:
        if process.stdout is not None:
            process.stdout.close()


class CameraSimulator:
    """A set of simulated cameras on loopback; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        specs: list[CameraSpec],
        *,
        cache_dir: Path,
        host: str = "127.0.0.1",
        base_port: int | None = None,
        python: str = DEFAULT_SYSTEM_PYTHON,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise SimulatorError("camera names must be unique")
        self._cache_dir = cache_dir
        self._host = host
        self._python = python
        self._next_port = base_port
        self.cameras: dict[str, SimulatedCamera] = {}
        for spec in specs:
            self._add(spec)

    def _allocate_port(self) -> int:
        if self._next_port is None:
            return free_port(self._host)
        port = self._next_port
        self._next_port += 1
        return port

    def _add(self, spec: CameraSpec) -> SimulatedCamera:
        if spec.name in self.cameras:
            raise SimulatorError(f"camera {spec.name} already exists")
        camera = SimulatedCamera(spec, cache_dir=self._cache_dir, host=self._host, port=self._allocate_port(),
                                 python=self._python)
        self.cameras[spec.name] = camera
        return camera

    def camera(self, name: str) -> SimulatedCamera:
        try:
            return self.cameras[name]
        except KeyError:
            raise SimulatorError(f"no simulated camera named {name!r}") from None

    def start(self) -> None:
        check_system_python(self._python)
        for camera in self.cameras.values():
            if not camera.is_running:
                camera.start()

    def add_camera(self, spec: CameraSpec) -> SimulatedCamera:
        """A further camera, started now: for a test that breaks a camera without disturbing the shared ones."""
        camera = self._add(spec)
        camera.start()
        return camera

    def remove_camera(self, name: str) -> None:
        self.camera(name).kill()
        del self.cameras[name]

    def stop(self) -> None:
        for camera in self.cameras.values():
            camera.stop()

    def __enter__(self) -> CameraSimulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        self.stop()
