"""Journal entries and the result of a chain verification."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

GENESIS_HASH = bytes(32)


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the journal, as stored; `hash` chains it to the previous line of the same tenant."""

    tenant_id: uuid.UUID
    position: int
    id: uuid.UUID
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_role: str
    action: str
    target_type: str
    target_id: str | None
    camera_id: uuid.UUID | None
    range_start: datetime | None
    range_end: datetime | None
    motive: str | None
    recipient: str | None
    details: str
    prev_hash: bytes
    hash: bytes


class JournalFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What a journal search asks for; every field left None matches every line. `person` and `motive` are
    matched literally (any case) inside the actor's name or e-mail and inside the motive."""

    camera_id: uuid.UUID | None = None
    tenant_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    actor_user_id: uuid.UUID | None = None
    person: str | None = None
    motive: str | None = None
    action: str | None = None


class ChainProblem(msgspec.Struct, frozen=True):
    """A break found by verification: where, and what is wrong."""

    tenant_id: uuid.UUID
    position: int
    problem: str


class VerificationReport(msgspec.Struct, frozen=True):
    chains: int
    entries: int
    problems: list[ChainProblem]
    # Anchors checked (signed checkpoints in the object-locked store), the newest one's time, and anchors that are
    # themselves unreadable, unsigned by a trusted key or contradicting one another.
    anchors: int = 0
    newest_anchor: datetime | None = None
    anchor_problems: list[str] = msgspec.field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems and not self.anchor_problems


class AnchorCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One signed anchor as read back: every chain's head (tenant, position, hash) at `anchored_at`, and where each
    cut chain now starts (tenant, first kept position, hash of the last removed line)."""

    anchor_id: uuid.UUID
    anchored_at: datetime
    key_id: str
    chains: list[tuple[uuid.UUID, int, bytes]]
    bases: list[tuple[uuid.UUID, int, bytes]] = msgspec.field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.anchored_at.isoformat(timespec='seconds')} ({self.anchor_id})"


class AnchorSet(msgspec.Struct, frozen=True, kw_only=True):
    """What the anchors found in the store pin: per tenant, position -> (hash, anchor label); and what was wrong."""

    expected: dict[uuid.UUID, dict[int, tuple[bytes, str]]]
    anchors: int
    newest: datetime | None
    problems: list[str]
    # Per tenant, the chain starts (first kept position, hash it links to) that a signed anchor recorded.
    bases: dict[uuid.UUID, set[tuple[int, bytes]]] = msgspec.field(default_factory=dict)


class ChainBase(msgspec.Struct, frozen=True):
    """Where a chain starts after the journal's retention cut its oldest lines: the first kept position and the hash
    of the last removed line, which that first kept line must link to."""

    position: int
    previous: bytes


class JournalCut(msgspec.Struct, frozen=True, kw_only=True):
    """What one retention cut removed from a tenant's chain (journal_cuts, migration 0126)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    cut_at: datetime
    cutoff: datetime
    first_removed: int
    last_removed: int
    removed_count: int
    last_removed_hash: bytes
    removed_digest: bytes
    oldest_removed_at: datetime
    newest_removed_at: datetime
