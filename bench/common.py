"""Helpers shared by benchmarks: result files, commit id, pinned load generators."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_result(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(
        json.dumps({**figures, "commit": commit(), "measured_at": datetime.now(UTC).isoformat()}, indent=2) + "\n"
    )
    return path


def cores() -> tuple[str, str]:
    """The core the server gets and the one the load generator gets (the same one if only one exists)."""
    count = os.cpu_count() or 1
    return "0", ("1" if count > 1 else "0")


@contextmanager
def supporting_services_on(core: str) -> Iterator[None]:
    """Pin Postgres (postmaster and backends, present and future) to the load generator's core for the run,
    so the server under test has its core to itself; the previous affinity is restored afterwards."""
    pids = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True, check=False).stdout.split()
    for pid in pids:
        subprocess.run(["taskset", "-acp", core, pid], capture_output=True, check=False)
    try:
        yield
    finally:
        everything = f"0-{(os.cpu_count() or 1) - 1}"
        for pid in subprocess.run(
            ["pgrep", "-x", "postgres"], capture_output=True, text=True, check=False
        ).stdout.split():
            subprocess.run(["taskset", "-acp", everything, pid], capture_output=True, check=False)


def wrk(url: str, *, seconds: int, connections: int, headers: dict[str, str], core: str) -> float:
    """Closed-loop saturation: requests per second."""
    args = ["taskset", "-c", core, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"{url} answered {non_2xx.group(1)} errors during the benchmark:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return float(match.group(1))


def hey_fixed_rate(url: str, *, rate: float, seconds: int, headers: dict[str, str], core: str) -> dict[str, float]:
    """Open-loop load at `rate` requests/s; latency percentiles in ms."""
    workers = 8
    args = ["taskset", "-c", core, "hey", "-z", f"{seconds}s", "-c", str(workers), "-q", f"{rate / workers:.2f}"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    env = {**os.environ, "GOMAXPROCS": "1"}
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True, env=env).stdout
    figures: dict[str, float] = {}
    for pct in ("50", "90", "99"):
        match = re.search(rf"{pct}%+ in ([\d.]+) secs", out)
        if match is None:
            raise RuntimeError(f"unexpected hey output:\n{out}")
        figures[f"p{pct}_ms"] = float(match.group(1)) * 1000
    achieved = re.search(r"Requests/sec:\s+([\d.]+)", out)
    figures["achieved_rps"] = float(achieved.group(1)) if achieved else 0.0
    codes = re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)
    bad = [c for c in codes if not c[0].startswith("2")]
    if bad:
        raise RuntimeError(f"errors under fixed-rate load: {bad}")
    return figures
