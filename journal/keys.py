"""The platform's Ed25519 evidence keys (export signing, journal anchoring): provisioned once by `vigie evidence
init-key` with the department role, sealed at rest, then only read (the export builder, the anchoring job, the API)."""

from __future__ import annotations

import enum
import hashlib

import asyncpg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.crypto import EXPORT_SIGNING_KEYS, SecretBox
from journal.errors import EvidenceKeyMissing
from journal.repository import JournalRepository


class KeyPurpose(enum.StrEnum):
    """What a key signs; one key per purpose, so a signature of one kind can never pass for the other."""

    EXPORT = "export"
    JOURNAL_ANCHOR = "journal_anchor"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_pem(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError for anything else."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


_MISSING = "no {} key has been provisioned on this platform: run `vigie evidence init-key`"


async def provision_key(conn: asyncpg.Connection, box: SecretBox, purpose: KeyPurpose,
                        repo: JournalRepository | None = None) -> tuple[str, bool]:
    """The purpose's key id, creating the key if there is none; True when it was created now. Department role."""
    repo = repo or JournalRepository()
    row = await repo.evidence_key(conn, purpose.value)
    if row is not None:
        return str(row["id"]), False
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    public = private.public_key()
    kid = key_id(public)
    await repo.insert_evidence_key(conn, kid, purpose.value, public_pem(public),
                                   box.seal(raw, column=EXPORT_SIGNING_KEYS, row_id=kid))
    return kid, True


async def signing_key(conn: asyncpg.Connection, box: SecretBox, purpose: KeyPurpose,
                      repo: JournalRepository | None = None) -> Ed25519PrivateKey:
    """The purpose's newest private key; EvidenceKeyMissing (503) until it is provisioned."""
    row = await (repo or JournalRepository()).evidence_key(conn, purpose.value)
    if row is None:
        raise EvidenceKeyMissing(_MISSING.format(purpose.value.replace("_", " ")))
    raw = box.open(row["private_key_sealed"], column=EXPORT_SIGNING_KEYS, row_id=row["id"])
    return Ed25519PrivateKey.from_private_bytes(raw)


async def public_key(conn: asyncpg.Connection, purpose: KeyPurpose,
                     repo: JournalRepository | None = None) -> bytes:
    """The purpose's newest public key (PEM), without touching the private half."""
    row = await (repo or JournalRepository()).evidence_key(conn, purpose.value)
    if row is None:
        raise EvidenceKeyMissing(_MISSING.format(purpose.value.replace("_", " ")))
    return bytes(row["public_key"])


async def trusted_keys(conn: asyncpg.Connection, purpose: KeyPurpose,
                       repo: JournalRepository | None = None) -> dict[str, Ed25519PublicKey]:
    """Every public key ever provisioned for the purpose, by key id (old anchors stay verifiable)."""
    rows = await (repo or JournalRepository()).evidence_keys(conn, purpose.value)
    return {str(r["id"]): load_public_pem(bytes(r["public_key"])) for r in rows}
