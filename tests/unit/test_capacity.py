"""`vigie capacity`: the arithmetic of nodes, storage and rates, the benchmark figures it reads, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cli.main
from cli.capacity import DEFAULTS, Demand, load_costs, plan, stored_bytes


@pytest.fixture(autouse=True)
def _leave_logging_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """cli.main configures logging on the stream pytest captures and then closes; the command logs nothing."""
    monkeypatch.setattr(cli.main, "configure_logging", lambda _level: None)


def main(argv: list[str]) -> int:
    return cli.main.main(argv)


def test_2000_cameras_at_4_mbits_for_30_days_store_about_2_6_petabytes() -> None:
    assert stored_bytes(2000, 4, 30) == 2000 * 500_000 * 86400 * 30
    result = plan(Demand(cameras=2000, bitrate_mbps=4, retention_days=30), DEFAULTS)
    requested = result.storage[0]
    assert requested.logical_pb == pytest.approx(2.592)
    # Erasure coding 4+2 stores one and a half times the data.
    assert requested.raw_pb == pytest.approx(2.592 * 1.5)
    by_label = {s.label: s for s in result.storage}
    assert by_label["main stream at half the bitrate"].logical_pb == pytest.approx(1.296)
    assert by_label["sub stream recorded instead"].logical_pb == pytest.approx(2.592 * 0.5 / 4)
    assert by_label["main stream, 7 days"].logical_pb == pytest.approx(2.592 * 7 / 30)
    assert result.ingest_gbps == pytest.approx(8.0)
    assert result.segments_per_s == pytest.approx(200)
    assert result.index_rows == 200 * 86400 * 30


def test_nodes_follow_the_per_camera_costs_with_headroom_and_a_spare() -> None:
    result = plan(Demand(cameras=2000, bitrate_mbps=4, retention_days=30, node_cores=16), DEFAULTS)
    nodes = {n.component: n.count for n in result.nodes}
    # 2000 cameras at 10.4 per core at 5 fps: 192 cores; 16-core nodes at 75 %: 17 nodes, plus one spare.
    assert nodes["detectors on CPU, busy scenes"] == 17 + 1
    # 163 cameras per GPU: 13 GPUs, plus one spare.
    assert nodes["detectors on GPU (one GPU each)"] == 13 + 1
    assert nodes["NATS JetStream"] == 3
    assert nodes["Postgres (CloudNativePG)"] == 3
    assert nodes["API"] >= 2
    # Recording is cheap on CPU (stream copy); 8 Gbit/s in and out sets the recorders at 2 + 1.
    assert nodes["recorders (python -m dvr)"] == 3
    # Twice the cameras: twice the detector cores.
    double = {n.component: n.count for n in plan(Demand(cameras=4000, bitrate_mbps=4, retention_days=30),
                                                  DEFAULTS).nodes}
    assert double["detectors on CPU, busy scenes"] == 33 + 1


def test_event_rates_come_from_the_per_camera_hit_rate_and_the_peak_factor() -> None:
    result = plan(Demand(cameras=3600, bitrate_mbps=4, retention_days=30, events_per_camera_hour=2,
                         peak_factor=5), DEFAULTS)
    assert result.events_per_s_mean == pytest.approx(2.0)
    assert result.events_per_s_peak == pytest.approx(10.0)


def test_costs_are_read_from_the_benchmark_results_when_present(tmp_path: Path) -> None:
    (tmp_path / "detector.json").write_text(json.dumps({"cameras_per_2_cores": 10.0}))
    (tmp_path / "gpu.json").write_text(json.dumps({"pipeline": [{"streams_at_5fps": 100}, {"streams_at_5fps": 200}]}))
    (tmp_path / "dvr.json").write_text("not json")
    costs = load_costs(tmp_path)
    assert costs.detector_cpu_cameras_per_core.value == 5.0
    assert "detector.json" in costs.detector_cpu_cameras_per_core.source
    assert costs.detector_gpu_cameras_per_gpu.value == 200
    # Unreadable or absent: the stated default, with its source.
    assert costs.recorder_core_per_camera == DEFAULTS.recorder_core_per_camera
    assert costs.recorder_core_per_camera.source.startswith("default:")
    result = plan(Demand(cameras=2000, bitrate_mbps=4, retention_days=30), costs)
    assert {n.component: n.count for n in result.nodes}["detectors on GPU (one GPU each)"] == 10 + 1


def test_the_command_prints_nodes_storage_rates_and_sources(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["capacity", "--cameras", "2000", "--bitrate-mbps", "4", "--retention-days", "30",
                 "--results", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "2.59" in out
    assert "sub stream recorded instead" in out
    assert "detectors on GPU" in out
    assert "NATS JetStream" in out
    assert "Postgres" in out
    assert "API" in out
    assert "detection events" in out
    assert "default: dvr.json" in out


def test_masked_cameras_add_their_re_encode_to_the_recorders(tmp_path: Path) -> None:
    plain = plan(Demand(cameras=2000, bitrate_mbps=4, retention_days=30), DEFAULTS)
    masked = plan(Demand(cameras=2000, bitrate_mbps=4, retention_days=30, masked_cameras=300), DEFAULTS)
    recorders = {n.component: n for n in masked.nodes}["recorders (python -m dvr)"]
    # 300 re-encodes at 0.334 cores each (100.2) on top of 2000 copies at 0.006 (12): 112.2 cores on 16-core nodes
    # at 75 %, 10 nodes and a spare, where the copies alone needed 2 + 1 (for their bandwidth).
    assert recorders.count == 10 + 1
    assert "112.2 cores of recording (100.2 of them re-encoding 300 masked cameras)" in recorders.detail
    assert {n.component: n.count for n in plain.nodes}["recorders (python -m dvr)"] == 3
    # The measured figure, when bench/results has one.
    (tmp_path / "masks.json").write_text(json.dumps({"masked_cpu_s_per_camera_second": 0.5}))
    costs = load_costs(tmp_path)
    assert costs.masked_recorder_core_per_camera.value == 0.5
    assert "masks.json" in costs.masked_recorder_core_per_camera.source


@pytest.mark.parametrize(("arguments", "message"), [
    (["--cameras", "10", "--bitrate-mbps", "4", "--retention-days", "30", "--masked-cameras", "11"],
     "--masked-cameras must be between 0 and --cameras"),
    (["--cameras", "0", "--bitrate-mbps", "4", "--retention-days", "30"], "--cameras must be at least 1"),
    (["--cameras", "10", "--bitrate-mbps", "-1", "--retention-days", "30"], "--bitrate-mbps"),
    (["--cameras", "10", "--bitrate-mbps", "4", "--retention-days", "31"], "CSI L252-5"),
    (["--cameras", "10", "--bitrate-mbps", "4", "--retention-days", "30", "--node-cores", "1"], "--node-cores"),
])
def test_bad_values_are_refused_with_a_clear_message(arguments: list[str], message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capacity", *arguments]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


@pytest.mark.parametrize("arguments", [
    ["--cameras", "many", "--bitrate-mbps", "4", "--retention-days", "30"],
    ["--bitrate-mbps", "4", "--retention-days", "30"],
    ["--cameras", "10", "--bitrate-mbps", "4", "--retention-days", "30", "--erasure-coding", "4x2"],
])
def test_malformed_arguments_are_usage_errors(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["capacity", *arguments])
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err
