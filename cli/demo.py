"""`vigie demo`: embedded services, migrated and seeded database, then the platform's processes in the foreground."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from urllib.parse import urlsplit

import uvicorn

from alerts.settings import AlertsSettings
from api.app import create_app, serve_metrics
from cli.bus import provision_settings
from cli.seed import DEMO_PASSWORD, SECOND_FACTOR, SeedResult, seed_demo, seed_demo_detection
from core.crypto import SecretBox
from core.db import open_database
from core.embedded import NatsServerProcess, wait_for_port
from core.settings import Settings
from dvr.settings import DvrSettings
from inference.settings import InferenceSettings
from live.settings import LiveSettings
from mobile_push.settings import PushSettings

# The simulated cameras: camera n answers on CAMERAS_BASE_PORT + n - 1.
CAMERAS_BASE_PORT = int(os.environ.get("VIGIE_DEMO_CAMERAS_BASE_PORT", "8554"))


# The platform's processes beside the API, in start order: (name, module and arguments).
PROCESSES: list[tuple[str, list[str]]] = [
    (
        "cameras",
        [
            "camsim",
            "--cameras",
            "8",
            "--base-port",
            str(CAMERAS_BASE_PORT),
            "--username",
            "viewer",
            "--password",
            "demo",
        ],
    ),
    ("recorder", ["dvr"]),
    ("detection", ["inference"]),
    ("alerts", ["alerts"]),
    # Pushes go to the project's local FCM endpoint (started inside this process on port 9099).
    ("push", ["mobile_push"]),
    # The live-video gateway (WebSocket, fMP4): browsers open it with a ticket from POST /cameras/{id}/live.
    ("live", ["live"]),
]


def start_processes(settings: Settings, children: list[subprocess.Popen[bytes]]) -> None:
    """Each process logs to var/log/<name>.log; the environment carries the resolved settings. Started ones are
    appended to `children` at once, so a failure later still stops them."""
    logs = settings.var_dir / "log"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "VIGIE_DATABASE__HOST": settings.database.host,
        "VIGIE_DATABASE__NAME": settings.database.name,
        "VIGIE_NATS__URL": settings.nats.url,
        "VIGIE_PUSH_LOCAL_ENDPOINT_PORT": os.environ.get("VIGIE_PUSH_LOCAL_ENDPOINT_PORT", "9099"),
        # Short buffers around each alert, so a newcomer sees its clip attached within about half a minute.
        "VIGIE_DVR_CLIP_PRE_S": os.environ.get("VIGIE_DVR_CLIP_PRE_S", "10"),
        "VIGIE_DVR_CLIP_POST_S": os.environ.get("VIGIE_DVR_CLIP_POST_S", "10"),
    }
    for name, argv in PROCESSES:
        with (logs / f"{name}.log").open("ab") as log:
            children.append(
                subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                    [sys.executable, "-m", *argv],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        if name == "cameras":
            wait_for_port("127.0.0.1", CAMERAS_BASE_PORT, 120)


def _banner(settings: Settings, seeded: SeedResult) -> str:
    base = settings.api.public_url
    # The console first: it is where a newcomer starts, with the logins right below it.
    lines = [
        "",
        "Vigie is running.",
        f"  Console        {base}/console/",
        "",
        f"Seeded logins (password for all: {DEMO_PASSWORD}):",
    ]
    for user in seeded.users:
        second = f"  second factor: `.venv/bin/vigie totp {user.email}`" if user.role in SECOND_FACTOR else ""
        lines.append(f"  {user.role:<17} {user.email:<28}{second}")
    lines += [
        "",
        f"  API            {base}",
        f"  OpenAPI        {base}/schema/openapi.json   (Swagger UI: {base}/schema/swagger)",
        f"  Health         {base}/healthz  {base}/readyz   Metrics http://{settings.api.metrics_address}/metrics",
        f"  Worker metrics http://{AlertsSettings().metrics_address} (alerts), {DvrSettings().metrics_address} (dvr), "
        f"{InferenceSettings().metrics_address} (inference), {PushSettings().metrics_address} (push), "
        f"{LiveSettings().metrics_address} (live): /metrics on each",
        f"  NATS           {settings.nats.url}",
        f"  Cameras        rtsp://127.0.0.1:{CAMERAS_BASE_PORT}/main … :{CAMERAS_BASE_PORT + 7}/main (simulated)",
        f"  Live video     {LiveSettings().public_url}/live/cameras/<camera id>?stream=sub|main   (WebSocket; "
        "ticket from POST /cameras/<camera id>/live, docs/live.md)",
        f"  Logs           {settings.var_dir / 'log'}/<process>.log ({', '.join(n for n, _ in PROCESSES)})",
        "",
        "Sign in:  curl -s -X POST " + base + "/auth/login -H 'content-type: application/json' "
        '-d \'{"email": "policier@cergy.demo", "password": "' + DEMO_PASSWORD + "\"}'",
        "",
        "An alert's clip (10 s before and after; clip_status in GET /alerts/{id}) opens with a motive:",
        f"  POST {base}/alerts/<id>/clip/view  {{\"motive\": \"levée de doute\"}}",
        "",
        "A phone of the Marines police municipale (reference client, receives pushes, acknowledges):",
        f"  .venv/bin/python -m mobile_push.reference_client --password '{DEMO_PASSWORD}' --acknowledge",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


async def seed_department(settings: Settings) -> SeedResult:
    """The demo department (once), then its cameras' analytics through the detection service."""
    db = await open_database(settings.database.app_dsn, settings.database.department_dsn,
                             app_pool_size=(1, 2), department_pool_size=(1, 1))
    try:
        # A department job: it creates the department's tenants, sites and users before any tenant scope exists.
        async with db.cross_tenant("demo seed") as conn, conn.transaction():
            seeded = await seed_demo(
                conn,
                SecretBox(settings.data_key.get_secret_value()),
                rtsp_base_port=CAMERAS_BASE_PORT,
                department_code=settings.department_code,
            )
        if seeded.created:
            from inference.mediapipe import prepare_detector_model
            from inference.onnx_detector import read_labels
            from inference.settings import InferenceSettings

            model = await asyncio.to_thread(prepare_detector_model, InferenceSettings().models_dir)
            await seed_demo_detection(db, seeded, labels=frozenset(read_labels(model.labels)))
    finally:
        await db.close()
    return seeded


