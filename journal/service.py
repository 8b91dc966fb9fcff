"""Recording journal entries inside the caller's transaction, reading them, and verifying every chain."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import msgspec

from core.ids import new_id
from core.tenancy import Principal
from journal.errors import MotiveRequired
from journal.model import AnchorSet, ChainProblem, JournalEntry, JournalFilter, VerificationReport
from journal.repository import JournalRepository
from journal.rules import MEDIA_ACTIONS, chain_hash, verify_chain


class JournalService:
    """Every privileged action and media access goes through `record`, in the same transaction as the action."""

    def __init__(self, repository: JournalRepository | None = None) -> None:
        self._repo = repository or JournalRepository()

    async def record(
        self,
        conn: asyncpg.Connection,
        *,
        tenant_id: uuid.UUID,
        actor: Principal | None,
        action: str,
        target_type: str,
        target_id: object | None = None,
        camera_id: uuid.UUID | None = None,
        range_start: datetime | None = None,
        range_end: datetime | None = None,
        motive: str | None = None,
        recipient: str | None = None,
        details: dict[str, object] | None = None,
        actor_role: str | None = None,
    ) -> JournalEntry:
        if action in MEDIA_ACTIONS and not (motive and motive.strip()):
            raise MotiveRequired()
        position, previous = await self._repo.lock_head(conn, tenant_id)
        draft = JournalEntry(
            tenant_id=tenant_id,
            position=position + 1,
            id=new_id(),
            # Microsecond precision is what Postgres keeps; the hash must cover exactly what is stored.
            occurred_at=datetime.now(UTC),
            actor_user_id=actor.user_id if actor else None,
            actor_role=actor.role.value if actor else (actor_role or "system"),
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            camera_id=camera_id,
            range_start=range_start,
            range_end=range_end,
            motive=motive.strip() if motive else None,
            recipient=recipient,
            details=msgspec.json.encode(details or {}).decode(),
            prev_hash=previous,
            hash=b"",
        )
        entry = msgspec.structs.replace(draft, hash=chain_hash(draft))
        await self._repo.append(conn, entry)
        return entry

    async def note(
        self,
        conn: asyncpg.Connection,
        actor: Principal | None,
        action: str,
        target: tuple[str, object | None],
        /,
        *,
        tenant_id: uuid.UUID,
        camera_id: uuid.UUID | None = None,
        **details: object,
    ) -> JournalEntry:
        """The journal line of a privileged action that shows no image: who, what, on which object, in which tenant.
        Media accesses, which need a motive and a time range, use `record`."""
        target_type, target_id = target
        return await self.record(conn, tenant_id=tenant_id, actor=actor, action=action, target_type=target_type,
                                 target_id=target_id, camera_id=camera_id, details=details or None)

    async def page(
        self,
        conn: asyncpg.Connection,
        search: JournalFilter | None = None,
        *,
        after: uuid.UUID | None = None,
        limit: int = 50,
    ) -> list[JournalEntry]:
        return await self._repo.page(conn, search or JournalFilter(), after=after, limit=limit)

    async def verify(self, conn: asyncpg.Connection, anchors: AnchorSet | None = None) -> VerificationReport:
        """Check every tenant's chain, and against `anchors` (read from the object-locked store) every position they
        pinned; needs a connection that sees all tenants (the department role)."""
        problems: list[ChainProblem] = []
        total = 0
        expected = anchors.expected if anchors is not None else {}
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            heads = await self._repo.chains(conn)
            bases = await self._repo.chain_bases(conn)
            for tenant_id in expected.keys() - heads.keys():
                # A whole chain the anchors recorded is gone from the database.
                heads[tenant_id] = (-1, b"")
            for tenant_id, head in heads.items():
                entries = [e async for e in self._repo.iterate(conn, tenant_id)]
                base = bases.get(tenant_id)
                count, found = verify_chain(tenant_id, entries, None if head[0] < 0 else head,
                                            expected.get(tenant_id), base)
                total += count
                problems.extend(found)
                if base is not None and anchors is not None and anchors.anchors and \
                        (base.position, base.previous) not in anchors.bases.get(tenant_id, set()):
                    # A cut is recorded in the database, which its owner could forge to hide removed lines: only a
                    # signed anchor written before the cut committed vouches for it.
                    problems.append(ChainProblem(tenant_id, base.position,
                                                 "starts after a retention cut that no signed anchor recorded"))
        if anchors is None:
            return VerificationReport(chains=len(heads), entries=total, problems=problems)
        return VerificationReport(chains=len(heads), entries=total, problems=problems, anchors=anchors.anchors,
                                  newest_anchor=anchors.newest, anchor_problems=list(anchors.problems))
