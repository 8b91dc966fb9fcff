"""Faults of the issue with real processes: the object store down under recording, a recorder killed with -9."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx2
import pytest
from prometheus_client import CollectorRegistry

from camsim.simulator import CameraSimulator
from core.db import Database
from core.objectstore_s3 import S3ObjectStore
from core.ports import free_port
from core.settings import Settings
from dvr.metrics import RecorderCollector
from dvr.model import GapCause
from dvr.repository import DvrRepository
from dvr.uploader import Spool
from tests.dvr.conftest import World
from tests.dvr.harness import fast_settings, object_sha256, segments, start_recorder, wait_for
from tests.dvr.s3servers import CephRgw

pytestmark = pytest.mark.integration

OUTAGE_S = 90.0


async def _indexed_count(pool: asyncpg.Pool, tenant_id: uuid.UUID) -> int:
    async with pool.acquire() as conn:
        value: int = await conn.fetchval("SELECT count(*) FROM recording_segments WHERE tenant_id = $1", tenant_id)
    return value


@pytest.mark.ceph
async def test_object_store_outage_loses_no_segment(
        settings: Settings, department_pool: asyncpg.Pool, database: Database, camera_simulator: CameraSimulator,
        world: World, ceph_rgw: CephRgw, tmp_path: Path) -> None:
    """Two cameras record into Ceph RGW; its S3 gateway process is killed for 90 s (the cluster behind it keeps
    its data, as a MinIO outage does) while the recorder keeps running, then started again. Every segment recorded
    during the outage is uploaded and indexed with its SHA-256, nothing is left in the spool and no gap is written.
    The whole test takes about two minutes (plus about 15 s to start Ceph when no earlier test did)."""
    tenant_id, site_id = await world.tenant()
    cameras = [await world.camera(camera_simulator.camera(name).main_url, tenant_id=tenant_id, site_id=site_id)
               for name in ("vtest", "bikes")]
    store = S3ObjectStore(ceph_rgw.endpoint, access_key=ceph_rgw.access_key, secret_key=ceph_rgw.secret_key,
                          secure=False)
    dvr = fast_settings(tmp_path / "spool")
    spool = Spool(dvr.spool_dir)
    loop = asyncio.get_running_loop()
    rec = start_recorder(settings, dvr, database, store, [tenant_id])
    # What `python -m dvr` serves on /metrics and the spool-growing alert watches.
    metrics = CollectorRegistry()
    metrics.register(RecorderCollector(rec.fleet, rec.uploader))
    gateway_down = False
    try:
        async def recording() -> bool:
            counts = [len(await segments(department_pool, c)) for c in cameras]
            return all(n >= 2 for n in counts)
        await wait_for(recording, 60, "two uploaded segments per camera before the outage")

        await asyncio.to_thread(ceph_rgw.stop_gateway)
        gateway_down = True
        down_at, down_t = datetime.now(UTC), loop.time()
        # An upload already on the wire when the gateway died may still be indexed in the next instants.
        await asyncio.sleep(3)
        indexed_early_in_outage = await _indexed_count(department_pool, tenant_id)
        await asyncio.sleep(OUTAGE_S - (loop.time() - down_t))
        indexed_late_in_outage = await _indexed_count(department_pool, tenant_id)
        stranded = [s for s in await asyncio.to_thread(spool.pending) if s.tenant_id == tenant_id]
        failures_during_outage = rec.uploader.failures
        spool_bytes_in_outage = metrics.get_sample_value("vigie_dvr_spool_bytes") or 0
        oldest_pending_in_outage = metrics.get_sample_value("vigie_dvr_oldest_pending_segment_seconds") or 0
        failures_metric_in_outage = metrics.get_sample_value("vigie_dvr_upload_failures_total") or 0

        await asyncio.to_thread(ceph_rgw.start_gateway)
        gateway_down = False
        up_at, up_t = datetime.now(UTC), loop.time()
        outage_s = up_t - down_t

        async def caught_up() -> bool:
            async with department_pool.acquire() as conn:
                rows = await conn.fetch("SELECT camera_id, start_at FROM recording_segments WHERE tenant_id = $1",
                                        tenant_id)
            indexed = {(r["camera_id"], r["start_at"]) for r in rows}
            return all((s.camera_id, s.start_at) in indexed for s in stranded)
        await wait_for(caught_up, 60, "every segment spooled during the outage to be uploaded and indexed")
        catch_up_s = loop.time() - up_t

        async def recording_after() -> bool:
            per_camera = [await segments(department_pool, c) for c in cameras]
            return all(any(s.start_at >= up_at for s in segs) for segs in per_camera)
        await wait_for(recording_after, 30, "a segment of each camera recorded after the store came back")
        oldest_pending_after = metrics.get_sample_value("vigie_dvr_oldest_pending_segment_seconds") or 0
    finally:
        if gateway_down:
            await asyncio.to_thread(ceph_rgw.start_gateway)
        await rec.close()

    # The store really was down: uploads failed and nothing reached the index while it was.
    assert failures_during_outage > 0
    # The metrics showed it: the spool held the stranded segments, the oldest waiting since about the outage's start;
    # once the store was back, nothing waited long.
    assert failures_metric_in_outage == failures_during_outage
    # (One segment may sit on disk a moment before the uploader is handed it.)
    sizes = [s.size for s in stranded]
    assert spool_bytes_in_outage >= sum(sizes) - max(sizes)
    assert oldest_pending_in_outage >= OUTAGE_S - 15
    assert oldest_pending_after < 15
    assert indexed_late_in_outage == indexed_early_in_outage
    # The recorder kept recording into the spool throughout the outage.
    expected_per_camera = OUTAGE_S / dvr.segment_s
    for camera_id in cameras:
        during = [s for s in stranded if s.camera_id == camera_id and s.start_at >= down_at]
        assert len(during) >= 0.8 * expected_per_camera, (
            f"camera {camera_id}: {len(during)} segments spooled during a {outage_s:.0f} s outage")

    repo = DvrRepository()
    by_key = {}
    for camera_id in cameras:
        segs = await segments(department_pool, camera_id)
        by_key.update({(s.camera_id, s.start_at): s for s in segs})
        # Contiguous recording from before the outage to after it: no hole, no gap row.
        assert segs[0].end_at <= down_at
        assert segs[-1].start_at >= up_at
        holes = [(a.end_at, b.start_at) for a, b in itertools.pairwise(segs)
                 if (b.start_at - a.end_at).total_seconds() > dvr.gap_tolerance_s]
        assert holes == [], f"camera {camera_id}: unrecorded intervals {holes}"
        async with department_pool.acquire() as conn:
            gaps = await repo.gaps_between(conn, camera_id, segs[0].start_at, segs[-1].end_at)
        assert gaps == [], f"camera {camera_id}: gap rows {gaps}"
        # What the store holds is, byte for byte, what the index says.
        for s in segs:
            assert await object_sha256(store, tenant_id, s) == s.sha256

    # 0 segments lost: each one spooled during the outage is indexed with the hash and size it was recorded with.
    lost = [s for s in stranded if (s.camera_id, s.start_at) not in by_key]
    assert lost == []
    for s in stranded:
        row = by_key[(s.camera_id, s.start_at)]
        assert (row.sha256, row.size_bytes, row.object_key) == (s.sha256, s.size, s.object_key)
    # The spool drained.
    assert sorted(p.name for p in dvr.spool_dir.rglob("*") if p.is_file()) == []
    print(f"store outage: {outage_s:.0f} s, {len(stranded)} segments spooled, {failures_during_outage} failed "
          f"uploads, all indexed {catch_up_s:.1f} s after the store came back")


def _recorder_env(settings: Settings, tenant_id: uuid.UUID, objects: Path, spool: Path, ttl_s: float,
                  poll_s: float, segment_s: int) -> dict[str, str]:
    return {
        **os.environ,
        "VIGIE_ENVIRONMENT": "test",
        "VIGIE_LOG_LEVEL": "INFO",
        "VIGIE_DATA_KEY": settings.data_key.get_secret_value(),
        "VIGIE_DATABASE__NAME": settings.database.name,
        "VIGIE_DATABASE__HOST": settings.database.host,
        "VIGIE_DATABASE__PORT": str(settings.database.port),
        "VIGIE_NATS__URL": settings.nats.url,
        "VIGIE_OBJECTSTORE_BACKEND": "fs",
        "VIGIE_OBJECTSTORE_ROOT": str(objects),
        "VIGIE_DVR_TENANT_IDS": json.dumps([str(tenant_id)]),
        "VIGIE_DVR_SPOOL_DIR": str(spool),
        "VIGIE_DVR_SEGMENT_S": str(segment_s),
        "VIGIE_DVR_LEASE_TTL_S": str(ttl_s),
        "VIGIE_DVR_LEASE_POLL_S": str(poll_s),
        "VIGIE_DVR_BACKOFF_CAP_S": "2",
        "VIGIE_DVR_SWEEP_INTERVAL_S": "3600",
    }


async def _leases(pool: asyncpg.Pool, tenant_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Camera -> pid of the live lease holder."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT l.camera_id, i.pid FROM recorder_leases l JOIN recorder_instances i ON i.id = l.holder "
            "WHERE l.tenant_id = $1 AND l.expires_at >= now()", tenant_id)
    return {r["camera_id"]: r["pid"] for r in rows}


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (the dead recorder's ffmpeg children, if any)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


async def test_kill_9_of_a_recorder_hands_its_cameras_over(
        settings: Settings, department_pool: asyncpg.Pool, camera_simulator: CameraSimulator, world: World,
        tmp_path: Path) -> None:
    """Two `python -m dvr` processes share four cameras by lease (TTL 3 s, poll 0.5 s); one is killed with
    SIGKILL. The other holds all its cameras and has indexed a new segment of each within a few seconds of the
    lease TTL; the interval lost to the crash is a `recorder_failover` gap row."""
    ttl_s, poll_s, segment_s = 3.0, 0.5, 2
    tenant_id, site_id = await world.tenant()
    urls = [camera_simulator.camera(name).main_url for name in ("vtest", "bikes", "vtest", "bikes")]
    cameras = [await world.camera(url, tenant_id=tenant_id, site_id=site_id) for url in urls]
    processes: dict[int, asyncio.subprocess.Process] = {}
    spools: dict[int, Path] = {}
    logs: list[Path] = []
    metrics_ports: list[int] = []
    loop = asyncio.get_running_loop()
    try:
        for n in range(2):
            spool, log = tmp_path / f"spool-{n}", tmp_path / f"dvr-{n}.log"
            env = _recorder_env(settings, tenant_id, tmp_path / "objects", spool, ttl_s, poll_s, segment_s)
            metrics_ports.append(free_port())
            env["VIGIE_DVR_METRICS_ADDRESS"] = f"127.0.0.1:{metrics_ports[-1]}"
            with log.open("wb") as out:
                p = await asyncio.create_subprocess_exec(sys.executable, "-m", "dvr", env=env, stdout=out,
                                                         stderr=asyncio.subprocess.STDOUT)
            processes[p.pid], spools[p.pid] = p, spool
            logs.append(log)

        async def shared_and_recording() -> bool:
            for p in processes.values():
                assert p.returncode is None, f"python -m dvr exited with {p.returncode}"
            leases = await _leases(department_pool, tenant_id)
            per_pid = [sum(1 for pid in leases.values() if pid == p) for p in processes]
            if set(leases) != set(cameras) or per_pid != [2, 2]:
                return False
            async with department_pool.acquire() as conn:
                recorded = await conn.fetch(
                    "SELECT DISTINCT s.camera_id FROM recording_segments s JOIN recorder_instances i "
                    "ON i.id = s.recorder_id WHERE s.tenant_id = $1", tenant_id)
            return {r["camera_id"] for r in recorded} == set(cameras)
        await wait_for(shared_and_recording, 90, "both recorders holding two cameras each and recording them")

        leases = await _leases(department_pool, tenant_id)
        victim_pid, survivor_pid = list(processes)
        victim_cameras = {c for c, pid in leases.items() if pid == victim_pid}
        async with department_pool.acquire() as conn:
            survivor_id = await conn.fetchval("SELECT id FROM recorder_instances WHERE pid = $1", survivor_pid)

        killed_at, killed_t = datetime.now(UTC), loop.time()
        processes[victim_pid].send_signal(signal.SIGKILL)
        await processes[victim_pid].wait()

        held_after_s: float | None = None
        resumed_after_s: dict[uuid.UUID, float] = {}
        while held_after_s is None or len(resumed_after_s) < len(victim_cameras):
            elapsed = loop.time() - killed_t
            assert elapsed < 60, (f"after 60 s the survivor holds {held_after_s is not None} and records "
                                  f"{len(resumed_after_s)}/{len(victim_cameras)} of the dead recorder's cameras")
            leases = await _leases(department_pool, tenant_id)
            if held_after_s is None and all(leases.get(c) == survivor_pid for c in victim_cameras):
                held_after_s = elapsed
            async with department_pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT DISTINCT camera_id FROM recording_segments WHERE camera_id = ANY ($1::uuid[]) "
                    "AND recorder_id = $2 AND start_at >= $3", list(victim_cameras), survivor_id, killed_at)
            for r in rows:
                resumed_after_s.setdefault(r["camera_id"], elapsed)
            await asyncio.sleep(0.1)
        takeover_s = max(held_after_s, *resumed_after_s.values())
        print(f"takeover: {takeover_s:.1f} s")
        print(f"leases held by the survivor after {held_after_s:.1f} s; new segment indexed per camera after "
              + ", ".join(f"{v:.1f} s" for v in sorted(resumed_after_s.values())))

        # SIGKILL gives no chance to clean up: the dead recorder's ffmpeg children must have died with it.
        orphans = _processes_mentioning(str(spools[victim_pid]))
        assert orphans == [], f"ffmpeg processes of the killed recorder still run: {orphans}"

        async def failover_gaps() -> bool:
            async with department_pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT camera_id FROM recording_gaps WHERE camera_id = ANY ($1::uuid[]) AND cause = $2 "
                    "AND start_at <= $3 AND end_at >= $3", list(victim_cameras), GapCause.RECORDER_FAILOVER.value,
                    killed_at)
            return {r["camera_id"] for r in rows} == victim_cameras
        await wait_for(failover_gaps, 10, "a recorder_failover gap row spanning the kill on each taken-over camera")
        assert processes[survivor_pid].returncode is None
        # The survivor's own /metrics: it records all four cameras now, none offline, and has uploaded segments.
        survivor_port = metrics_ports[list(processes).index(survivor_pid)]
        async with httpx2.AsyncClient(timeout=5) as http:
            scraped = (await http.get(f"http://127.0.0.1:{survivor_port}/metrics")).text
        samples = {line.split()[0]: float(line.split()[1]) for line in scraped.splitlines()
                   if line.startswith("vigie_dvr_")}
        assert samples["vigie_dvr_cameras_recording"] == 4
        assert samples["vigie_dvr_cameras_offline"] == 0
        assert samples["vigie_dvr_segments_uploaded_total"] > 0
    finally:
        for p in processes.values():
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
        for p in processes.values():
            try:
                await asyncio.wait_for(p.wait(), timeout=40)
            except TimeoutError:
                p.kill()
                await p.wait()
        for log in logs:
            print(f"--- {log.name} (tail)")
            print("\n".join(log.read_text(errors="replace").splitlines()[-15:]))

    # Lease expiry after at most TTL + one poll, then ffmpeg's connect and one segment: a few seconds of the TTL.
    limit_s = ttl_s + poll_s + segment_s + 3.0
    assert takeover_s <= limit_s, f"takeover: {takeover_s:.1f} s (limit {limit_s:.1f} s, lease TTL {ttl_s:.0f} s)"
