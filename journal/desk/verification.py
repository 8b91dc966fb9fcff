"""The desk's verification of the chains in the caller's scope, at a bounded cost: the newest `depth` lines of each
chain are recomputed and linked up to its head, and the newest signed anchor in the object-locked store is checked
against the lines it pinned. `vigie audit verify` remains the complete check (every line, every anchor)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.errors import NotFound
from core.objectstore import FilesystemObjectStore, ObjectStore, ObjectVersion
from journal.anchors import ANCHOR_PREFIX
from journal.desk.model import ChainFinding, ChainStatus, FindingKind, JournalVerification, LastAnchor
from journal.desk.repository import AuditRepository
from journal.keys import KeyPurpose, trusted_keys
from journal.model import GENESIS_HASH, AnchorCheckpoint, ChainBase
from journal.repository import JournalRepository
from journal.rules import read_anchor, verify_chain

# Lines recomputed per chain on each request: a few hundred milliseconds at most, whatever the journal's size.
DEFAULT_DEPTH = 10_000
MAX_DEPTH = 100_000
# Anchors are written hourly under a dated prefix: the newest is looked for day by day, this far back at most.
ANCHOR_LOOKBACK_DAYS = 31
# A chain's report lists at most this many problems (the first broken line is always among them).
MAX_FINDINGS = 20


class _Anchor(msgspec.Struct, frozen=True):
    checkpoint: AnchorCheckpoint
    version: ObjectVersion
    payload_sha256: str


async def newest_anchor(store: ObjectStore, space: uuid.UUID, trusted: Mapping[str, Ed25519PublicKey],
                        today: datetime) -> tuple[_Anchor | None, list[str]]:
    """The newest anchor that reads and is signed by a trusted key; each newer one that does not is a problem."""
    problems: list[str] = []
    for back in range(ANCHOR_LOOKBACK_DAYS):
        day = today - timedelta(days=back)
        try:
            versions = await store.list_versions(space, f"{ANCHOR_PREFIX}{day:%Y/%m/%d}/")
        except NotFound:
            continue
        # The key holds the anchor's time: the newest sorts last.
        for version in sorted((v for v in versions if not v.is_delete_marker),
                              key=lambda v: (v.key, v.last_modified), reverse=True):
            where = f"{version.key} (version {version.version_id})"
            try:
                document = await store.get(space, version.key, version_id=version.version_id)
                checkpoint = read_anchor(document, trusted)
            except NotFound:
                problems.append(f"anchor {where} could not be read")
                continue
            except ValueError as exc:
                problems.append(f"anchor {where}: {exc}")
                continue
            payload = msgspec.json.decode(document, type=dict[str, str])["payload"]
            return _Anchor(checkpoint, version, hashlib.sha256(payload.encode()).hexdigest()), problems
    return None, problems


def finding_kind(problem: str) -> FindingKind:
    """The kind of a problem journal.rules worded."""
    if "signed anchor" in problem:
        return "anchor_mismatch"
    if problem.startswith("content altered"):
        return "altered"
    if problem.startswith("does not link"):
        return "unlinked"
    if "missing" in problem and "head" not in problem:
        return "missing"
    if "head" in problem:
        return "head_mismatch"
    return "other"


async def verify_scope(conn: asyncpg.Connection, store: ObjectStore, space: uuid.UUID, *, depth: int,
                       repo: AuditRepository | None = None,
                       journal: JournalRepository | None = None) -> JournalVerification:
    """Every chain the transaction's scope sees; `conn` must be the caller's scoped transaction."""
    repo = repo or AuditRepository()
    journal = journal or JournalRepository()
    trusted = await trusted_keys(conn, KeyPurpose.JOURNAL_ANCHOR, journal)
    now = datetime.now(UTC)
    anchor, anchor_problems = await newest_anchor(store, space, trusted, now)
    pins: dict[uuid.UUID, tuple[int, bytes]] = {}
    if anchor is not None:
        pins = {t: (p, h) for t, p, h in anchor.checkpoint.chains}
    bases = await journal.chain_bases(conn)
    label = anchor.checkpoint.label if anchor else ""
    chains = [await _verify_one(conn, repo, tenant_id, name, (position, head_hash), bases.get(tenant_id),
                                pins.get(tenant_id), label, depth)
              for tenant_id, (name, position, head_hash) in (await repo.chain_heads(conn)).items()]
    last = None
    if anchor is not None:
        last = LastAnchor(anchor_id=anchor.checkpoint.anchor_id, anchored_at=anchor.checkpoint.anchored_at,
                          key_id=anchor.checkpoint.key_id, payload_sha256=anchor.payload_sha256,
                          store="fs" if isinstance(store, FilesystemObjectStore) else "s3", space=space,
                          object_key=anchor.version.key, version_id=anchor.version.version_id,
                          chains=len(anchor.checkpoint.chains))
    broken = anchor_problems or any(chain.status == "broken" for chain in chains)
    return JournalVerification(status="broken" if broken else "intact", verified_at=now, depth=depth,
                               chains=chains, last_anchor=last, anchor_problems=anchor_problems)


async def _verify_one(conn: asyncpg.Connection, repo: AuditRepository, tenant_id: uuid.UUID, name: str,
                      head: tuple[int, bytes | None], base: ChainBase | None, pin: tuple[int, bytes] | None, label: str,
                      depth: int) -> ChainStatus:
    head_position, head_hash = head
    first_kept = base.position if base is not None else 1
    start = max(first_kept, head_position - depth + 1)
    findings: list[ChainFinding] = []
    if start == first_kept:
        previous = base.previous if base is not None else GENESIS_HASH
    else:
        stored = await repo.line_hash(conn, tenant_id, start - 1)
        if stored is None:
            findings.append(ChainFinding(start - 1, "is missing", "missing"))
        previous = stored or b""
    # One line past the head's count, so lines appended behind the head's back are seen too.
    lines = await repo.chain_lines(conn, tenant_id, start, max(head_position - start + 2, depth))
    anchored: dict[int, tuple[bytes, str]] = {}
    anchor_matches: bool | None = None
    if pin is not None and pin[0] >= first_kept:
        if pin[0] >= start:
            anchored[pin[0]] = (pin[1], label)
            line = next((e for e in lines if e.position == pin[0]), None)
            anchor_matches = line is not None and line.hash == pin[1]
        else:
            # Pinned before the recomputed span: that one line must still hold the hash the anchor signed.
            stored_pin = await repo.line_hash(conn, tenant_id, pin[0])
            anchor_matches = stored_pin == pin[1]
            if not anchor_matches:
                findings.append(ChainFinding(pin[0], f"differs from the signed anchor of {label}", "anchor_mismatch"))
    # A missing head row while lines exist is itself reported by verify_chain ("chain head is missing").
    checked, problems = verify_chain(tenant_id, lines, None if head_hash is None else (head_position, head_hash),
                                     anchored, ChainBase(start, previous))
    findings.extend(ChainFinding(p.position, p.problem, finding_kind(p.problem)) for p in problems)
    findings.sort(key=lambda f: f.position)
    verified_to = lines[-1].position if lines else start - 1
    return ChainStatus(
        tenant_id=tenant_id, tenant_name=name, status="broken" if findings else "intact",
        head_position=head_position, verified_from=start, verified_to=verified_to, lines_checked=checked,
        complete=start == first_kept, first_broken_position=findings[0].position if findings else None,
        problems=findings[:MAX_FINDINGS], anchored_position=None if pin is None else pin[0],
        anchored_hash=None if pin is None else pin[1].hex(), anchor_matches=anchor_matches)

