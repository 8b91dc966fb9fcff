"""The Helm chart, rendered: a workload per process, autoscaling, disruption budgets, the migration hook, secrets
from external-secrets, and the monitoring objects carrying the very rules and dashboards of the repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import PROJECT_ROOT

CHART = PROJECT_ROOT / "infra" / "helm" / "vigie"
HELM = PROJECT_ROOT / "var" / "deploy-tools" / "bin" / "helm"
PROCESSES = {"api", "live", "inference", "inference-gpu", "alerts", "mobile-push", "dvr"}


def render(*settings: str) -> list[dict[str, Any]]:
    assert HELM.exists(), "helm missing: `bash scripts/deploy-tools.sh` (make check-deploy) installs it under var/"
    arguments = [str(HELM), "template", "vigie", str(CHART), "--namespace", "vigie"]
    for setting in settings:
        arguments += ["--set", setting]
    rendered = subprocess.run(arguments, capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render("ingress.enabled=true")


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def component(manifest: dict[str, Any]) -> str:
    return str(manifest["metadata"]["labels"]["app.kubernetes.io/component"])


def test_each_process_runs_as_python_m_its_module_hardened(manifests: list[dict[str, Any]]) -> None:
    workloads = [m for m in manifests if m["kind"] in ("Deployment", "StatefulSet")]
    assert {component(w) for w in workloads} == PROCESSES
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"][:2] == ["python", "-m"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert "metrics" in {p["name"] for p in container["ports"]}
        assert container["resources"]["limits"]
        assert container["livenessProbe"]
        assert container["readinessProbe"]
        # Its own secrets only, and the shared configuration.
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"vigie-config", f"vigie-{component(workload).removesuffix('-gpu')}-secrets"}
    assert of_kind(manifests, "StatefulSet")["vigie-dvr"]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == \
        "spool"
    gpu = of_kind(manifests, "Deployment")["vigie-inference-gpu"]["spec"]["template"]["spec"]["containers"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "deepstream" in gpu["image"]


def test_the_api_and_the_detectors_autoscale_and_every_process_has_a_disruption_budget(
        manifests: list[dict[str, Any]]) -> None:
    assert {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(manifests, "HorizontalPodAutoscaler").values()} == \
        {"vigie-api", "vigie-inference", "vigie-inference-gpu"}
    budgets = of_kind(manifests, "PodDisruptionBudget").values()
    assert {component(b) for b in budgets} == PROCESSES
    assert all(b["spec"]["maxUnavailable"] == 1 for b in budgets)


def test_migrations_and_bus_provisioning_run_as_hooks_and_billing_monthly(manifests: list[dict[str, Any]]) -> None:
    jobs = {job["spec"]["template"]["spec"]["containers"][0]["args"][1]: job
            for job in of_kind(manifests, "Job").values()}
    assert set(jobs) == {"migrate", "bus"}
    assert all(job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade" for job in jobs.values())
    assert jobs["migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["vigie", "migrate"]
    provision = jobs["bus"]["spec"]["template"]["spec"]["containers"][0]
    assert provision["args"] == ["vigie", "bus", "provision"]
    assert {"name": "VIGIE_NATS__USER", "value": "admin"} in provision["env"]
    cron = of_kind(manifests, "CronJob")["vigie-billing-run"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert "vigie billing run --month" in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
        "args"][-1]


def test_secrets_come_from_external_secrets_one_per_process(manifests: list[dict[str, Any]]) -> None:
    external = of_kind(manifests, "ExternalSecret")
    assert {"vigie-api-secrets", "vigie-dvr-secrets", "vigie-inference-secrets", "vigie-alerts-secrets",
            "vigie-mobile-push-secrets", "vigie-live-secrets", "vigie-billing-secrets", "vigie-migrate-secrets",
            "vigie-bus-provision-secrets",
            "vigie-fcm-service-account", "vigie-nats-users", "vigie-pg-backup-s3"} <= set(external)
    api = {d["secretKey"] for d in external["vigie-api-secrets"]["spec"]["data"]}
    assert "VIGIE_DATABASE__DEPARTMENT_PASSWORD" not in api
    assert not of_kind(manifests, "Secret"), "no Secret is written by the chart itself"


def test_network_policies_deny_by_default(manifests: list[dict[str, Any]]) -> None:
    policies = of_kind(manifests, "NetworkPolicy")
    deny = policies["vigie-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    assert policies["vigie-public"]["spec"]["podSelector"]["matchExpressions"][0]["values"] == ["api", "live"]


def test_monitoring_ships_the_repository_rules_and_dashboards(manifests: list[dict[str, Any]]) -> None:
    (rule,) = of_kind(manifests, "PrometheusRule").values()
    rules_file = yaml.safe_load((CHART / "files" / "alerting-rules.yml").read_text())
    assert rule["spec"]["groups"] == rules_file["groups"]
    dashboards = of_kind(manifests, "ConfigMap")["vigie-dashboards"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted(Path(CHART / "dashboards").glob("*.json"))
    assert sorted(dashboards["data"]) == [f.name for f in files]
    for file in files:
        assert json.loads(dashboards["data"][file.name]) == json.loads(file.read_text())
    (monitor,) = of_kind(manifests, "ServiceMonitor").values()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    metrics_services = [s for s in of_kind(manifests, "Service").values()
                        if s["metadata"]["labels"].get("vigie.fr/metrics") == "true"]
    assert {component(s) for s in metrics_services} == PROCESSES


def test_a_process_turned_off_renders_nothing() -> None:
    names = {m["metadata"]["name"] for m in render("processes.inference-gpu.enabled=false")}
    assert not {n for n in names if n.startswith("vigie-inference-gpu")}
    assert "vigie-inference" in names
