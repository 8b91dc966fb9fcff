"""API benchmark: an authenticated, RLS-scoped single-row GET against a bare litestar hello-world, same box."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import pyotp

from bench.common import cores, hey_fixed_rate, supporting_services_on, write_result, wrk
from cli.database import department_database
from cli.main import ensure_signing_key
from cli.seed import DEMO_PASSWORD, seed_demo
from core.crypto import SecretBox
from core.embedded import NatsServerProcess, wait_for_port
from core.migrate import drop_database, prepare_database
from core.ports import free_port
from core.settings import DatabaseSettings, NatsSettings, Settings

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))


async def prepare(settings: Settings) -> tuple[Settings, str, str, str]:
    """A fresh database with the demo department; returns settings, the mayor's TOTP seed, a camera id and its
    tenant."""
    await drop_database(settings)
    settings = await prepare_database(settings)
    await ensure_signing_key(settings)
    async with department_database(settings) as db, db.cross_tenant("bench setup") as conn, conn.transaction():
        seeded = await seed_demo(
            conn, SecretBox(settings.data_key.get_secret_value()), rtsp_base_port=8554
        )
    secret = next(u.totp_secret for u in seeded.users if u.email == "maire@cergy.demo")
    assert secret is not None
    return settings, secret, str(seeded.cameras["c4"]), str(seeded.tenants["cergy"])


@contextmanager
def served(args: list[str], env: dict[str, str], port: int, core: str) -> Iterator[None]:
    process = subprocess.Popen(
        [
            "taskset",
            "-c",
            core,
            sys.executable,
            "-m",
            "uvicorn",
            *args,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        wait_for_port("127.0.0.1", port, 30)
        yield
    finally:
        process.terminate()
        process.wait(timeout=15)


def sign_in(base: str, secret: str) -> str:
    with httpx2.Client(base_url=base, timeout=10) as client:
        first = client.post("/auth/login", json={"email": "maire@cergy.demo", "password": DEMO_PASSWORD}).json()
        second = client.post(
            "/auth/login/totp", json={"challenge": first["challenge"], "code": pyotp.TOTP(secret).now()}
        )
        second.raise_for_status()
        token: str = second.json()["access_token"]
        return token


def main() -> None:
    server_core, load_core = cores()
    nats = NatsServerProcess(store_dir=Settings().var_dir / "bench-nats")
    nats.start()
    base_settings = Settings(
        database=DatabaseSettings(name="vigie_bench"), nats=NatsSettings(url=nats.url, embedded=False)
    )
    settings, secret, camera_id, tenant_id = asyncio.run(prepare(base_settings))
    env = {
        **os.environ,
        "VIGIE_DATABASE__NAME": "vigie_bench",
        "VIGIE_NATS__URL": nats.url,
        "VIGIE_AUTH__ACCESS_TTL_S": "3600",
        "VIGIE_LOG_LEVEL": "WARNING",
        "VIGIE_DATABASE__HOST": settings.database.host,
    }
    try:
        port = free_port()
        with supporting_services_on(load_core), served(["--factory", "bench.api:vigie_app"], env, port, server_core):
            base = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {sign_in(base, secret)}"}
            url = f"{base}/cameras/{camera_id}"
            assert httpx2.get(url, headers=headers).status_code == 200
            wrk(url, seconds=2, connections=16, headers=headers, core=load_core)  # warm-up
            rps = wrk(url, seconds=SECONDS, connections=16, headers=headers, core=load_core)
            time.sleep(1)
            latency = hey_fixed_rate(url, rate=rps / 2, seconds=SECONDS, headers=headers, core=load_core)
        with supporting_services_on(load_core):
            db_loop = ["taskset", "-c", server_core, sys.executable, "-m", "bench.api_db_loop", "--tenant", tenant_id,
                       "--camera", camera_id, "--concurrency", "16"]
            subprocess.run([*db_loop, "--seconds", "2"], env=env, check=True, capture_output=True)  # warm-up
            db_baseline_rps = float(subprocess.run([*db_loop, "--seconds", str(SECONDS)], env=env, check=True,
                                                   capture_output=True, text=True).stdout.strip())
        port = free_port()
        with supporting_services_on(load_core), served(["bench.hello:app"], env, port, server_core):
            hello = f"http://127.0.0.1:{port}/"
            wrk(hello, seconds=2, connections=16, headers={}, core=load_core)
            baseline_rps = wrk(hello, seconds=SECONDS, connections=16, headers={}, core=load_core)
    finally:
        nats.stop()
    path = write_result(
        "api",
        {
            "rps": round(rps, 1),
            "baseline_rps": round(baseline_rps, 1),
            "ratio": round(rps / baseline_rps, 3),
            "db_baseline_rps": round(db_baseline_rps, 1),
            "db_ratio": round(rps / db_baseline_rps, 3),
            "p50_ms": round(latency["p50_ms"], 2),
            "p99_ms": round(latency["p99_ms"], 2),
            "p90_ms": round(latency["p90_ms"], 2),
            "latency_rate_rps": round(latency["achieved_rps"], 1),
            "seconds_per_run": SECONDS,
            "server_core": server_core,
            "load_core": load_core,
        },
    )
    print(path.read_text())


def vigie_app():  # type: ignore[no-untyped-def]
    """uvicorn factory: the real API with the environment's settings."""
    from api.app import create_app
    from core.settings import get_settings

    return create_app(get_settings())


if __name__ == "__main__":
    main()
