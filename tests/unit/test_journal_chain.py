"""The journal's chain rules: any edit, removal, reordering or truncation is found."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from journal.keys import key_id
from journal.model import GENESIS_HASH, AnchorCheckpoint, JournalEntry
from journal.rules import anchor_document, chain_hash, pin_anchors, read_anchor, verify_chain

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


def _anchored(entries: list[JournalEntry], key: Ed25519PrivateKey, at: int = 0) -> AnchorCheckpoint:
    head = entries[at - 1] if at else entries[-1]
    return AnchorCheckpoint(anchor_id=uuid.UUID(int=1), anchored_at=datetime(2026, 11, 2, tzinfo=UTC),
                            key_id=key_id(key.public_key()), chains=[(TENANT, head.position, head.hash)])


def _rewritten(entries: list[JournalEntry], index: int) -> list[JournalEntry]:
    """The chain an owner of the database produces: one line edited, every following hash and link recomputed."""
    out, previous = [], entries[index - 1].hash if index else bytes(32)
    for position, entry in enumerate(entries):
        if position < index:
            out.append(entry)
            continue
        changed = msgspec.structs.replace(entry, prev_hash=previous,
                                          motive="curiosité" if position == index else entry.motive)
        changed = msgspec.structs.replace(changed, hash=chain_hash(changed))
        out.append(changed)
        previous = changed.hash
    return out


def test_a_consistent_rewrite_passes_the_chain_but_not_its_anchor() -> None:
    key = Ed25519PrivateKey.generate()
    entries = _chain(5)
    document, _ = anchor_document(_anchored(entries, key), key)
    anchor = read_anchor(document, {key_id(key.public_key()): key.public_key()})
    expected, contradictions = pin_anchors([anchor])
    assert contradictions == []
    forged = _rewritten(entries, 2)
    assert verify_chain(TENANT, forged, _head(forged)) == (5, [])
    _, problems = verify_chain(TENANT, forged, _head(forged), expected[TENANT])
    assert [(p.position, "rewritten" in p.problem) for p in problems] == [(5, True)]
    _, problems = verify_chain(TENANT, entries[:3], _head(entries[:3]), expected[TENANT])
    assert [p.position for p in problems] == [5]  # truncated below the anchored head
    assert "signed anchor" in problems[0].problem


def test_an_anchor_must_be_signed_by_a_trusted_key_and_unaltered() -> None:
    key, forger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    entries = _chain(3)
    trusted = {key_id(key.public_key()): key.public_key()}
    forged, _ = anchor_document(_anchored(entries, forger), forger)
    with pytest.raises(ValueError, match="not a trusted journal anchor key"):
        read_anchor(forged, trusted)
    genuine, _ = anchor_document(_anchored(entries, key), key)
    altered = genuine.replace(entries[-1].hash.hex().encode(), bytes(32).hex().encode())
    with pytest.raises(ValueError, match="signature is invalid"):
        read_anchor(altered, trusted)
    with pytest.raises(ValueError, match="unreadable"):
        read_anchor(b"{not json", trusted)


def test_anchors_that_contradict_each_other_are_reported() -> None:
    key = Ed25519PrivateKey.generate()
    entries, forged = _chain(4), _rewritten(_chain(4), 1)
    first, second = _anchored(entries, key), _anchored(forged, key)
    second = msgspec.structs.replace(second, anchor_id=uuid.UUID(int=2),
                                     anchored_at=datetime(2026, 11, 3, tzinfo=UTC))
    _, problems = pin_anchors([first, second])
    assert len(problems) == 1
    assert "contradicts" in problems[0]
