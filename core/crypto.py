"""Encryption of secrets at rest (AES-256-GCM) with the platform data key; each value is bound to its table, column
and row (AAD), so a sealed value copied into another row or column does not open."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Version 1 bound a value to a purpose only ("camera-credentials"): it still opens, so the rows sealed before rows were
# bound keep working until `vigie keys rotate-data-key` re-seals them as version 2.
_V1 = b"\x01"
# Version 2 binds a value to "<table>.<column>:<row id>".
_V2 = b"\x02"


@dataclass(frozen=True)
class SealedColumn:
    """A column holding sealed values: where they live (the AAD names it) and the key column naming their row."""

    table: str
    column: str
    key: str
    # The AAD of version-1 values of this column.
    legacy_purpose: str

    def aad(self, row_id: object) -> bytes:
        return f"{self.table}.{self.column}:{row_id}".encode()


CAMERA_CREDENTIALS = SealedColumn("cameras", "credentials_sealed", "id", "camera-credentials")
TOTP_SEEDS = SealedColumn("users", "totp_secret_sealed", "id", "totp-seed")
TOKEN_SIGNING_KEYS = SealedColumn("signing_keys", "private_jwk_sealed", "kid", "signing-key")
EXPORT_SIGNING_KEYS = SealedColumn("export_signing_keys", "private_key_sealed", "id", "export-signing-key")
FCM_TOKENS = SealedColumn("push_devices", "token_sealed", "id", "fcm-token")
# The second-factor seed an enrolment link offers, until the person proves it with a code (migration 0081).
ENROLMENT_SEEDS = SealedColumn("enrolments", "offered_totp_sealed", "id", "enrolment-seed")
# Every sealed column of the schema: the data-key rotation re-seals each (a test checks the catalog against it).
SEALED_COLUMNS = (CAMERA_CREDENTIALS, TOTP_SEEDS, TOKEN_SIGNING_KEYS, EXPORT_SIGNING_KEYS, FCM_TOKENS, ENROLMENT_SEEDS)


def new_data_key() -> str:
    """A fresh 32-byte data key, urlsafe-base64 encoded (the form VIGIE_DATA_KEY takes)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class SecretBox:
    """Seals and opens small secrets under one data key."""

    def __init__(self, key_b64: str) -> None:
        try:
            key = base64.urlsafe_b64decode(key_b64)
        except ValueError as exc:
            raise ValueError("the data key must be 32 bytes, urlsafe-base64 encoded") from exc
        if len(key) != 32:
            raise ValueError("the data key must be 32 bytes, urlsafe-base64 encoded")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, column: SealedColumn, row_id: object) -> bytes:
        nonce = os.urandom(12)
        return _V2 + nonce + self._aead.encrypt(nonce, plaintext, column.aad(row_id))

    def open(self, sealed: bytes, *, column: SealedColumn, row_id: object) -> bytes:
        """The plaintext; raises cryptography's InvalidTag when the key, the column or the row is not the one it was
        sealed for."""
        version = sealed[:1]
        if version == _V2:
            aad = column.aad(row_id)
        elif version == _V1:
            aad = column.legacy_purpose.encode()
        else:
            raise ValueError("unknown ciphertext version")
        return self._aead.decrypt(sealed[1:13], sealed[13:], aad)

    @staticmethod
    def bound_to_row(sealed: bytes) -> bool:
        """Whether the value is of the current version (bound to its row), rather than a version-1 value."""
        return sealed[:1] == _V2
