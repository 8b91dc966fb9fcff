"""What the auditor's desk answers: journal lines with names, chain verification, register rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

ChainState = Literal["intact", "broken"]


class AuditLine(msgspec.Struct, frozen=True, kw_only=True):
    """A journal line as an auditor reads it: the commune, the actor and the camera named, the hash in hex."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    position: int
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_name: str | None
    actor_role: str
    action: str
    target_type: str
    target_id: str | None
    camera_id: uuid.UUID | None
    camera_name: str | None
    range_start: datetime | None
    range_end: datetime | None
    motive: str | None
    recipient: str | None
    details: str
    hash: str


FindingKind = Literal["altered", "unlinked", "missing", "anchor_mismatch", "head_mismatch", "other"]


class ChainFinding(msgspec.Struct, frozen=True):
    """A break at `position`: its kind (for the console's wording) and the verifier's own words."""

    position: int
    problem: str
    kind: FindingKind = "other"


class ChainStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One tenant's chain: lines `verified_from`..`verified_to` recomputed and linked; `complete` when that span
    starts at the chain's first kept line (otherwise the line before it is taken as it is stored)."""

    tenant_id: uuid.UUID
    tenant_name: str
    status: ChainState
    head_position: int
    verified_from: int
    verified_to: int
    lines_checked: int
    complete: bool
    first_broken_position: int | None
    problems: list[ChainFinding]
    # The newest signed anchor's pin on this chain (position and hash), and whether the stored line still has it.
    anchored_position: int | None = None
    anchored_hash: str | None = None
    anchor_matches: bool | None = None


class LastAnchor(msgspec.Struct, frozen=True, kw_only=True):
    """The newest signed anchor found in the object-locked anchor space, and where it lies there."""

    anchor_id: uuid.UUID
    anchored_at: datetime
    key_id: str
    payload_sha256: str
    store: Literal["fs", "s3"]
    space: uuid.UUID
    object_key: str
    version_id: str
    chains: int


class JournalVerification(msgspec.Struct, frozen=True, kw_only=True):
    status: ChainState
    verified_at: datetime
    # At most this many lines are recomputed per chain, the newest ones; `vigie audit verify` checks everything.
    depth: int
    chains: list[ChainStatus]
    last_anchor: LastAnchor | None
    anchor_problems: list[str]


class DestructionRow(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    camera_id: uuid.UUID
    camera_name: str | None
    recording_type: str
    start_at: datetime
    end_at: datetime
    sha256: str
    size_bytes: int
    retention_days: int
    due_at: datetime
    destroyed_at: datetime
    method: str


class RequisitionRow(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    procedure_number: str
    legal_frame: str
    opj_name: str
    opj_service: str
    camera_names: list[str]
    start_at: datetime
    end_at: datetime
    received_at: datetime
    registered_at: datetime
    registered_by_name: str | None
    holds: int
    released_at: datetime | None
    release_reason: str | None


class ExportRow(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    requisition_id: uuid.UUID
    procedure_number: str
    exported_by_name: str
    exported_at: datetime
    package_sha256: str
    manifest_sha256: str
    signing_key_id: str
    transmitted_at: datetime | None
    recipient: str | None
    transmission_recorded_at: datetime | None
