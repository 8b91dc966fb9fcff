"""DVR benchmark: CPU per camera of the real recorder process vs plain `ffmpeg -c copy -f segment`, same streams."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from camsim.simulator import CameraSimulator, CameraSpec
from cli.database import department_database
from core.embedded import NatsServerProcess
from core.migrate import drop_database, prepare_database
from core.objectstore import FilesystemObjectStore
from core.settings import DatabaseSettings, Settings

ROOT = Path(__file__).resolve().parent
CACHE = ROOT.parent / "var" / "camsim"
# A 1080p, 25 fps, 4 Mbit/s main stream: the R2 goal's camera, served from a pre-encoded clip.
FOOTAGE = "vtest-4mbps"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SEGMENT_S = 10
# Long enough for both sides to connect and finish their first segment.
WARMUP_S = 15.0
METHOD = (
    "Simulated cameras (camsim: a pre-encoded 1080p25 clip at about 4 Mbit/s, one RTSP server process per camera, "
    "not counted). Baseline and recorder record the same cameras at the same time in the same run. Baseline: one "
    "`ffmpeg -c copy -f segment` per camera. Recorder: the real `python -m dvr` entry point (leases, ffmpeg "
    "supervision, SHA-256, spool fsync, upload to the filesystem object store, segment index, NATS events, "
    "retention sweeper, alert-clip consumer) in a child process, counted with all its threads and ffmpeg children. "
    "cpu_ratio_vs_ffmpeg and cameras_per_2_cores use the steady window (after a 15 s warm-up, a whole number of "
    "10 s segments, read from /proc for both sides); cpu_ratio_vs_ffmpeg_whole_run counts each side from its "
    "start to its exit (wait4), recorder start-up (database, NATS, first sweep) and graceful drain included. "
    "cameras_per_2_cores = 75% of 2 cores / measured CPU per camera at the measured bitrate, no extrapolation in "
    "bitrate; the recorder's fixed cost is spread over this run's cameras only (conservative for more cameras). "
    "Postgres backend CPU of the recorder's sessions is reported apart (cpu_ratio_vs_ffmpeg_with_postgres)."
)


def _proc_cpu(pid: int, *, reaped: bool = True) -> float:
    """CPU seconds of a live process (utime, stime), plus those of the children it has reaped when asked."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15 if reaped else 13]) / CLOCK_TICKS


def _tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds so far of a live process alone, and of its children (reaped or live)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread just ended
            continue
        for child in children:
            try:
                total += _proc_cpu(int(child), reaped=False)
            except OSError:  # the child just ended (its CPU moves to the parent's reaped total)
                continue
    return own, total


def _reap(process: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Wait for `process` (killing it past the timeout); its CPU seconds, its reaped descendants' included."""
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            process.kill()
            deadline = float("inf")
        time.sleep(0.05)


class Baseline:
    """Plain ffmpeg segmenters, one per camera, with the flags of a minimal `-c copy` recording."""

    def __init__(self, urls: list[str], out: Path) -> None:
        self.out = out
        self.procs = []
        for i, url in enumerate(urls):
            folder = out / f"base-{i}"
            folder.mkdir(parents=True)
            self.procs.append(subprocess.Popen(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url, "-map", "0:v:0",
                 "-c", "copy", "-an", "-f", "segment", "-segment_time", "10", "-segment_format", "mp4",
                 "-reset_timestamps", "1", str(folder / "%06d.mp4")]))

    def cpu_now(self) -> float:
        return sum(_proc_cpu(p.pid, reaped=False) for p in self.procs)

    def stop(self) -> tuple[float, int]:
        """CPU seconds of the whole run, and bytes written."""
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        cpu = sum(_reap(p, 30) for p in self.procs)
        return cpu, sum(f.stat().st_size for f in self.out.glob("base-*/*.mp4"))


