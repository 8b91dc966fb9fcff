"""The Grafana dashboards and the alerting rules name only metrics the code exports; promtool checks the rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import types
import uuid
from pathlib import Path

import httpx2
import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry, Metric

import alerts.engine
import api.middleware
import core.bus
import core.db
import core.outbox
import dvr.uploader
import inference.metrics
import inference.publisher
import mobile_push.fcm
from core.metrics import parse_address, serve_metrics
from core.settings import PROJECT_ROOT
from dvr.metrics import RecorderCollector
from inference.metrics import QueueDepthCollector
from inference.portable import PortableBackend
from inference.settings import InferenceSettings
from live.hub import ViewerHub
from live.settings import LiveSettings

CHART = PROJECT_ROOT / "infra" / "helm" / "vigie"
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
RULES = CHART / "files" / "alerting-rules.yml"
RULE_TESTS = PROJECT_ROOT / "infra" / "prometheus" / "alerting-rules.test.yml"
# Metrics of the charts installed beside Vigie (CloudNativePG, cert-manager, kube-state-metrics) the rules watch.
EXTERNAL = {"cnpg_pg_replication_lag", "certmanager_certificate_expiration_timestamp_seconds",
            "kube_job_status_failed", "kube_cronjob_status_last_successful_time"}
_MODULES = (alerts.engine, api.middleware, core.bus, core.db, core.outbox, dvr.uploader, inference.metrics,
            inference.publisher, mobile_push.fcm)


def _sample_names(metric: Metric) -> set[str]:
    """The series names a scrape shows for a metric family."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created"), "gauge": ("",)}[metric.type]
    return {metric.name + suffix for suffix in suffixes}


def exported_series() -> set[str]:
    """Every series name the processes export: the modules' metrics and the collectors read at scrape time."""
    assert _MODULES
    fleet = types.SimpleNamespace(recorders={})
    uploader = types.SimpleNamespace(spooled_bytes=0, backlog=0, uploaded=0, failures=0,
                                     oldest_pending_end=lambda: None)
    collectors = [RecorderCollector(fleet, uploader),  # type: ignore[arg-type]
                  QueueDepthCollector(dict)]
    families: list[Metric] = [*REGISTRY.collect(), *ViewerHub(LiveSettings()).registry.collect()]
    for collector in collectors:
        families.extend(collector.collect())
    names: set[str] = set()
    for family in families:
        names |= _sample_names(family)
    return names


