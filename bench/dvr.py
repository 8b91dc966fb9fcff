"""DVR benchmark: CPU per camera of the whole recorder vs plain `ffmpeg -c copy -f segment` on the same streams.

Writes bench/results/dvr.json with cpu_ratio_vs_ffmpeg, cameras_per_2_cores, resume_p99_s, segments_lost.
Both phases record the same simulated RTSP cameras in the same run; CPU is counted with getrusage (the recorder
process itself plus its reaped ffmpeg children; the baseline's ffmpeg children). Cameras per 2 cores is
extrapolated to 4 Mbps from the measured stream bitrate at 75 % of two cores (the R2 goal's ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from camsim.simulator import CameraSimulator, CameraSpec
from core.crypto import SecretBox
from core.db import create_pool
from core.events import Event
from core.migrate import prepare_database
from core.objectstore import FilesystemObjectStore
from core.settings import DatabaseSettings, Settings
from dvr.recorder import FleetRecorder
from dvr.settings import DvrSettings
from dvr.uploader import SegmentUploader, Spool
from dvr.workers import record_until

ROOT = Path(__file__).resolve().parent
CACHE = ROOT.parent / "var" / "camsim"


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def baseline(urls: list[str], seconds: float, out: Path) -> tuple[float, int]:
    """Plain ffmpeg segmenters, one per camera; returns (CPU seconds, bytes written)."""
    before = _cpu_children()
    procs = []
    for i, url in enumerate(urls):
        folder = out / f"base-{i}"
        folder.mkdir(parents=True)
        procs.append(subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url, "-map", "0:v:0",
             "-c", "copy", "-an", "-f", "segment", "-segment_time", "10", "-segment_format", "mp4",
             "-reset_timestamps", "1", str(folder / "%06d.mp4")]))
    time.sleep(seconds)
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        p.wait(timeout=30)
    written = sum(f.stat().st_size for f in out.glob("base-*/*.mp4"))
    return _cpu_children() - before, written


async def recorder_phase(settings: Settings, cameras: list[tuple[str, str]], sim: CameraSimulator, seconds: float,
                         out: Path) -> dict[str, float]:
    pool = await create_pool(settings.database.department_dsn, min_size=2, max_size=10)
    tenant_id, site_id, department_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO departments (id, code, name) VALUES ($1, '977', 'bench')", department_id)
        await conn.execute("INSERT INTO tenants (id, department_id, kind, name) VALUES ($1, $2, 'epci', 'bench')",
                           tenant_id, department_id)
        await conn.execute("INSERT INTO sites (id, tenant_id, name, kind, insee_code) "
                           "VALUES ($1, $2, 'bench', 'other', '95127')", site_id, tenant_id)
        for name, url in cameras:
            await conn.execute("INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, insee_code) "
                               "VALUES ($1, $2, $3, $4, $5, '95127')", uuid.uuid4(), tenant_id, site_id, name, url)
    dvr = DvrSettings(spool_dir=out / "spool", lease_poll_s=1.0)
    store = FilesystemObjectStore(out / "objects")
    spool = Spool(dvr.spool_dir)
    submitted = 0

    async def publish(_event: Event) -> None:
        return None

    async def no_lock(_segment: object) -> None:
        return None

    uploader = SegmentUploader(store=store, pool=pool, spool=spool, recorder_id="bench", publish=publish,
                               retain_until=no_lock, high_water_bytes=dvr.spool_high_water_bytes)
    original_submit = uploader.submit

    async def counting_submit(segment: object, *, attempt: int = 0) -> None:
        nonlocal submitted
        submitted += 1
        await original_submit(segment, attempt=attempt)  # type: ignore[arg-type]

    uploader.submit = counting_submit  # type: ignore[method-assign]
    fleet = FleetRecorder(settings=dvr, pool=pool, uploader=uploader, spool=spool, publish=publish,
                          secret_box=SecretBox(settings.data_key.get_secret_value()), tenant_ids=[tenant_id])
    stop = asyncio.Event()
    cpu0, child0 = _cpu_self(), _cpu_children()
    task = asyncio.create_task(record_until(stop, fleet, uploader))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    cpu = (_cpu_self() - cpu0) + (_cpu_children() - child0)
    # Outage phase (not counted in CPU): kill and restart every camera, measure when recording resumes.
    stop2 = asyncio.Event()
    task2 = asyncio.create_task(record_until(stop2, fleet, uploader))
    await asyncio.sleep(15)
    restarts: dict[str, datetime] = {}
    for name, _ in cameras:
        sim.camera(name).kill()
    await asyncio.sleep(3)
    for name, _ in cameras:
        sim.camera(name).start()
        restarts[name] = datetime.now(UTC)
    await asyncio.sleep(25)
    stop2.set()
    await task2
    async with pool.acquire() as conn:
        indexed = await conn.fetchval("SELECT count(*) FROM recording_segments WHERE tenant_id = $1", tenant_id)
        resumes = []
        for name, _ in cameras:
            first = await conn.fetchval(
                "SELECT min(s.start_at) FROM recording_segments s JOIN cameras c ON c.id = s.camera_id "
                "WHERE c.name = $1 AND c.tenant_id = $2 AND s.start_at >= $3", name, tenant_id, restarts[name])
            resumes.append((first - restarts[name]).total_seconds() if first else float("inf"))
    await pool.close()
    resumes.sort()
    p99 = resumes[min(len(resumes) - 1, int(0.99 * len(resumes)))]
    return {"cpu_s": cpu, "segments_submitted": submitted, "segments_indexed": int(indexed),
            "resume_p99_s": p99, "resume_max_s": max(resumes)}


async def run(args: argparse.Namespace) -> dict[str, object]:
    name = f"vigie_bench_dvr_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="vigie-bench-dvr-") as tmp:
        base = Settings(var_dir=Path(tmp) / "var", database=DatabaseSettings(name=name))
        settings = await prepare_database(base)
        specs = [CameraSpec(f"bench-{i}", "bikes" if i % 2 else "vtest") for i in range(args.cameras)]
        sim = CameraSimulator(specs, cache_dir=CACHE)
        sim.start()
        try:
            cams = [(s.name, sim.camera(s.name).main_url) for s in specs]
            base_cpu, written = await asyncio.to_thread(baseline, [u for _, u in cams], args.seconds, Path(tmp))
            rec = await recorder_phase(settings, cams, sim, args.seconds, Path(tmp) / "rec")
        finally:
            sim.stop()
            admin = await asyncpg.connect(settings.database.admin_dsn.get_secret_value())
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    mbps = written * 8 / args.seconds / args.cameras / 1e6
    per_cam_core = rec["cpu_s"] / args.seconds / args.cameras
    per_cam_core_4mbps = per_cam_core * 4.0 / mbps if mbps else float("inf")
    return {
        "cpu_ratio_vs_ffmpeg": round(rec["cpu_s"] / base_cpu, 3) if base_cpu else None,
        "cameras_per_2_cores": int(2 * 0.75 / per_cam_core_4mbps) if per_cam_core_4mbps else None,
        "resume_p99_s": round(rec["resume_p99_s"], 2),
        "segments_lost": rec["segments_submitted"] - rec["segments_indexed"],
        "cameras": args.cameras, "seconds_per_phase": args.seconds, "stream_mbps_measured": round(mbps, 3),
        "cpu_core_fraction_per_camera": round(per_cam_core, 5),
        "baseline_cpu_s": round(base_cpu, 3), "recorder_cpu_s": round(rec["cpu_s"], 3),
        "resume_max_s": round(rec["resume_max_s"], 2),
        "method": "same streams, same run; cameras_per_2_cores extrapolated linearly to 4 Mbps at 75% of 2 cores",
        "measured_at": datetime.now(UTC).isoformat(), "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dvr")
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    result["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                      check=False).stdout.strip()
    out = ROOT / "results" / "dvr.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
