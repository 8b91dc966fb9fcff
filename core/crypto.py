"""Encryption of secrets at rest (AES-256-GCM) with the platform data key; the column name is bound as AAD."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class SecretBox:
    """Seals and opens small secrets; `purpose` binds a ciphertext to where it is stored."""

    def __init__(self, key_b64: str) -> None:
        key = base64.urlsafe_b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("the data key must be 32 bytes, urlsafe-base64 encoded")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, purpose: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, purpose.encode())

    def open(self, sealed: bytes, *, purpose: str) -> bytes:
        if sealed[:1] != _VERSION:
            raise ValueError("unknown ciphertext version")
        return self._aead.decrypt(sealed[1:13], sealed[13:], purpose.encode())
