"""A platform process (`python -m <module>`) run as a child of a test, its output appended to a log file."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from core.settings import PROJECT_ROOT


class ModuleProcess:
    """`python -m <module>` with this interpreter, in the project root, with the given environment."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        self.module, self.env, self.log_path = module, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # this interpreter, a fixed module
                [sys.executable, "-m", self.module], cwd=PROJECT_ROOT, env=self.env, stdout=log,
                stderr=subprocess.STDOUT)
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
