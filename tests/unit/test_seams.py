"""The seams hold: one way into the database, JetStream only inside core.bus, event contracts as unique leaf modules."""

from __future__ import annotations

import ast
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.events import Event

ROOT = Path(__file__).resolve().parents[2]
# The platform's own code. Tests and benchmarks are harnesses: they seed and measure with raw connections on purpose,
# but even they reach JetStream through core.bus.
CHECKED = ("core", "api", "tenants", "identity", "journal", "health", "alerts", "dvr", "inference", "mobile_push",
           "cli", "camsim", "billing", "live", "bench")
HARNESSES = ("bench",)
DOMAINS = ("tenants", "identity", "alerts", "dvr", "inference", "mobile_push", "billing", "live")

# Where the RLS-bypassing department role may be used, and for which reasons. Each is a department job that must see
# every tenant; no request path of the API appears here (the API process holds no department connection at all).
CROSS_TENANT_ALLOWED: dict[str, frozenset[str]] = {
    # Relays publish every tenant's committed rows; the gauge reads the oldest unsent one.
    "core/outbox.py": frozenset({"outbox relay", "outbox lag gauge"}),
    # Due timers of every tenant are claimed by whichever alerts process comes first; no event names their tenant.
    "alerts/escalation.py": frozenset({"escalation timers"}),
    # Recorders share every tenant's cameras through leases; only the department role writes the recording index.
    "dvr/fleet.py": frozenset({"recorder leases"}),
    "dvr/recorder.py": frozenset({"recording index"}),
    "dvr/uploader.py": frozenset({"recording index"}),
    # Recorders and detectors report what they see of every tenant's cameras; the health watch re-evaluates them all,
    # publishes their transitions and opens maintenance tickets.
    "health/reporter.py": frozenset({"camera health"}),
    "health/watch.py": frozenset({"camera health watch"}),
    # Singletons (the retention sweeper, the journal's cut, the health watch, the monthly billing run) hold their
    # advisory lock on a department connection while they lead.
    "core/leadership.py": frozenset({"leadership"}),
    # Retention destroys recordings of every tenant and writes the destruction register.
    "dvr/retention.py": frozenset({"retention sweep"}),
    # After a database restore, the index is rebuilt for every tenant's stored segments (`vigie dvr reindex`).
    "dvr/reindex.py": frozenset({"recording reindex"}),
    # Requested exports of every tenant are claimed by whichever recorder process comes first, then settled.
    "dvr/export_builder.py": frozenset({"export jobs"}),
    # The anchoring job signs every tenant's chain head into one checkpoint.
    "journal/anchors.py": frozenset({"journal anchoring"}),
    # The journal's three-year retention cuts every tenant's chain and anchors the new starts in one transaction.
    "journal/retention.py": frozenset({"journal retention"}),
    # The detector loads every camera's configuration, switches lapsed rules off, and meters usage per tenant.
    "inference/worker.py": frozenset({"detection config sync", "detector usage metering"}),
    # Detection workers share the cameras by lease: the round sees every tenant's cameras and the others' leases.
    "inference/fleet.py": frozenset({"detector leases"}),
    # Forces and their officers' devices live in the department's directory and the officers' home tenants.
    "mobile_push/dispatcher.py": frozenset({"push force directory", "push retry scan"}),
    # Command-line department jobs.
    "cli/main.py": frozenset({"signing key provisioning", "signing key rotation", "communes import"}),
    "cli/demo.py": frozenset({"demo seed"}),
    # Re-sealing every sealed column of every tenant under a new data key (`vigie keys rotate-data-key`).
    "cli/secrets.py": frozenset({"data key rotation"}),
    # Evidence keys are provisioned, and the journal verified against its anchors, from the command line.
    "cli/evidence.py": frozenset({"evidence key provisioning", "journal verification"}),
}
# Where a pool or a raw connection may be opened: the kernel that builds them, migrations, the embedded servers.
# (Leadership takes its connection out of a department pool for the whole term: see core/leadership.py.)
RAW_CONNECTION_ALLOWED = frozenset({"core/db.py", "core/migrate.py", "core/embedded.py"})
# JetStream is reached through core.bus only.
JETSTREAM_ALLOWED = frozenset({"core/bus.py"})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def seam_violations(source: str, path: str) -> list[Violation]:
    """Everything in one module that goes around the seams; `path` is relative to the repository root."""
    found: list[Violation] = []
    harness = path.split("/", 1)[0] in HARNESSES
    tree = ast.parse(source, filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in {"tenant_transaction", "_tenant_transaction"} and path != "core/db.py" and not harness:
                found.append(Violation(path, node.lineno, f"{name}: open transactions through Database"))
            if name == "js" and isinstance(node, ast.Attribute) and path not in JETSTREAM_ALLOWED:
                found.append(Violation(path, node.lineno, "JetStream used outside core/bus.py"))
        if isinstance(node, ast.ImportFrom | ast.Import) and path not in JETSTREAM_ALLOWED:
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if any(m == "nats.js" or m.startswith("nats.js.") for m in modules):
                found.append(Violation(path, node.lineno, "nats.js imported outside core/bus.py"))
        if not isinstance(node, ast.Call) or harness:
            continue
        name = _call_name(node)
        if name in {"acquire", "create_pool", "connect"} and path not in RAW_CONNECTION_ALLOWED:
            target = ast.unparse(node.func)
            if name == "acquire" or target in {"create_pool", "asyncpg.create_pool", "asyncpg.connect"}:
                found.append(Violation(path, node.lineno, f"{target}(): a raw pool connection outside core"))
        if name == "cross_tenant" and path != "core/db.py":
            allowed = CROSS_TENANT_ALLOWED.get(path, frozenset())
            reason = node.args[0] if node.args else None
            if not (isinstance(reason, ast.Constant) and isinstance(reason.value, str)):
                found.append(Violation(path, node.lineno, "cross_tenant() needs a literal reason"))
            elif reason.value not in allowed:
                found.append(Violation(path, node.lineno, f"cross_tenant({reason.value!r}) is not on the allow-list"))
    return found


def _modules() -> list[Path]:
    return sorted(p for package in CHECKED if (ROOT / package).is_dir() for p in (ROOT / package).rglob("*.py")
                  if "gpu" not in p.relative_to(ROOT).parts)


def test_the_platform_reaches_the_database_and_jetstream_only_through_the_seams() -> None:
    violations = [v for path in _modules()
                  for v in seam_violations(path.read_text(), str(path.relative_to(ROOT)))]
    assert not violations, "\n".join(map(str, violations))


def test_every_allowed_cross_tenant_use_still_exists() -> None:
    """An allow-list entry whose call site is gone is removed, so the list stays the truth."""
    for path, reasons in CROSS_TENANT_ALLOWED.items():
        source = (ROOT / path).read_text()
        for reason in reasons:
            assert f'cross_tenant("{reason}")' in source, f"{path} no longer uses cross_tenant({reason!r})"


PLANTED = '''
async def sneak(db, pool, bus):
    async with pool.acquire() as conn:
        await conn.fetch("SELECT 1")
    async with db.cross_tenant("peek at everyone") as conn:
        pass
    async with db.cross_tenant(reason) as conn:
        pass
    async with TENANT_TRANSACTION(pool, []) as conn:
        pass
    await bus.js.publish("x", b"")
'''.replace("TENANT_TRANSACTION", "tenant_" + "transaction")  # spelled apart: `git grep` finds the name in core only


def test_the_lint_catches_a_planted_violation() -> None:
    found = {v.what for v in seam_violations(PLANTED, "alerts/service.py")}
    assert "pool.acquire(): a raw pool connection outside core" in found
    assert "cross_tenant('peek at everyone') is not on the allow-list" in found
    assert "cross_tenant() needs a literal reason" in found
    assert "tenant_transaction: open transactions through Database" in found
    assert "JetStream used outside core/bus.py" in found
    # The same calls are fine where the allow-list says so.
    assert not seam_violations("async def f(db):\n    async with db.cross_tenant('outbox relay'):\n        pass\n",
                               "core/outbox.py")


def _events_modules() -> list[str]:
    return [f"{d}.events" for d in DOMAINS if (ROOT / d / "events.py").is_file()]


def test_event_contracts_are_leaf_modules_that_import_only_the_kernel() -> None:
    for module in _events_modules():
        tree = ast.parse((ROOT / module.replace(".", "/")).with_suffix(".py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top = node.module.split(".")[0]
                assert top not in CHECKED or top == "core", f"{module} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    assert top not in CHECKED or top == "core", f"{module} imports {alias.name}"


def test_every_event_class_lives_in_an_events_module_under_a_unique_name() -> None:
    names: dict[str, str] = {}
    for module in _events_modules():
        for name, obj in inspect.getmembers(importlib.import_module(module), inspect.isclass):
            if issubclass(obj, Event) and obj is not Event and obj.__module__ == module:
                assert name not in names, f"{name} is defined in both {names[name]} and {module}"
                names[name] = module
    assert len(names) >= 20
    # No event contract hides in another kind of module.
    for path in _modules():
        relative = path.relative_to(ROOT)
        if relative.name == "events.py" or relative.parts[0] in {"bench", "core"}:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "Event" for b in node.bases):
                pytest.fail(f"{relative}:{node.lineno}: event {node.name} outside an events module")