class RecorderProcess:
    """`python -m dvr` run as this module's child: imports first, then records when told to, until SIGTERM."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        with log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.dvr", "--recorder-child"], env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log_file, cwd=ROOT.parent)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"recorder child did not start; see {log_path}")
        self.started_cpu = 0.0
        self.terminated = False

    def go(self) -> None:
        assert self.process.stdin is not None
        self.started_cpu = _proc_cpu(self.process.pid)
        self.process.stdin.write(b"go\n")
        self.process.stdin.close()

    def cpu_now(self) -> tuple[float, float]:
        """CPU seconds so far of the Python process, and of its ffmpeg children."""
        return _tree_cpu(self.process.pid)

    def terminate(self) -> None:
        # Once only: after its event loop has closed, a second SIGTERM would kill the child before its report.
        if not self.terminated:
            self.terminated = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> tuple[float, dict[str, float]]:
        """SIGTERM, then wait for the graceful stop and drain; CPU seconds since go(), and their split."""
        assert self.process.stdout is not None
        self.terminate()
        report = self.process.stdout.read()
        cpu = _reap(self.process, 90) - self.started_cpu
        split = json.loads(report.strip().splitlines()[-1]) if report.strip() else {}
        return cpu, split


def recorder_child() -> None:
    import dvr.__main__ as recorder  # before "ready", so start-up imports are not counted as recording

    print("ready", flush=True)
    started = _own_cpu()
    sys.stdin.readline()
    asyncio.run(recorder.main())  # as `python -m dvr` runs it
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # How the recorder's CPU splits between this Python process and its ffmpeg children.
    print(json.dumps({"python_cpu_s": _own_cpu() - started,
                      "ffmpeg_cpu_s": children.ru_utime + children.ru_stime}), flush=True)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _backend_cpu(admin: asyncpg.Connection, database: str) -> dict[int, float]:
    rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
    out = {}
    for row in rows:
        try:
            out[row["pid"]] = _proc_cpu(row["pid"], reaped=False)
        except OSError:  # a remote server, or a session that just ended
            continue
    return out


async def seed(settings: Settings, cameras: list[tuple[str, str]]) -> uuid.UUID:
    tenant_id, site_id, department_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with department_database(settings) as db, db.cross_tenant("bench setup") as conn:
        await conn.execute("INSERT INTO departments (id, code, name) VALUES ($1, '977', 'bench')", department_id)
        await conn.execute("INSERT INTO tenants (id, department_id, kind, name) VALUES ($1, $2, 'epci', 'bench')",
                           tenant_id, department_id)
        await conn.execute("INSERT INTO sites (id, tenant_id, name, kind, insee_code) "
                           "VALUES ($1, $2, 'bench', 'other', '95127')", site_id, tenant_id)
        for name, url in cameras:
            camera_id = uuid.uuid4()
            await conn.execute("INSERT INTO cameras (id, tenant_id, site_id, name, main_stream_url, insee_code) "
                               "VALUES ($1, $2, $3, $4, $5, '95127')", camera_id, tenant_id, site_id, name, url)
            # Recorded only under a current prefectoral authorisation.
            await conn.execute(
                "INSERT INTO camera_authorisations (id, tenant_id, camera_id, prefectoral_order_number, purposes, "
                "max_retention_days, valid_from, valid_until) VALUES ($1, $2, $3, 'AP-bench', ARRAY['voie publique'], "
                "30, paris_today() - 1, paris_today() + 365)", uuid.uuid4(), tenant_id, camera_id)
    return tenant_id


def recorder_env(settings: Settings, work: Path, nats_url: str, tenant_id: uuid.UUID) -> dict[str, str]:
    db = settings.database
    return {
        **os.environ,
        "VIGIE_VAR_DIR": str(work / "var"), "VIGIE_DATABASE__NAME": db.name, "VIGIE_DATABASE__HOST": db.host,
        "VIGIE_DATABASE__PORT": str(db.port), "VIGIE_NATS__URL": nats_url, "VIGIE_NATS__EMBEDDED": "false",
        "VIGIE_OBJECTSTORE_BACKEND": "fs", "VIGIE_OBJECTSTORE_ROOT": str(work / "objects"),
        "VIGIE_DVR_SPOOL_DIR": str(work / "spool"), "VIGIE_DVR_TENANT_IDS": json.dumps([str(tenant_id)]),
    }


async def measured_phase(settings: Settings, env: dict[str, str], urls: list[str], seconds: float,
                         warmup_s: float, work: Path) -> dict[str, float]:
    """Baseline and recorder record the same cameras at the same time for `seconds`, then stop gracefully
    (the recorder alone when `urls` is empty: a density check without the baseline's load on the box).

    CPU is taken twice: over the whole run (start to exit, each side's start-up and stop included) and over a
    steady window that starts after `warmup_s` and lasts a whole number of segments, so that every camera finishes
    the same number of segments inside it.
    """
    window_s = (seconds - warmup_s) // SEGMENT_S * SEGMENT_S
    if window_s <= 0:
        raise ValueError(f"--seconds must exceed the {warmup_s:.0f} s warm-up by one segment at least")
    admin = await asyncpg.connect(settings.database.admin_dsn.get_secret_value())
    try:
        recorder = await asyncio.to_thread(RecorderProcess, env, work / "recorder.log")
        base = Baseline(urls, work)
        recorder.go()
        await asyncio.sleep(warmup_s)
        base0, rec0, backends0 = base.cpu_now(), recorder.cpu_now(), await _backend_cpu(admin, settings.database.name)
        await asyncio.sleep(window_s)
        base1, rec1, backends1 = base.cpu_now(), recorder.cpu_now(), await _backend_cpu(admin, settings.database.name)
        await asyncio.sleep(seconds - warmup_s - window_s)
        recorder.terminate()
        base_cpu, written = await asyncio.to_thread(base.stop)
        rec_cpu, split = await asyncio.to_thread(recorder.stop)
    finally:
        await admin.close()
    postgres = sum(v - backends0.get(pid, 0.0) for pid, v in backends1.items())
    return {"base_cpu_s": base_cpu, "written": written, "cpu_s": rec_cpu, "window_s": window_s,
            "base_window_cpu_s": base1 - base0, "window_cpu_s": sum(rec1) - sum(rec0),
            "python_window_cpu_s": rec1[0] - rec0[0], "ffmpeg_window_cpu_s": rec1[1] - rec0[1],
            "postgres_window_cpu_s": postgres,
            "exit_code": float(recorder.process.returncode or 0),
            "python_cpu_s": split.get("python_cpu_s", -1.0), "ffmpeg_cpu_s": split.get("ffmpeg_cpu_s", -1.0)}


async def outage_phase(settings: Settings, env: dict[str, str], sim: CameraSimulator, names: list[str],
                       tenant_id: uuid.UUID, work: Path) -> list[float]:
    """Not counted in CPU: every camera is killed and restarted; seconds until each one records again."""
    recorder = await asyncio.to_thread(RecorderProcess, env, work / "recorder-outage.log")
    recorder.go()
    await asyncio.sleep(15)
    restarts: dict[str, datetime] = {}
    for name in names:
        sim.camera(name).kill()
    await asyncio.sleep(3)
    for name in names:
        sim.camera(name).start()
        restarts[name] = datetime.now(UTC)
    await asyncio.sleep(25)
    await asyncio.to_thread(recorder.stop)
    resumes = []
    async with department_database(settings) as db, db.cross_tenant("bench setup") as conn:
        for name in names:
            first = await conn.fetchval(
                "SELECT min(s.start_at) FROM recording_segments s JOIN cameras c ON c.id = s.camera_id "
                "WHERE c.name = $1 AND c.tenant_id = $2 AND s.start_at >= $3", name, tenant_id, restarts[name])
            resumes.append((first - restarts[name]).total_seconds() if first else float("inf"))
    return sorted(resumes)


async def audit(settings: Settings, tenant_id: uuid.UUID, work: Path, measured_from: datetime,
                measured_to: datetime) -> dict[str, float]:
    """Segments lost: committed to the spool but never uploaded after a graceful stop, or indexed without their
    object in the store (or with another size); plus gap rows opened inside the measured phase."""
    store = FilesystemObjectStore(work / "objects")
    async with department_database(settings) as db, db.cross_tenant("bench setup") as conn:
        rows = await conn.fetch("SELECT object_key, version_id, size_bytes, start_at, end_at "
                                "FROM recording_segments WHERE tenant_id = $1", tenant_id)
        gaps = await conn.fetchval(
            "SELECT count(*) FROM recording_gaps WHERE tenant_id = $1 AND start_at > $2 AND end_at < $3",
            tenant_id, measured_from, measured_to)
    missing = 0
    for row in rows:
        try:
            info = await store.stat(tenant_id, row["object_key"], version_id=row["version_id"])
        except Exception:  # any failure to find the object counts it as lost
            missing += 1
            continue
        missing += info.size != row["size_bytes"]
    spooled = len(list((work / "spool").glob("*/*/*.json")))
    seconds = sum((r["end_at"] - r["start_at"]).total_seconds() for r in rows)
    bits = sum(r["size_bytes"] for r in rows) * 8
    return {"recorded_mbps": bits / seconds / 1e6 if seconds else 0.0,
            "segments_indexed": len(rows), "segments_missing_from_store": missing,
            "segments_left_in_spool": spooled, "gaps_in_measured_phase": int(gaps)}


async def run(args: argparse.Namespace) -> dict[str, object]:
    name = f"vigie_bench_dvr_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="vigie-bench-dvr-") as tmp:
        work = Path(tmp)
        base = Settings(var_dir=work / "var", database=DatabaseSettings(name=name))
        settings = await prepare_database(base)
        specs = [CameraSpec(f"bench-{i}", FOOTAGE) for i in range(args.cameras)]
        sim = CameraSimulator(specs, cache_dir=CACHE)
        nats = NatsServerProcess(store_dir=work / "nats")
        sim.start()
        nats_url = nats.start()
        try:
            cams = [(s.name, sim.camera(s.name).main_url) for s in specs]
            tenant_id = await seed(settings, cams)
            env = recorder_env(settings, work, nats_url, tenant_id)
            measured_from = datetime.now(UTC)
            baseline_urls = [] if args.no_baseline else [u for _, u in cams]
            rec = await measured_phase(settings, env, baseline_urls, args.seconds, WARMUP_S, work)
            measured_to = datetime.now(UTC)
            resumes = await outage_phase(settings, env, sim, [n for n, _ in cams], tenant_id, work)
            audited = await audit(settings, tenant_id, work, measured_from, measured_to)
        finally:
            sim.stop()
            nats.stop()
            await drop_database(settings)
    mbps = audited.pop("recorded_mbps")
    window, base_window, rec_window = rec["window_s"], rec["base_window_cpu_s"], rec["window_cpu_s"]
    per_cam_core = rec_window / window / args.cameras
    p99 = resumes[min(len(resumes) - 1, int(0.99 * len(resumes)))]
    return {
        "cpu_ratio_vs_ffmpeg": round(rec_window / base_window, 3) if base_window else None,
        "cameras_per_2_cores": int(2 * 0.75 / per_cam_core) if per_cam_core else None,
        "resume_p99_s": round(p99, 2),
        "segments_lost": audited["segments_missing_from_store"] + audited["segments_left_in_spool"],
        "cpu_ratio_vs_ffmpeg_whole_run": round(rec["cpu_s"] / rec["base_cpu_s"], 3) if rec["base_cpu_s"] else None,
        "cpu_ratio_vs_ffmpeg_with_postgres": round((rec_window + rec["postgres_window_cpu_s"]) / base_window, 3)
        if base_window else None,
        "cameras": args.cameras, "seconds_per_phase": args.seconds, "steady_window_s": window,
        "footage": FOOTAGE, "stream_mbps_measured": round(mbps, 3),
        "cpu_core_fraction_per_camera": round(per_cam_core, 5),
        # The R2 check measured directly when the run has that many cameras: the recorder's share of two cores.
        "recorder_share_of_2_cores": round(rec_window / window / 2, 4),
        "baseline_cpu_core_fraction_per_camera": round(base_window / window / args.cameras, 5) if base_window else None,
        "baseline_window_cpu_s": round(base_window, 3), "recorder_window_cpu_s": round(rec_window, 3),
        "recorder_python_window_cpu_s": round(rec["python_window_cpu_s"], 3),
        "recorder_ffmpeg_window_cpu_s": round(rec["ffmpeg_window_cpu_s"], 3),
        "postgres_backend_window_cpu_s": round(rec["postgres_window_cpu_s"], 3),
        "baseline_whole_run_cpu_s": round(rec["base_cpu_s"], 3), "recorder_whole_run_cpu_s": round(rec["cpu_s"], 3),
        "recorder_python_whole_run_cpu_s": round(rec["python_cpu_s"], 3),
        "recorder_ffmpeg_whole_run_cpu_s": round(rec["ffmpeg_cpu_s"], 3),
        "recorder_exit_code": int(rec["exit_code"]),
        "resume_max_s": round(resumes[-1], 2), **audited,
        "method": METHOD,
        "measured_at": datetime.now(UTC).isoformat(), "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dvr")
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-baseline", action="store_true",
                        help="record with the recorder alone (density check at many cameras; no ratio)")
    parser.add_argument("--recorder-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.recorder_child:
        recorder_child()
        return
    result = asyncio.run(run(args))
    result["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                      check=False).stdout.strip()
    out = ROOT / "results" / "dvr.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
