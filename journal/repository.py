"""SQL of the access journal."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

from journal.model import GENESIS_HASH, ChainBase, JournalCut, JournalEntry, JournalFilter

_COLUMNS = (
    "tenant_id, position, id, occurred_at, actor_user_id, actor_role, action, target_type, target_id, "
    "camera_id, range_start, range_end, motive, recipient, details, prev_hash, hash"
)


# The search's conditions on `access_journal j`, parameters $1..$8 in the order of `filter_arguments`.
FILTER_SQL = (
    "($1::uuid IS NULL OR j.camera_id = $1) AND ($2::uuid IS NULL OR j.tenant_id = $2)"
    " AND ($3::timestamptz IS NULL OR j.occurred_at >= $3) AND ($4::timestamptz IS NULL OR j.occurred_at < $4)"
    " AND ($5::uuid IS NULL OR j.actor_user_id = $5)"
    " AND ($6::text IS NULL OR j.actor_user_id IN (SELECT u.id FROM users u"
    "      WHERE u.display_name ILIKE $6 ESCAPE '\\' OR u.email ILIKE $6 ESCAPE '\\'))"
    " AND ($7::text IS NULL OR j.motive ILIKE $7 ESCAPE '\\')"
    " AND ($8::text IS NULL OR j.action = $8 OR starts_with(j.action, $8 || '.'))"
)


def _contains(words: str | None) -> str | None:
    """An ILIKE pattern that finds `words` literally: % and _ typed by a person are not wildcards."""
    if words is None or not words.strip():
        return None
    return "%" + re.sub(r"([\\%_])", r"\\\1", words.strip()) + "%"


def filter_arguments(search: JournalFilter) -> list[object]:
    return [search.camera_id, search.tenant_id, search.since, search.until, search.actor_user_id,
            _contains(search.person), _contains(search.motive), search.action or None]


def _entry(row: asyncpg.Record) -> JournalEntry:
    return JournalEntry(**dict(row))


class JournalRepository:
    """Appends under a lock on the tenant's chain head, so concurrent writers cannot fork the chain."""

    async def lock_head(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> tuple[int, bytes]:
        await conn.execute(
            "INSERT INTO journal_heads (tenant_id, position, hash) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING",
            tenant_id,
            GENESIS_HASH,
        )
        row = await conn.fetchrow("SELECT position, hash FROM journal_heads WHERE tenant_id = $1 FOR UPDATE", tenant_id)
        assert row is not None
        return int(row["position"]), bytes(row["hash"])

    async def append(self, conn: asyncpg.Connection, entry: JournalEntry) -> None:
        await conn.execute(
            f"INSERT INTO access_journal ({_COLUMNS}) VALUES ({', '.join(f'${i}' for i in range(1, 18))})",
            entry.tenant_id,
            entry.position,
            entry.id,
            entry.occurred_at,
            entry.actor_user_id,
            entry.actor_role,
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.camera_id,
            entry.range_start,
            entry.range_end,
            entry.motive,
            entry.recipient,
            entry.details,
            entry.prev_hash,
            entry.hash,
        )
        await conn.execute(
            "UPDATE journal_heads SET position = $2, hash = $3 WHERE tenant_id = $1",
            entry.tenant_id,
            entry.position,
            entry.hash,
        )

    async def page(
        self,
        conn: asyncpg.Connection,
        search: JournalFilter,
        *,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[JournalEntry]:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM access_journal j WHERE {FILTER_SQL}"
            " AND ($9::uuid IS NULL OR j.id < $9) ORDER BY j.id DESC LIMIT $10",
            *filter_arguments(search),
            after,
            limit,
        )
        return [_entry(r) for r in rows]

    async def chains(self, conn: asyncpg.Connection) -> dict[uuid.UUID, tuple[int, bytes]]:
        rows = await conn.fetch("SELECT tenant_id, position, hash FROM journal_heads")
        heads = {r["tenant_id"]: (int(r["position"]), bytes(r["hash"])) for r in rows}
        for r in await conn.fetch("SELECT DISTINCT tenant_id FROM access_journal"):
            heads.setdefault(r["tenant_id"], (-1, b""))
        return heads

    async def iterate(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> AsyncIterator[JournalEntry]:
        async for row in conn.cursor(
            f"SELECT {_COLUMNS} FROM access_journal WHERE tenant_id = $1 ORDER BY position", tenant_id, prefetch=1000
        ):
            yield _entry(row)

    async def heads(self, conn: asyncpg.Connection) -> dict[uuid.UUID, tuple[int, bytes]]:
        """Every chain head that has at least one line (department role: all tenants)."""
        rows = await conn.fetch("SELECT tenant_id, position, hash FROM journal_heads WHERE position > 0")
        return {r["tenant_id"]: (int(r["position"]), bytes(r["hash"])) for r in rows}

    # -- retention cuts (journal_cuts, migration 0126) ------------------------------------------------------------
    async def retention_cutoff(self, conn: asyncpg.Connection) -> datetime:
        """Three years before the transaction's start, in the database's own calendar arithmetic (the one the
        removal trigger and the table's check use)."""
        value: datetime = await conn.fetchval("SELECT now() - interval '3 years'")
        return value

    async def tenants_with_lines_before(self, conn: asyncpg.Connection, cutoff: datetime) -> list[uuid.UUID]:
        rows = await conn.fetch("SELECT DISTINCT tenant_id FROM access_journal WHERE occurred_at < $1", cutoff)
        return [r["tenant_id"] for r in rows]

    async def due_prefix(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, cutoff: datetime,
                         limit: int) -> list[asyncpg.Record]:
        """The lines at the start of the tenant's chain up to (not including) its first line that is not due: a
        cut never leaves a hole in the middle of a chain."""
        return list(await conn.fetch(
            "SELECT position, hash, occurred_at FROM access_journal WHERE tenant_id = $1 AND position < coalesce("
            "  (SELECT min(position) FROM access_journal WHERE tenant_id = $1 AND occurred_at >= $2), "
            "  9223372036854775807) ORDER BY position LIMIT $3", tenant_id, cutoff, limit))

    async def insert_cut(self, conn: asyncpg.Connection, cut: JournalCut) -> None:
        await conn.execute(
            "INSERT INTO journal_cuts (id, tenant_id, cut_at, cutoff, first_removed, last_removed, removed_count, "
            "last_removed_hash, removed_digest, oldest_removed_at, newest_removed_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            cut.id, cut.tenant_id, cut.cut_at, cut.cutoff, cut.first_removed, cut.last_removed, cut.removed_count,
            cut.last_removed_hash, cut.removed_digest, cut.oldest_removed_at, cut.newest_removed_at)

    async def remove_lines(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, first: int, last: int) -> int:
        """Delete the lines a cut just recorded (the trigger of migration 0126 refuses any other)."""
        result = await conn.execute(
            "DELETE FROM access_journal WHERE tenant_id = $1 AND position BETWEEN $2 AND $3", tenant_id, first, last)
        return int(str(result).rsplit(" ", 1)[-1])

    async def chain_bases(self, conn: asyncpg.Connection) -> dict[uuid.UUID, ChainBase]:
        """Where each cut chain starts now: after its latest cut."""
        rows = await conn.fetch(
            "SELECT DISTINCT ON (tenant_id) tenant_id, last_removed, last_removed_hash FROM journal_cuts "
            "ORDER BY tenant_id, last_removed DESC")
        return {r["tenant_id"]: ChainBase(int(r["last_removed"]) + 1, bytes(r["last_removed_hash"])) for r in rows}

    async def cuts(self, conn: asyncpg.Connection, tenant_id: uuid.UUID) -> list[JournalCut]:
        rows = await conn.fetch(
            "SELECT id, tenant_id, cut_at, cutoff, first_removed, last_removed, removed_count, last_removed_hash, "
            "removed_digest, oldest_removed_at, newest_removed_at FROM journal_cuts WHERE tenant_id = $1 "
            "ORDER BY last_removed", tenant_id)
        return [JournalCut(**{**dict(r), "last_removed_hash": bytes(r["last_removed_hash"]),
                              "removed_digest": bytes(r["removed_digest"])}) for r in rows]

    # -- evidence keys (export_signing_keys) and anchors ----------------------------------------------------------
    async def evidence_key(self, conn: asyncpg.Connection, purpose: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT id, public_key, private_key_sealed FROM export_signing_keys WHERE purpose = $1 "
            "ORDER BY created_at DESC, id LIMIT 1", purpose)
        return row

    async def evidence_keys(self, conn: asyncpg.Connection, purpose: str) -> list[asyncpg.Record]:
        return list(await conn.fetch(
            "SELECT id, public_key FROM export_signing_keys WHERE purpose = $1 ORDER BY created_at", purpose))

    async def insert_evidence_key(self, conn: asyncpg.Connection, key_id: str, purpose: str, public_key: bytes,
                                  private_sealed: bytes) -> None:
        await conn.execute(
            "INSERT INTO export_signing_keys (id, purpose, public_key, private_key_sealed) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (id) DO NOTHING", key_id, purpose, public_key, private_sealed)

    async def last_anchor_at(self, conn: asyncpg.Connection) -> datetime | None:
        value: datetime | None = await conn.fetchval("SELECT max(anchored_at) FROM journal_anchors")
        return value

    async def insert_anchor(self, conn: asyncpg.Connection, *, anchor_id: uuid.UUID, anchored_at: datetime,
                            object_key: str, version_id: str | None, key_id: str, chains: int, payload_sha256: str,
                            retain_until: datetime) -> None:
        await conn.execute(
            "INSERT INTO journal_anchors (id, anchored_at, object_key, version_id, key_id, chains, payload_sha256, "
            "retain_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            anchor_id, anchored_at, object_key, version_id, key_id, chains, payload_sha256, retain_until)
