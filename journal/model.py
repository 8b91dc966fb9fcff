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


class ChainProblem(msgspec.Struct, frozen=True):
    """A break found by verification: where, and what is wrong."""

    tenant_id: uuid.UUID
    position: int
    problem: str


class VerificationReport(msgspec.Struct, frozen=True):
    chains: int
    entries: int
    problems: list[ChainProblem]

    @property
    def intact(self) -> bool:
        return not self.problems
