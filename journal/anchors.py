"""Journal anchoring: a department job that writes every chain head, signed (Ed25519, the journal anchor key), to an
object-locked space with compliance retention beyond the journal's three years; and the reader that checks them.

Whoever owns the database can recompute a whole chain (lines, links and head) after editing a line; they cannot
remove or rewrite an anchor already in the store, so `vigie audit verify` finds the rewritten positions there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.crypto import SecretBox
from core.db import Database
from core.errors import NotFound, Unavailable
from core.ids import new_id
from core.logging import get_logger
from core.objectstore import ObjectStore
from journal.errors import EvidenceKeyMissing
from journal.keys import KeyPurpose, key_id, signing_key
from journal.model import AnchorCheckpoint, AnchorSet
from journal.repository import JournalRepository
from journal.rules import anchor_document, pin_anchors, read_anchor, signed_bases

log = get_logger(__name__)

ANCHOR_PREFIX = "journal-anchors/"
# The journal is kept three years (the CSI's sister regimes); its anchors at least as long, with a margin.
ANCHOR_RETENTION = timedelta(days=3 * 366 + 30)
# One anchoring job at a time across every process that runs it (transaction-scoped advisory lock).
ANCHOR_LOCK = 0x4A524E4C


def anchor_space(database_name: str) -> uuid.UUID:
    """The store space (bucket) of a platform's anchors, derived from configuration, never from the database: its
    owner cannot point the verifier elsewhere."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"urn:vigie:journal-anchors:{database_name}")


def anchor_key(anchored_at: datetime, anchor_id: uuid.UUID) -> str:
    return f"{ANCHOR_PREFIX}{anchored_at:%Y/%m/%d/%Y%m%dT%H%M%S%fZ}-{anchor_id.hex[:12]}.json"


@dataclass
class JournalAnchorer:
    """Writes a signed checkpoint of every chain head at most every `interval_s`; singleton by advisory lock."""

    db: Database
    store: ObjectStore
    secret_box: SecretBox
    space: uuid.UUID
    interval_s: float = 3600.0
    repo: JournalRepository = field(default_factory=JournalRepository)

    async def anchor_once(self, *, force: bool = False) -> AnchorCheckpoint | None:
        """Anchor now if the last anchor is older than the interval (or `force`); None when another process holds
        the job or it is not due yet. EvidenceKeyMissing until `vigie evidence init-key` ran."""
        async with self.db.cross_tenant("journal anchoring") as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", ANCHOR_LOCK):
                return None
            now = datetime.now(UTC)
            last = await self.repo.last_anchor_at(conn)
            if not force and last is not None and now - last < timedelta(seconds=self.interval_s):
                return None
            return await self.anchor_in(conn, now)

    async def anchor_in(self, conn: asyncpg.Connection, now: datetime) -> AnchorCheckpoint:
        """Sign and store the heads (and cut chains' starts) as `conn`'s transaction sees them; the caller holds
        ANCHOR_LOCK in that transaction, on the department role."""
        private = await signing_key(conn, self.secret_box, KeyPurpose.JOURNAL_ANCHOR, self.repo)
        heads = await self.repo.heads(conn)
        bases = await self.repo.chain_bases(conn)
        anchor = AnchorCheckpoint(anchor_id=new_id(), anchored_at=now, key_id=key_id(private.public_key()),
                                  chains=[(t, p, h) for t, (p, h) in heads.items()],
                                  bases=[(t, b.position, b.previous) for t, b in bases.items()])
        document, payload = anchor_document(anchor, private)
        retain_until = now + ANCHOR_RETENTION
        key = anchor_key(now, anchor.anchor_id)
        await self.store.ensure_tenant_space(self.space)
        stored = await self.store.put(self.space, key, document, content_type="application/json",
                                      retain_until=retain_until)
        await self.repo.insert_anchor(conn, anchor_id=anchor.anchor_id, anchored_at=now, object_key=key,
                                      version_id=stored.version_id, key_id=anchor.key_id, chains=len(anchor.chains),
                                      payload_sha256=hashlib.sha256(payload).hexdigest(), retain_until=retain_until)
        log.info("journal.anchored", anchor_id=str(anchor.anchor_id), chains=len(anchor.chains),
                 bases=len(anchor.bases), key=key)
        return anchor

    async def run(self, stop: asyncio.Event, *, poll_s: float = 60.0) -> None:
        """Until `stop`: anchor whenever due. A missing key or a store outage is logged and retried."""
        warned = False
        while not stop.is_set():
            try:
                await self.anchor_once()
                warned = False
            except EvidenceKeyMissing as exc:
                if not warned:
                    log.error("journal.anchor_key_missing", error=str(exc))
                    warned = True
            except (Unavailable, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("journal.anchor_failed", error=str(exc))
            except Exception:
                # A failed anchor is retried at the next poll; it must not stop the process that runs the job.
                log.exception("journal.anchor_crashed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(poll_s, self.interval_s))


async def load_anchors(store: ObjectStore, space: uuid.UUID, trusted: Mapping[str, Ed25519PublicKey]) -> AnchorSet:
    """Every version of every anchor in the space, checked against the trusted keys (all versions: a later write
    to the same key cannot hide an earlier anchor)."""
    try:
        versions = await store.list_versions(space, ANCHOR_PREFIX)
    except NotFound:
        versions = []
    anchors: list[AnchorCheckpoint] = []
    problems: list[str] = []
    for version in versions:
        if version.is_delete_marker:
            continue
        where = f"{version.key} (version {version.version_id})"
        try:
            document = await store.get(space, version.key, version_id=version.version_id)
            anchors.append(read_anchor(document, trusted))
        except NotFound:
            problems.append(f"anchor {where} could not be read")
        except ValueError as exc:
            problems.append(f"anchor {where}: {exc}")
    expected, contradictions = pin_anchors(anchors)
    newest = max((a.anchored_at for a in anchors), default=None)
    return AnchorSet(expected=expected, anchors=len(anchors), newest=newest, problems=problems + contradictions,
                     bases=signed_bases(anchors))