async def run_demo(settings: Settings, *, with_api: bool = True) -> int:
    """`settings` point at a migrated database with a signing key (cli.main prepares both)."""
    # The filesystem store's signed links are served by this demo's API wherever its address is: the API signs them,
    # the recorder's clips name them (read from the environment by this process and every child).
    os.environ.setdefault("VIGIE_OBJECTSTORE_PRESIGN_BASE_URL", f"{settings.api.public_url.rstrip('/')}/media")
    seeded = await seed_department(settings)
    if not with_api:
        print("database migrated and seeded")
        return 0
    nats: NatsServerProcess | None = None
    if settings.nats.embedded:
        port = urlsplit(settings.nats.url).port or 4222
        nats = NatsServerProcess(store_dir=settings.nats.store_dir, port=port)
        nats.start()
    children: list[subprocess.Popen[bytes]] = []
    try:
        # Once, before any process starts: they only check the streams.
        await provision_settings(settings)
        start_processes(settings, children)
        serve_metrics(settings.api.metrics_address)
        config = uvicorn.Config(
            create_app(settings), host=settings.api.host, port=settings.api.port, log_config=None, lifespan="on"
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        await asyncio.to_thread(wait_for_port, settings.api.host, settings.api.port, 30.0)
        print(_banner(settings, seeded), flush=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM,):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        await serving
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if nats is not None:
            nats.stop()
    return 0
