"""Audits the locked requirements for known vulnerabilities: pip-audit on the pins and hashes as written (no install).

pip-audit asks PyPI for the advisories of each pinned release (`/pypi/NAME/VERSION/json`). A PyPI mirror may serve
only the project pages (`/pypi/NAME/json`, whose advisories are those of the latest release): pip-audit then skips
every package. For those, this script reads the project page, so a pin that is the latest release is still audited;
the others are listed as not audited. Exit 1 on any vulnerability; with VIGIE_AUDIT_STRICT=1, also on any package
left unaudited (for a machine that reaches PyPI's full API or OSV).

    python scripts/audit.py requirements/dev.txt [more locks…]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from packaging.version import Version

# Advisories that do not apply to how Vigie uses the package, each with why. Never a blanket ignore: one ID a line.
IGNORED: dict[str, str] = {}

NOT_FOUND = "Dependency not found on PyPI"
PROJECT_URL = "https://pypi.org/pypi/{name}/json"


def pip_audit(locks: list[str]) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "pip_audit", "--disable-pip", "--progress-spinner", "off", "--format", "json"]
    for lock in locks:
        command += ["-r", lock]
    for advisory in IGNORED:
        command += ["--ignore-vuln", advisory]
    # Exit 1 means "vulnerabilities found": the JSON says which; anything else without JSON is a failure to run.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed command
    if result.returncode not in (0, 1) or not result.stdout.strip():
        sys.stderr.write(result.stderr)
        raise SystemExit(f"pip-audit failed (exit {result.returncode})")
    dependencies: list[dict[str, Any]] = json.loads(result.stdout)["dependencies"]
    return dependencies


def pinned_version(dependency: dict[str, Any]) -> str:
    # "Dependency not found on PyPI and could not be audited: NAME (VERSION)"
    return str(dependency["skip_reason"]).rsplit("(", 1)[1].rstrip(")")


def latest_release_advisories(name: str, version: str) -> list[dict[str, Any]] | None:
    """The advisories of `name` when `version` is its latest release; None when it is not (or the page is missing)."""
    try:
        with urllib.request.urlopen(PROJECT_URL.format(name=name), timeout=30) as response:  # noqa: S310 - https
            page = json.load(response)
    except OSError:
        return None
    if Version(page["info"]["version"]) != Version(version):
        return None
    return [advisory for advisory in page.get("vulnerabilities") or []
            if not ({advisory["id"], *advisory.get("aliases", [])} & IGNORED.keys()) and not advisory.get("withdrawn")]


def main(locks: list[str]) -> int:
    dependencies = pip_audit(locks or ["requirements/dev.txt"])
    found: list[tuple[str, str, str, str]] = []  # name, version, advisory, fixed in
    audited = [d for d in dependencies if "skip_reason" not in d]
    for dependency in audited:
        for vuln in dependency.get("vulns", []):
            found.append((dependency["name"], dependency["version"], vuln["id"], ", ".join(vuln["fix_versions"])))
    unreachable = [d for d in dependencies if str(d.get("skip_reason", "")).startswith(NOT_FOUND)]
    skipped = [f"{d['name']} ({d['skip_reason']})" for d in dependencies
               if "skip_reason" in d and d not in unreachable]
    not_audited: list[str] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        pins = [(d["name"], pinned_version(d)) for d in unreachable]
        for (name, version), advisories in zip(pins, pool.map(lambda p: latest_release_advisories(*p), pins),
                                               strict=True):
            if advisories is None:
                not_audited.append(f"{name}=={version}")
                continue
            for advisory in advisories:
                found.append((name, version, advisory["id"], ", ".join(advisory.get("fixed_in") or [])))
    by_latest = len(unreachable) - len(not_audited)
    print(f"pip-audit: {len(dependencies)} pinned packages; {len(audited)} audited release by release, {by_latest} "
          f"through the advisories of their latest release (the index serves no per-release data), "
          f"{len(not_audited) + len(skipped)} not audited")
    if not_audited:
        print("  not audited (pinned behind the latest release, or no project page):", " ".join(sorted(not_audited)))
    for line in skipped:
        print("  skipped:", line)
    for name, version, advisory, fixed in found:
        print(f"  VULNERABLE {name}=={version}: {advisory} (fixed in: {fixed or 'no release yet'})")
    if found:
        print("Upgrade the pin (make lock LOCK_FLAGS='--upgrade-package NAME'), or add the ID to IGNORED in "
              "scripts/audit.py with the reason it does not apply.")
        return 1
    if os.environ.get("VIGIE_AUDIT_STRICT") == "1" and (not_audited or skipped):
        print("VIGIE_AUDIT_STRICT=1: every package must be audited")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
