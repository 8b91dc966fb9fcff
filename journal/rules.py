"""The canonical form of an entry and its chained hash; verification rules. Pure, no I/O."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from journal.model import GENESIS_HASH, AnchorCheckpoint, ChainBase, ChainProblem, JournalEntry

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
    anchored: Mapping[int, tuple[bytes, str]] | None = None,
    base: ChainBase | None = None,
) -> tuple[int, list[ChainProblem]]:
    """Walk one tenant's chain in position order; report edits, removals, reorderings and a truncated tail, and
    every anchored position whose line no longer has the hash a signed anchor recorded (a chain rewritten
    consistently, hashes recomputed, links and head included, is caught only there).

    A chain whose oldest lines the retention cut starts at `base`: the first kept line must sit at its position and
    link to the last removed line's hash; positions before it are gone by design, anchored or not."""
    problems: list[ChainProblem] = []
    anchored = {p: pin for p, pin in (anchored or {}).items() if base is None or p >= base.position}
    expected_position, previous = (1, GENESIS_HASH) if base is None else (base.position, base.previous)
    count = 0
    for entry in entries:
        if base is not None and entry.position < base.position:
            problems.append(ChainProblem(tenant_id, entry.position, "is still stored, though a cut removed it"))
            continue
        pinned = anchored.get(entry.position)
        if pinned is not None and pinned[0] != entry.hash:
            problems.append(ChainProblem(tenant_id, entry.position,
                                         f"differs from the signed anchor of {pinned[1]}: the chain was rewritten"))
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
    for position in sorted(p for p in anchored if p > last_position):
        problems.append(ChainProblem(tenant_id, position, f"is missing, though the signed anchor of "
                                                          f"{anchored[position][1]} recorded it"))
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


# Anchors: signed checkpoints of every chain head ------------------------------------------------------------------
ANCHOR_FORMAT = "vigie-journal-anchor/1"
# Signed with this prefix, so an anchor signature can never be replayed as a signature of anything else.
_ANCHOR_DOMAIN = (ANCHOR_FORMAT + "\n").encode()


def anchor_document(anchor: AnchorCheckpoint, private_key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    """The stored object (payload and signature) and the exact payload bytes that were signed."""
    body: dict[str, object] = {
        "format": ANCHOR_FORMAT,
        "anchor_id": str(anchor.anchor_id),
        "anchored_at": anchor.anchored_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "key_id": anchor.key_id,
        "chains": [[str(t), p, h.hex()] for t, p, h in sorted(anchor.chains)],
    }
    if anchor.bases:
        # Only once the retention has cut a chain: earlier anchors keep their exact form.
        body["bases"] = [[str(t), p, h.hex()] for t, p, h in sorted(anchor.bases)]
    payload = msgspec.json.encode(body)
    signature = private_key.sign(_ANCHOR_DOMAIN + payload)
    document = msgspec.json.encode({"payload": payload.decode(), "signature": base64.b64encode(signature).decode()})
    return document, payload


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    payload: str
    signature: str


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    format: str
    anchor_id: uuid.UUID
    anchored_at: datetime
    key_id: str
    chains: list[tuple[uuid.UUID, int, str]]
    bases: list[tuple[uuid.UUID, int, str]] = []


def read_anchor(document: bytes, trusted: Mapping[str, Ed25519PublicKey]) -> AnchorCheckpoint:
    """The checkpoint an anchor object holds; ValueError saying why when it is unreadable or not signed by a
    trusted key."""
    try:
        outer = msgspec.json.decode(document, type=_Document)
        payload = outer.payload.encode()
        signature = base64.b64decode(outer.signature, validate=True)
        body = msgspec.json.decode(payload, type=_Payload)
        chains = [(t, p, bytes.fromhex(h)) for t, p, h in body.chains]
        bases = [(t, p, bytes.fromhex(h)) for t, p, h in body.bases]
    except (msgspec.DecodeError, ValueError) as exc:
        raise ValueError(f"unreadable anchor: {exc}") from exc
    if body.format != ANCHOR_FORMAT:
        raise ValueError(f"unknown anchor format {body.format!r}")
    key = trusted.get(body.key_id)
    if key is None:
        raise ValueError(f"signed by {body.key_id}, which is not a trusted journal anchor key")
    try:
        key.verify(signature, _ANCHOR_DOMAIN + payload)
    except InvalidSignature as exc:
        raise ValueError("its signature is invalid") from exc
    return AnchorCheckpoint(anchor_id=body.anchor_id, anchored_at=body.anchored_at, key_id=body.key_id,
                            chains=chains, bases=bases)


def pin_anchors(anchors: Iterable[AnchorCheckpoint]) -> tuple[dict[uuid.UUID, dict[int, tuple[bytes, str]]], list[str]]:
    """Per tenant, every anchored position and its hash; anchors that contradict one another are reported."""
    expected: dict[uuid.UUID, dict[int, tuple[bytes, str]]] = {}
    problems: list[str] = []
    for anchor in sorted(anchors, key=lambda a: a.anchored_at):
        for tenant_id, position, digest in anchor.chains:
            pinned = expected.setdefault(tenant_id, {})
            earlier = pinned.get(position)
            if earlier is None:
                pinned[position] = (digest, anchor.label)
            elif earlier[0] != digest:
                problems.append(f"anchor {anchor.label} contradicts anchor {earlier[1]} on tenant {tenant_id} "
                                f"position {position}")
    return expected, problems


def signed_bases(anchors: Iterable[AnchorCheckpoint]) -> dict[uuid.UUID, set[tuple[int, bytes]]]:
    """Per tenant, every chain start a signed anchor recorded after a retention cut."""
    bases: dict[uuid.UUID, set[tuple[int, bytes]]] = {}
    for anchor in anchors:
        for tenant_id, position, previous in anchor.bases:
            bases.setdefault(tenant_id, set()).add((position, previous))
    return bases


def removed_digest(hashes: Iterable[bytes]) -> bytes:
    """SHA-256 over the removed lines' hashes in position order: the cut's record of exactly what it removed."""
    digest = hashlib.sha256()
    for line_hash in hashes:
        digest.update(line_hash)
    return digest.digest()
