"""Every worker process (`python -m …`) serves its Prometheus metrics on the address its settings name."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest

from cli.bus import provision_url
from core.embedded import NatsServerProcess
from core.migrate import drop_database, prepare_database
from core.ports import free_port
from core.settings import Settings
from tests.processes import ModuleProcess

# The families each process must expose (the list: recorder, detector, alerts, push), plus the bus's dead
# letters wherever a consumer runs.
EXPECTED = {
    "dvr": ("VIGIE_DVR_METRICS_ADDRESS", [
        "vigie_dvr_cameras_recording", "vigie_dvr_cameras_offline", "vigie_dvr_spool_bytes",
        "vigie_dvr_oldest_pending_segment_seconds", "vigie_dvr_segments_uploaded_total",
        "vigie_dvr_upload_lag_seconds", "vigie_bus_dead_lettered_total"]),
    "inference": ("VIGIE_INFERENCE_METRICS_ADDRESS", [
        "vigie_inference_frames_total", "vigie_inference_batch_seconds", "vigie_inference_queue_depth",
        "vigie_inference_events_overflowed_total"]),
    "alerts": ("VIGIE_ALERTS_METRICS_ADDRESS", [
        "vigie_alerts_events_total", "vigie_alerts_batch_seconds", "vigie_bus_dead_lettered_total",
        "vigie_outbox_lag_seconds"]),
    "mobile_push": ("VIGIE_PUSH_METRICS_ADDRESS", [
        "vigie_push_send_seconds", "vigie_push_send_outcomes_total", "vigie_bus_dead_lettered_total",
        "vigie_outbox_lag_seconds"]),
}


def _scrape(url: str, process: ModuleProcess, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.alive, f"python -m {process.module} exited:\n{process.tail()}"
        try:
            answer = httpx2.get(url, timeout=2)
            if answer.status_code == 200:
                return answer.text
        except httpx2.TransportError:
            pass
        assert time.monotonic() < deadline, f"no /metrics at {url}:\n{process.tail()}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
async def private_settings(settings: Settings) -> AsyncIterator[Settings]:
    """A database of its own, migrated and empty: the detector finds no other test's cameras to read, the engines
    no other test's rows."""
    name = f"vigie_metrics_{uuid.uuid4().hex[:10]}"
    prepared = await prepare_database(settings.model_copy(update={
        "database": settings.database.model_copy(update={"name": name})}))
    yield prepared
    await drop_database(prepared)


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[NatsServerProcess]:
    """A bus of its own: the processes find no event of the other tests to act on (new durables start at the
    beginning of a stream)."""
    server = NatsServerProcess(store_dir=tmp_path / "nats")
    server.start()
    # Every stream declared as `vigie bus provision` does: the processes only check them at start.
    asyncio.run(provision_url(server.url))
    yield server
    server.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_each_process_serves_its_metrics_on_its_own_address(module: str, private_settings: Settings,
                                                            private_nats: NatsServerProcess, tmp_path: Path) -> None:
    variable, families = EXPECTED[module]
    port = free_port()
    env = private_settings.child_env(**{
        variable: f"127.0.0.1:{port}", "VIGIE_LOG_LEVEL": "INFO", "VIGIE_NATS__URL": private_nats.url,
        "VIGIE_OBJECTSTORE_BACKEND": "fs", "VIGIE_OBJECTSTORE_ROOT": str(tmp_path / "objects"),
        "VIGIE_DVR_SPOOL_DIR": str(tmp_path / "spool"),
        # The push dispatcher talks to the project's local FCM endpoint (its service account made on first use).
        "VIGIE_PUSH_SERVICE_ACCOUNT_FILE": str(tmp_path / "service-account.json"),
        "VIGIE_PUSH_LOCAL_ENDPOINT_PORT": str(free_port()),
        "VIGIE_API__METRICS_ADDRESS": "",
    })
    process = ModuleProcess(module, env, tmp_path / f"{module}.log")
    process.start()
    try:
        text = _scrape(f"http://127.0.0.1:{port}/metrics", process, timeout_s=90)
    finally:
        process.stop()
    declared = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    missing = [f for f in families if f.removesuffix("_total") not in declared and f not in declared]
    assert missing == [], f"python -m {module} does not expose {missing}"
