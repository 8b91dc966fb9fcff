"""The canonical form of an entry and its chained hash; verification rules. Pure, no I/O."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec

from journal.model import GENESIS_HASH, ChainProblem, JournalEntry

MEDIA_ACTIONS = frozenset({"media.live", "media.playback", "media.export", "media.snapshot", "media.clip"})


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def canonical_bytes(entry: JournalEntry) -> bytes:
    """Every stored field but `hash`, in a fixed order and format, so the verifier recomputes the same bytes."""
    fields = [
        str(entry.tenant_id),
        entry.position,
        str(entry.id),
        _ts(entry.occurred_at),
        _id(entry.actor_user_id),
        entry.actor_role,
        entry.action,
        entry.target_type,
        entry.target_id,
        _id(entry.camera_id),
        _ts(entry.range_start),
        _ts(entry.range_end),
        entry.motive,
        entry.recipient,
        entry.details,
        entry.prev_hash.hex(),
    ]
    return msgspec.json.encode(fields)


def chain_hash(entry: JournalEntry) -> bytes:
    return hashlib.sha256(canonical_bytes(entry)).digest()


def verify_chain(
    tenant_id: uuid.UUID,
    entries: Iterable[JournalEntry],
    head: tuple[int, bytes] | None,
) -> tuple[int, list[ChainProblem]]:
    """Walk one tenant's chain in position order; report edits, removals, reorderings and a truncated tail."""
    problems: list[ChainProblem] = []
    expected_position, previous = 1, GENESIS_HASH
    count = 0
    for entry in entries:
        count += 1
        if entry.position != expected_position:
            problems.append(
                ChainProblem(
                    tenant_id, expected_position, f"entries {expected_position}..{entry.position - 1} are missing"
                )
            )
        if entry.prev_hash != previous:
            problems.append(ChainProblem(tenant_id, entry.position, "does not link to the previous entry"))
        if chain_hash(entry) != entry.hash:
            problems.append(ChainProblem(tenant_id, entry.position, "content altered after it was written"))
        expected_position, previous = entry.position + 1, entry.hash
    last_position = expected_position - 1
    if head is None:
        if count:
            problems.append(ChainProblem(tenant_id, last_position, "chain head is missing"))
    elif head != (last_position, previous):
        problems.append(
            ChainProblem(
                tenant_id, head[0], f"chain head says {head[0]} entries, the journal holds up to {last_position}"
            )
        )
    return count, problems
