"""The journal's chain rules: any edit, removal, reordering or truncation is found."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec

from journal.model import GENESIS_HASH, JournalEntry
from journal.rules import chain_hash, verify_chain

TENANT = uuid.UUID(int=7)


def _chain(n: int) -> list[JournalEntry]:
    entries: list[JournalEntry] = []
    previous = GENESIS_HASH
    for position in range(1, n + 1):
        draft = JournalEntry(
            tenant_id=TENANT,
            position=position,
            id=uuid.UUID(int=100 + position),
            occurred_at=datetime(2026, 11, 1, 12, 0, position, 123456, tzinfo=UTC),
            actor_user_id=uuid.UUID(int=9),
            actor_role="operator",
            action="media.playback",
            target_type="camera",
            target_id="c1",
            camera_id=uuid.UUID(int=5),
            range_start=datetime(2026, 11, 1, 10, tzinfo=UTC),
            range_end=datetime(2026, 11, 1, 11, tzinfo=UTC),
            motive="réquisition 2026/123",
            recipient=None,
            details="{}",
            prev_hash=previous,
            hash=b"",
        )
        entry = msgspec.structs.replace(draft, hash=chain_hash(draft))
        entries.append(entry)
        previous = entry.hash
    return entries


def _head(entries: list[JournalEntry]) -> tuple[int, bytes]:
    return entries[-1].position, entries[-1].hash


def test_intact_chain_verifies() -> None:
    entries = _chain(5)
    assert verify_chain(TENANT, entries, _head(entries)) == (5, [])


def test_edited_field_is_found() -> None:
    entries = _chain(5)
    entries[2] = msgspec.structs.replace(entries[2], motive="curiosité")
    _, problems = verify_chain(TENANT, entries, _head(entries))
    assert [(p.position, p.problem) for p in problems] == [(3, "content altered after it was written")]


def test_edit_with_recomputed_hash_breaks_the_next_link() -> None:
    entries = _chain(5)
    forged = msgspec.structs.replace(entries[2], motive="curiosité")
    entries[2] = msgspec.structs.replace(forged, hash=chain_hash(forged))
    _, problems = verify_chain(TENANT, entries, _head(_chain(5)))
    assert {p.position for p in problems} >= {4}


def test_removed_middle_entry_is_found() -> None:
    entries = _chain(5)
    del entries[2]
    _, problems = verify_chain(TENANT, entries, _head(entries))
    assert any("missing" in p.problem for p in problems)


def test_truncated_tail_is_found_through_the_head() -> None:
    entries = _chain(5)
    head = _head(entries)
    _, problems = verify_chain(TENANT, entries[:-1], head)
    assert [p.problem for p in problems] == ["chain head says 5 entries, the journal holds up to 4"]


def test_every_single_field_change_is_detected() -> None:
    base = _chain(1)[0]
    changes = {
        "actor_role": "auditor",
        "action": "media.export",
        "target_id": "c2",
        "recipient": "OPJ",
        "details": '{"x":1}',
        "motive": "autre",
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "camera_id": uuid.UUID(int=6),
        "actor_user_id": None,
        "range_end": None,
    }
    for field, value in changes.items():
        altered = msgspec.structs.replace(base, **{field: value})
        _, problems = verify_chain(TENANT, [altered], (1, base.hash))
        assert problems, field
