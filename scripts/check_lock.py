"""Fails when a lock no longer covers pyproject.toml: each requirement of the install set pinned at a version it allows.

    python scripts/check_lock.py requirements/dev.txt [EXTRA …]

Run by `make install` after installing a lock, so an edit of pyproject.toml without `make lock` is caught at once
rather than as an ImportError somewhere in the tests.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def main(lock: Path, extras: list[str]) -> int:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    pins = {canonicalize_name(name): Version(version) for name, version in PIN.findall(lock.read_text())}
    stale = []
    for requirement in wanted:
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
            stale.append(f"{requirement} (locked: {pinned or 'absent'})")
    if stale:
        print(f"{lock} does not match pyproject.toml; run `make lock`:\n  " + "\n  ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