def _metric_names(expression: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', "", expression)
    return set(re.findall(r"\b(?:vigie|cnpg|certmanager|kube)_[a-z0-9_]+\b", without_strings))


def test_every_process_metric_of_the_issue_is_exported() -> None:
    names = exported_series()
    for wanted in ("vigie_dvr_upload_lag_seconds_bucket", "vigie_dvr_spool_bytes", "vigie_dvr_cameras_offline",
                   "vigie_dvr_segments_uploaded_total", "vigie_inference_frames_total",
                   "vigie_inference_batch_seconds_bucket", "vigie_inference_queue_depth",
                   "vigie_alerts_events_total", "vigie_alerts_batch_seconds_bucket", "vigie_bus_dead_lettered_total",
                   "vigie_push_send_seconds_bucket", "vigie_push_send_outcomes_total",
                   "vigie_api_request_duration_seconds_bucket"):
        assert wanted in names


def test_the_recorder_collector_reads_its_fleet_and_uploader() -> None:
    offline = types.SimpleNamespace(offline_since=object())
    recording = types.SimpleNamespace(offline_since=None)
    fleet = types.SimpleNamespace(recorders={1: (offline, None), 2: (recording, None), 3: (recording, None)})
    uploader = types.SimpleNamespace(spooled_bytes=12_345, backlog=4, uploaded=99, failures=2,
                                     oldest_pending_end=lambda: None)
    registry = CollectorRegistry()
    registry.register(RecorderCollector(fleet, uploader))  # type: ignore[arg-type]
    assert registry.get_sample_value("vigie_dvr_cameras_recording") == 3
    assert registry.get_sample_value("vigie_dvr_cameras_offline") == 1
    assert registry.get_sample_value("vigie_dvr_spool_bytes") == 12_345
    assert registry.get_sample_value("vigie_dvr_segments_uploaded_total") == 99
    assert registry.get_sample_value("vigie_dvr_oldest_pending_segment_seconds") == 0


def test_the_detector_queue_depth_is_counted_per_tenant() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    cameras = [uuid.uuid4() for _ in range(4)]
    backend = PortableBackend(types.SimpleNamespace(labels=()), types.SimpleNamespace(),  # type: ignore[arg-type]
                              InferenceSettings())
    backend.cameras = {cameras[0]: types.SimpleNamespace(tenant_id=first),  # type: ignore[dict-item]
                       cameras[1]: types.SimpleNamespace(tenant_id=first),
                       cameras[2]: types.SimpleNamespace(tenant_id=second),
                       cameras[3]: types.SimpleNamespace(tenant_id=second)}
    # Three frames wait for the detector; a camera removed meanwhile is not counted.
    backend._ready = dict.fromkeys([cameras[0], cameras[1], cameras[2], uuid.uuid4()])  # type: ignore[arg-type]
    assert backend.queue_depth_by_tenant() == {first: 2, second: 1}
    registry = CollectorRegistry()
    registry.register(QueueDepthCollector(backend.queue_depth_by_tenant))
    assert registry.get_sample_value("vigie_inference_queue_depth", {"tenant_id": str(first)}) == 2
    assert registry.get_sample_value("vigie_inference_queue_depth", {"tenant_id": str(second)}) == 1


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_each_dashboard_is_grafana_json_whose_panels_query_exported_metrics(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    assert dashboard["panels"]
    names = exported_series()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in dashboard["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            used = _metric_names(target["expr"])
            assert used, f"panel {panel['title']!r}: {target['expr']!r} names no Vigie metric"
            assert used <= names, f"panel {panel['title']!r} queries metrics no process exports: {used - names}"


def test_dashboards_are_all_found_and_their_uids_distinct() -> None:
    assert {p.stem for p in DASHBOARDS} >= {"recording", "detection", "alerts"}
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_alerting_rules_watch_exported_metrics_and_cover_the_issue() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}
    assert {"VigieCameraOffline", "VigieSpoolGrowing", "VigieDeadLettersGrowing", "VigiePushCredentialsFailing",
            "VigiePostgresReplicationLag", "VigieCertificateExpiresSoon"} <= set(rules)
    names = exported_series() | EXTERNAL
    for alert, expression in rules.items():
        used = _metric_names(expression)
        assert used, f"{alert} watches no metric"
        assert used <= names, f"{alert} watches unknown metrics: {used - names}"


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: Debian's prometheus package (scripts/apt-packages/deploy.txt)"
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                            check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_listener_serves_a_registry_on_the_configured_address() -> None:
    registry = CollectorRegistry()
    registry.register(QueueDepthCollector(lambda: {uuid.UUID(int=7): 3}))
    bound = serve_metrics("127.0.0.1:0", process="test", registry=registry)
    assert bound is not None
    host, port = bound
    text = httpx2.get(f"http://{host}:{port}/metrics", timeout=5).text
    assert 'vigie_inference_queue_depth{tenant_id="00000000-0000-0000-0000-000000000007"} 3.0' in text
    # The same port again: logged, not raised (the process's work matters more than its metrics).
    assert serve_metrics(f"127.0.0.1:{port}", process="test", registry=registry) is None
    assert serve_metrics("", process="test") is None


@pytest.mark.parametrize(("address", "expected"), [
    ("0.0.0.0:9103", ("0.0.0.0", 9103)), (":9104", ("127.0.0.1", 9104)), ("[::1]:9105", ("::1", 9105)),
])
def test_addresses_are_host_and_port(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["9103", "host:", "host:port", "host:70000"])
def test_a_malformed_address_is_refused_with_its_value(address: str) -> None:
    with pytest.raises(ValueError, match="is not host:port"):
        parse_address(address)
