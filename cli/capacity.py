"""`vigie capacity`: nodes, storage and event rates for a department's camera count, from the measured benchmarks."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import PROJECT_ROOT, Settings

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
# CSI L252-5: recordings are kept at most 30 days (the platform refuses a longer retention).
LEGAL_MAX_RETENTION_DAYS = 30
# Nodes run at this share of their cores at most: headroom for bursts, restarts and a recorder taking over a
# dead one's cameras.
TARGET_UTILISATION = 0.75
SEGMENT_S = 10
# One index row per segment (recording_segments: ids, key, hash, times), with its indexes.
SEGMENT_ROW_BYTES = 400
BYTES_PER_PB = 1e15


@dataclass(frozen=True)
class Cost:
    """One measured per-camera (or per-core) cost and where it comes from."""

    value: float
    source: str


@dataclass(frozen=True)
class Costs:
    """What one camera costs each component; each value is a benchmark figure (bench/results) or its default."""

    recorder_core_per_camera: Cost
    masked_recorder_core_per_camera: Cost
    detector_cpu_cameras_per_core: Cost
    detector_cpu_cameras_per_core_quiet: Cost
    detector_gpu_cameras_per_gpu: Cost
    alerts_events_per_s_per_core: Cost
    api_requests_per_s_per_core: Cost
    push_per_s: Cost


# Measured on the 2-core development machine (README, "Benchmarks and performance"), used when bench/results holds
# no fresher figure.
DEFAULTS = Costs(
    recorder_core_per_camera=Cost(2 * TARGET_UTILISATION / 250, "default: dvr.json, 248-260 cameras per 2 cores "
                                  "at 75 % (README benchmarks, 1080p25 at 4 Mbit/s)"),
    masked_recorder_core_per_camera=Cost(0.334, "default: masks.json, 0.334 CPU seconds per camera-second for a "
                                         "masked 1080p25 camera re-encoded (docs/masks.md, libx264 ultrafast)"),
    detector_cpu_cameras_per_core=Cost(20.8 / 2, "default: detector.json, 20.8 cameras per 2 cores at 5 fps with "
                                       "every frame detected (README benchmarks)"),
    detector_cpu_cameras_per_core_quiet=Cost(204 / 2, "default: detector.json, ≈ 204 cameras per 2 cores on quiet "
                                             "scenes, motion gating (README benchmarks)"),
    detector_gpu_cameras_per_gpu=Cost(816 / 5, "default: gpu.json, decode + inference 816 fps on one H200 "
                                      "= 163 streams at 5 fps (README, GPU)"),
    alerts_events_per_s_per_core=Cost(1868 / 2, "default: alerts.json, 1 868 events/s on 2 cores "
                                      "(README benchmarks)"),
    api_requests_per_s_per_core=Cost(1733, "default: api.json, 1 733 scoped requests/s on one core "
                                     "(README benchmarks)"),
    push_per_s=Cost(434, "default: push.json, 434 pushes/s per dispatcher (README benchmarks)"),
)


def _read(results: Path, name: str) -> dict[str, object] | None:
    path = results / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _number(data: dict[str, object] | None, key: str) -> float | None:
    value = data.get(key) if data is not None else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def load_costs(results: Path = RESULTS_DIR) -> Costs:
    """The per-camera costs measured in `results` (bench/results/*.json), each missing one taken from DEFAULTS."""
    costs = DEFAULTS
    dvr, detector, gpu = _read(results, "dvr"), _read(results, "detector"), _read(results, "gpu")
    masks = _read(results, "masks")
    alerts, api, push = _read(results, "alerts"), _read(results, "api"), _read(results, "push")
    found: dict[str, Cost] = {}
    if (v := _number(dvr, "cpu_core_fraction_per_camera")) is not None:
        found["recorder_core_per_camera"] = Cost(v, f"{results / 'dvr.json'}: cpu_core_fraction_per_camera")
    if (v := _number(masks, "masked_cpu_s_per_camera_second")) is not None:
        found["masked_recorder_core_per_camera"] = Cost(
            v, f"{results / 'masks.json'}: masked_cpu_s_per_camera_second")
    if (v := _number(detector, "cameras_per_2_cores")) is not None:
        found["detector_cpu_cameras_per_core"] = Cost(v / 2, f"{results / 'detector.json'}: cameras_per_2_cores / 2")
    if (v := _number(detector, "cameras_per_2_cores_quiet_scenes")) is not None:
        found["detector_cpu_cameras_per_core_quiet"] = Cost(
            v / 2, f"{results / 'detector.json'}: cameras_per_2_cores_quiet_scenes / 2")
    pipeline = gpu.get("pipeline") if gpu is not None else None
    if isinstance(pipeline, list):
        # The largest decode + inference run: streams it sustained at 5 fps.
        streams = [_number(entry, "streams_at_5fps") for entry in pipeline if isinstance(entry, dict)]
        if best := max((s for s in streams if s is not None), default=None):
            found["detector_gpu_cameras_per_gpu"] = Cost(best, f"{results / 'gpu.json'}: pipeline streams_at_5fps")
    if (v := _number(alerts, "events_per_s")) is not None:
        found["alerts_events_per_s_per_core"] = Cost(v / 2, f"{results / 'alerts.json'}: events_per_s / 2 cores")
    if (v := _number(api, "rps")) is not None:
        found["api_requests_per_s_per_core"] = Cost(v, f"{results / 'api.json'}: rps (server on one core)")
    if (v := _number(push, "pushes_per_s")) is not None:
        found["push_per_s"] = Cost(v, f"{results / 'push.json'}: pushes_per_s")
    return Costs(**{**costs.__dict__, **found})


@dataclass(frozen=True)
class Demand:
    """What the department asks for."""

    cameras: int
    bitrate_mbps: float
    retention_days: int
    sub_stream_mbps: float = 0.5
    # Cameras with privacy masks (CSI L251-3): their main stream is decoded and re-encoded, not copied.
    masked_cameras: int = 0
    node_cores: int = 16
    # Rule hits per camera and hour on a busy day, and the peak over the mean.
    events_per_camera_hour: float = 6.0
    peak_factor: float = 10.0
    operators: int = 30
    # Object-store protection: erasure coding data + parity chunks (rook-ceph RGW pool); 4+2 stores 1.5 times the data.
    ec_data_chunks: int = 4
    ec_parity_chunks: int = 2

    def __post_init__(self) -> None:
        problems = []
        if self.cameras < 1:
            problems.append("--cameras must be at least 1")
        if not 0 < self.bitrate_mbps <= 100:
            problems.append("--bitrate-mbps must be above 0 and at most 100")
        if not 0 < self.sub_stream_mbps <= 100:
            problems.append("--sub-stream-mbps must be above 0 and at most 100")
        if not 1 <= self.retention_days <= LEGAL_MAX_RETENTION_DAYS:
            problems.append(f"--retention-days must be between 1 and {LEGAL_MAX_RETENTION_DAYS} "
                            "(CSI L252-5: recordings are kept 30 days at most)")
        if not 0 <= self.masked_cameras <= self.cameras:
            problems.append("--masked-cameras must be between 0 and --cameras")
        if self.node_cores < 2:
            problems.append("--node-cores must be at least 2")
        if self.events_per_camera_hour < 0 or self.peak_factor < 1:
            problems.append("--events-per-camera-hour must be ≥ 0 and --peak-factor ≥ 1")
        if self.operators < 1:
            problems.append("--operators must be at least 1")
        if self.ec_data_chunks < 1 or self.ec_parity_chunks < 0:
            problems.append("--erasure-coding must be DATA+PARITY with DATA ≥ 1")
        if problems:
            raise ValueError("; ".join(problems))


def stored_bytes(cameras: int, mbps: float, days: float) -> float:
    """Bytes the recordings of `cameras` streams at `mbps` hold after `days` of continuous recording."""
    return cameras * mbps * 1e6 / 8 * 86400 * days


@dataclass(frozen=True)
class StorageOption:
    label: str
    mbps: float
    days: int
    logical_pb: float
    raw_pb: float


@dataclass(frozen=True)
class Nodes:
    component: str
    count: int
    detail: str


@dataclass(frozen=True)
class Plan:
    demand: Demand
    costs: Costs
    nodes: list[Nodes] = field(default_factory=list)
    storage: list[StorageOption] = field(default_factory=list)
    ingest_gbps: float = 0.0
    segments_per_s: float = 0.0
    index_rows: int = 0
    index_gb: float = 0.0
    events_per_s_mean: float = 0.0
    events_per_s_peak: float = 0.0


def _nodes_for(cores: float, node_cores: int, *, spare: int = 1, minimum: int = 1) -> int:
    """Nodes for `cores` of work at the target utilisation, plus `spare` to survive the loss of one."""
    return max(minimum, math.ceil(cores / (node_cores * TARGET_UTILISATION))) + spare


def plan(demand: Demand, costs: Costs) -> Plan:
    """The department's nodes, storage and rates (pure arithmetic: every input is in `demand` and `costs`)."""
    d, c = demand, costs
    expansion = (d.ec_data_chunks + d.ec_parity_chunks) / d.ec_data_chunks

    def option(label: str, mbps: float, days: int) -> StorageOption:
        logical = stored_bytes(d.cameras, mbps, days) / BYTES_PER_PB
        return StorageOption(label, mbps, days, logical, logical * expansion)

    storage = [
        option("requested (main stream)", d.bitrate_mbps, d.retention_days),
        option("main stream at half the bitrate", d.bitrate_mbps / 2, d.retention_days),
        option("sub stream recorded instead", d.sub_stream_mbps, d.retention_days),
        *(option(f"main stream, {days} days", d.bitrate_mbps, days)
          for days in (7, 15) if days < d.retention_days),
    ]
    # Measured at 4 Mbit/s; the recorder's work (copy, hash, upload) grows with the bytes.
    recorder_cores = d.cameras * c.recorder_core_per_camera.value * (d.bitrate_mbps / 4.0)
    # A masked camera's re-encode (measured on 1080p25) comes on top of its copy's share: hashing and uploading
    # stay, and the decode and encode cost far more.
    masked_cores = d.masked_cameras * c.masked_recorder_core_per_camera.value
    recorder_cores += masked_cores
    ingest_gbps = d.cameras * d.bitrate_mbps / 1000
    # A recorder node also takes its cameras' streams in and sends them to the store: 10 Gbit/s NICs kept at 40 %
    # each way.
    recorder_nodes = max(_nodes_for(recorder_cores, d.node_cores), math.ceil(ingest_gbps / 4.0) + 1)
    cpu_busy = d.cameras / c.detector_cpu_cameras_per_core.value
    cpu_quiet = d.cameras / c.detector_cpu_cameras_per_core_quiet.value
    gpus = math.ceil(d.cameras / c.detector_gpu_cameras_per_gpu.value) + 1
    mean = d.cameras * d.events_per_camera_hour / 3600
    peak = mean * d.peak_factor
    alerts_cores = peak / c.alerts_events_per_s_per_core.value
    # Operators' consoles: about 2 requests/s each with the live queue and playback, ten times that at an incident.
    api_cores = d.operators * 2 * 10 / c.api_requests_per_s_per_core.value
    segments_per_s = d.cameras / SEGMENT_S
    index_rows = int(segments_per_s * 86400 * d.retention_days)
    index_gb = index_rows * SEGMENT_ROW_BYTES / 1e9
    nodes = [
        Nodes("recorders (python -m dvr)", recorder_nodes,
              f"{recorder_cores:.1f} cores of recording ({masked_cores:.1f} of them re-encoding {d.masked_cameras} "
              f"masked cameras), {ingest_gbps:.1f} Gbit/s in and out; one node spare"),
        Nodes("detectors on CPU, busy scenes", _nodes_for(cpu_busy, d.node_cores),
              f"{cpu_busy:.0f} cores at 5 fps with every frame detected"),
        Nodes("detectors on CPU, quiet scenes", _nodes_for(cpu_quiet, d.node_cores),
              f"{cpu_quiet:.0f} cores with motion gating (typical street scenes at night)"),
        Nodes("detectors on GPU (one GPU each)", gpus,
              f"{c.detector_gpu_cameras_per_gpu.value:.0f} cameras per GPU at 5 fps; one GPU spare"),
        Nodes("alert engines and push dispatchers", _nodes_for(alerts_cores, d.node_cores, minimum=1),
              f"{alerts_cores:.2f} cores for {peak:.1f} events/s at peak; two copies of each for failover"),
        Nodes("NATS JetStream", 3, "three nodes (R3 streams, sync_interval always), whatever the size"),
        Nodes("Postgres (CloudNativePG)", 3,
              f"a primary and two standbys; {segments_per_s:.0f} index rows/s, {index_gb:.0f} GB of segment index"),
        Nodes("API", max(2, _nodes_for(api_cores, d.node_cores, spare=0)),
              f"{api_cores:.2f} cores for {d.operators} operators at an incident; two replicas at least"),
    ]
    return Plan(demand=d, costs=c, nodes=nodes, storage=storage, ingest_gbps=ingest_gbps,
                segments_per_s=segments_per_s, index_rows=index_rows, index_gb=index_gb, events_per_s_mean=mean,
                events_per_s_peak=peak)


def render(result: Plan) -> str:
    d = result.demand
    rows = f"{result.index_rows:,}".replace(",", " ")
    lines = [f"Capacity for {d.cameras} cameras at {d.bitrate_mbps:g} Mbit/s, {d.retention_days} days of retention "
             f"(nodes of {d.node_cores} cores at {TARGET_UTILISATION:.0%})", "", "Nodes"]
    lines += [f"  {n.component:<38} {n.count:>5}   {n.detail}" for n in result.nodes]
    ec = f"{d.ec_data_chunks}+{d.ec_parity_chunks}"
    lines += ["", f"Storage (object store with object lock; raw = erasure coding {ec})",
              f"  {'choice':<38} {'Mbit/s':>7} {'days':>5} {'stored PB':>10} {'raw PB':>8}"]
    lines += [f"  {s.label:<38} {s.mbps:>7g} {s.days:>5} {s.logical_pb:>10.2f} {s.raw_pb:>8.2f}"
              for s in result.storage]
    lines += ["", "Rates",
              f"  video in (cameras → recorders → store)  {result.ingest_gbps:.1f} Gbit/s",
              f"  segments indexed                         {result.segments_per_s:.0f} /s "
              f"({rows} rows over the retention, {result.index_gb:.0f} GB)",
              f"  detection events                         {result.events_per_s_mean:.1f} /s mean, "
              f"{result.events_per_s_peak:.1f} /s peak ({d.events_per_camera_hour:g} per camera and hour, "
              f"peak x{d.peak_factor:g})",
              "", "Per-camera costs used"]
    lines += [f"  {name.replace('_', ' '):<38} {cost.value:>9.4g}   {cost.source}"
              for name, cost in result.costs.__dict__.items()]
    return "\n".join(lines)


def _erasure(text: str) -> tuple[int, int]:
    data, sep, parity = text.partition("+")
    if not sep or not data.isdigit() or not parity.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not DATA+PARITY (e.g. 4+2)")
    return int(data), int(parity)


async def cmd_capacity(_settings: Settings, args: argparse.Namespace) -> int:
    try:
        demand = Demand(cameras=args.cameras, bitrate_mbps=args.bitrate_mbps, retention_days=args.retention_days,
                        sub_stream_mbps=args.sub_stream_mbps, masked_cameras=args.masked_cameras,
                        node_cores=args.node_cores,
                        events_per_camera_hour=args.events_per_camera_hour, peak_factor=args.peak_factor,
                        operators=args.operators, ec_data_chunks=args.erasure_coding[0],
                        ec_parity_chunks=args.erasure_coding[1])
    except ValueError as exc:
        print(f"capacity: {exc}", file=sys.stderr)
        return 2
    print(render(plan(demand, load_costs(args.results))))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("capacity", help="nodes, storage and event rates for a number of cameras")
    command.add_argument("--cameras", type=int, required=True)
    command.add_argument("--bitrate-mbps", type=float, required=True, help="main stream bitrate")
    command.add_argument("--retention-days", type=int, required=True, help=f"at most {LEGAL_MAX_RETENTION_DAYS}")
    command.add_argument("--sub-stream-mbps", type=float, default=0.5)
    command.add_argument("--masked-cameras", type=int, default=0,
                         help="cameras with privacy masks, re-encoded by the recorders (1080p25 on CPU)")
    command.add_argument("--node-cores", type=int, default=16)
    command.add_argument("--events-per-camera-hour", type=float, default=6.0)
    command.add_argument("--peak-factor", type=float, default=10.0)
    command.add_argument("--operators", type=int, default=30)
    command.add_argument("--erasure-coding", type=_erasure, default=(4, 2), help="DATA+PARITY, e.g. 4+2")
    command.add_argument("--results", type=Path, default=RESULTS_DIR, help="benchmark results folder")
    command.set_defaults(run=cmd_capacity)
