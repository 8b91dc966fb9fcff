"""Journal retention: a department job that removes the lines older than three years from the start of each chain,
records each cut (what it removed) and signs where the chain now starts into an anchor before the cut commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.db import Database
from core.ids import new_id
from core.logging import get_logger
from journal.anchors import ANCHOR_LOCK, JournalAnchorer
from journal.model import JournalCut
from journal.repository import JournalRepository
from journal.rules import removed_digest

log = get_logger(__name__)


@dataclass
class JournalRetention:
    """Cuts every chain's lines past three years; singleton by leadership where it runs (`python -m dvr`)."""

    db: Database
    anchorer: JournalAnchorer
    repo: JournalRepository = field(default_factory=JournalRepository)
    # Lines removed per tenant and run: a backlog goes over several runs, each in a transaction of bounded size.
    batch: int = 50_000

    async def cut_once(self) -> list[JournalCut]:
        """One cut per tenant with lines due, in one transaction with the anchor that signs the chains' new starts:
        without the anchor key or the store, nothing is removed (EvidenceKeyMissing, Unavailable)."""
        cuts: list[JournalCut] = []
        async with self.db.cross_tenant("journal retention") as conn, conn.transaction():
            # No anchor is computed from a half-cut journal: the anchoring job waits for this transaction.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ANCHOR_LOCK)
            cutoff = await self.repo.retention_cutoff(conn)
            cut_at = datetime.now(UTC)
            for tenant_id in await self.repo.tenants_with_lines_before(conn, cutoff):
                lines = await self.repo.due_prefix(conn, tenant_id, cutoff, self.batch)
                if not lines:
                    continue
                cut = JournalCut(
                    id=new_id(), tenant_id=tenant_id, cut_at=cut_at, cutoff=cutoff,
                    first_removed=int(lines[0]["position"]), last_removed=int(lines[-1]["position"]),
                    removed_count=len(lines), last_removed_hash=bytes(lines[-1]["hash"]),
                    removed_digest=removed_digest(bytes(line["hash"]) for line in lines),
                    oldest_removed_at=lines[0]["occurred_at"], newest_removed_at=lines[-1]["occurred_at"])
                await self.repo.insert_cut(conn, cut)
                removed = await self.repo.remove_lines(conn, tenant_id, cut.first_removed, cut.last_removed)
                if removed != cut.removed_count:
                    raise RuntimeError(f"journal cut of tenant {tenant_id} removed {removed} lines, "
                                       f"expected {cut.removed_count}")
                cuts.append(cut)
            if cuts:
                await self.anchorer.anchor_in(conn, cut_at)
        for cut in cuts:
            log.info("journal.cut", tenant_id=str(cut.tenant_id), first=cut.first_removed, last=cut.last_removed,
                     removed=cut.removed_count, cutoff=cut.cutoff.isoformat())
        return cuts
