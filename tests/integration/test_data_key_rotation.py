"""`vigie keys rotate-data-key`: every sealed column of the schema is re-sealed under the new key, bound to its row,
one transaction per table, idempotently; values sealed before rows were bound are upgraded on the way."""

from __future__ import annotations

import base64
import os
import uuid

import asyncpg
import msgspec
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cli.main import ensure_signing_key
from cli.secrets import RotationError, rotate_data_key
from cli.seed import seed_demo
from core.crypto import (
    CAMERA_CREDENTIALS,
    EXPORT_SIGNING_KEYS,
    FCM_TOKENS,
    SEALED_COLUMNS,
    SealedColumn,
    SecretBox,
    new_data_key,
)
from core.db import Database
from core.ids import new_id
from core.settings import Settings

pytestmark = pytest.mark.integration


def _legacy_seal(key_b64: str, plaintext: bytes, purpose: str) -> bytes:
    """A value as sealed before rows were bound: version 1, the purpose as AAD."""
    nonce = os.urandom(12)
    return b"\x01" + nonce + AESGCM(base64.urlsafe_b64decode(key_b64)).encrypt(nonce, plaintext, purpose.encode())


async def _values(conn: asyncpg.Connection, column: SealedColumn) -> list[tuple[object, bytes]]:
    rows = await conn.fetch(f'SELECT "{column.key}" AS id, "{column.column}" AS sealed FROM "{column.table}" '
                            f'WHERE "{column.column}" IS NOT NULL')
    return [(r["id"], r["sealed"]) for r in rows]


@pytest.fixture
async def sealed_world(settings: Settings, department_pool: asyncpg.Pool) -> dict[str, object]:
    """The demo department (cameras with credentials, accounts with a second factor, a token signing key) plus an
    export signing key, an officer's phone, and one camera whose credentials were sealed the old way."""
    dev_key = settings.data_key.get_secret_value()
    box = SecretBox(dev_key)
    await ensure_signing_key(settings)
    async with department_pool.acquire() as conn, conn.transaction():
        seeded = await seed_demo(conn, box)
        legacy_camera = seeded.cameras["c1"]
        await conn.execute("UPDATE cameras SET credentials_sealed = $2 WHERE id = $1", legacy_camera,
                           _legacy_seal(dev_key, b'{"username": "viewer", "password": "demo"}', "camera-credentials"))
        kid = f"rotation-{uuid.uuid4().hex[:8]}"
        # A real key: it becomes the newest export key, which later suites sign their packages with.
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
        public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        await conn.execute("INSERT INTO export_signing_keys (id, public_key, private_key_sealed) VALUES ($1, $2, $3)",
                           kid, public, box.seal(raw, column=EXPORT_SIGNING_KEYS, row_id=kid))
        officer = await conn.fetchrow("SELECT user_id, force_id, tenant_id FROM memberships WHERE role = 'officer' "
                                      "AND force_id IS NOT NULL LIMIT 1")
        device = new_id()
        await conn.execute(
            "INSERT INTO push_devices (id, tenant_id, user_id, force_id, platform, token_sealed, token_hash) "
            "VALUES ($1, $2, $3, $4, 'android', $5, $6)", device, officer["tenant_id"], officer["user_id"],
            officer["force_id"], box.seal(b"fcm-token", column=FCM_TOKENS, row_id=device), os.urandom(32))
    return {"legacy_camera": legacy_camera, "export_key": kid, "device": device}


async def test_rotation_reseals_everything_and_the_old_key_opens_nothing(
    settings: Settings, database: Database, department_pool: asyncpg.Pool, sealed_world: dict[str, object],
) -> None:
    old_key, new_key = settings.data_key.get_secret_value(), new_data_key()
    old, new = SecretBox(old_key), SecretBox(new_key)
    async with department_pool.acquire() as conn:
        before = {c: await _values(conn, c) for c in SEALED_COLUMNS}
    assert all(before[c] for c in (CAMERA_CREDENTIALS, EXPORT_SIGNING_KEYS, FCM_TOKENS))
    plaintexts = {(c, i): old.open(v, column=c, row_id=i) for c in SEALED_COLUMNS for i, v in before[c]}
    assert not SecretBox.bound_to_row(dict(before[CAMERA_CREDENTIALS])[sealed_world["legacy_camera"]])
    try:
        done = await rotate_data_key(database, old, new)
        assert {d.column for d in done} == set(SEALED_COLUMNS)
        assert sum(d.resealed for d in done) == len(plaintexts)
        async with department_pool.acquire() as conn:
            after = {c: await _values(conn, c) for c in SEALED_COLUMNS}
        for column in SEALED_COLUMNS:
            for row_id, sealed in after[column]:
                assert SecretBox.bound_to_row(sealed)  # the legacy value was upgraded too
                assert new.open(sealed, column=column, row_id=row_id) == plaintexts[(column, row_id)]
                with pytest.raises(InvalidTag):
                    old.open(sealed, column=column, row_id=row_id)
        legacy = dict(after[CAMERA_CREDENTIALS])[sealed_world["legacy_camera"]]
        assert msgspec.json.decode(new.open(legacy, column=CAMERA_CREDENTIALS, row_id=sealed_world["legacy_camera"]))
        # Idempotent: a second run (or one resumed after an interruption) finds everything done.
        again = await rotate_data_key(database, old, new)
        assert sum(d.resealed for d in again) == 0
        assert sum(d.already for d in again) == len(plaintexts)
    finally:
        # The rest of the suite runs on the development key.
        await rotate_data_key(database, new, old)
    async with department_pool.acquire() as conn:
        restored = await _values(conn, CAMERA_CREDENTIALS)
    assert all(old.open(v, column=CAMERA_CREDENTIALS, row_id=i) for i, v in restored)


async def test_a_value_that_opens_with_neither_key_stops_its_table_unchanged(
    settings: Settings, database: Database, department_pool: asyncpg.Pool, sealed_world: dict[str, object],
) -> None:
    old = SecretBox(settings.data_key.get_secret_value())
    device = sealed_world["device"]
    async with department_pool.acquire() as conn:
        # A token sealed for another row: it opens nowhere else, so the rotation refuses the whole table.
        foreign = old.seal(b"fcm-token", column=FCM_TOKENS, row_id=uuid.uuid4())
        await conn.execute("UPDATE push_devices SET token_sealed = $2 WHERE id = $1", device, foreign)
        before = await _values(conn, FCM_TOKENS)
    new = SecretBox(new_data_key())
    try:
        with pytest.raises(RotationError, match=f"push_devices.token_sealed of row {device}"):
            await rotate_data_key(database, old, new)
        async with department_pool.acquire() as conn:
            assert await _values(conn, FCM_TOKENS) == before
    finally:
        async with department_pool.acquire() as conn:
            await conn.execute("UPDATE push_devices SET token_sealed = $2 WHERE id = $1", device,
                               old.seal(b"fcm-token", column=FCM_TOKENS, row_id=device))
        # The tables rotated before push_devices went back to the development key.
        await rotate_data_key(database, new, old)


async def test_every_sealed_column_of_the_schema_is_rotated(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database.owner_dsn)
    try:
        rows = await conn.fetch(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c WHERE c.table_schema = 'public' "
            "AND c.column_name LIKE '%\\_sealed' AND c.data_type = 'bytea'")
    finally:
        await conn.close()
    assert {(r["table_name"], r["column_name"]) for r in rows} == {(c.table, c.column) for c in SEALED_COLUMNS}
