"""Second-factor seeds (TOTP): generated and sealed at enrolment, shown once, and codes checked against them."""

from __future__ import annotations

import secrets as pysecrets
import time
import uuid

import pyotp

from core.crypto import TOTP_SEEDS, SecretBox
from identity.model import TotpEnrolment


def new_seed() -> str:
    return str(pyotp.random_base32())


def seal(secrets: SecretBox, seed: str, user_id: uuid.UUID) -> bytes:
    """The seed sealed for its account's row: copied onto another account, it does not open."""
    return secrets.seal(seed.encode(), column=TOTP_SEEDS, row_id=user_id)


def open_seed(secrets: SecretBox, sealed: bytes, user_id: uuid.UUID) -> str:
    return secrets.open(sealed, column=TOTP_SEEDS, row_id=user_id).decode()


def enrolment(seed: str, *, email: str, issuer: str) -> TotpEnrolment:
    """What the account holder scans once: the seed and its provisioning URI."""
    uri = pyotp.TOTP(seed).provisioning_uri(name=email, issuer_name=issuer)
    return TotpEnrolment(secret=seed, provisioning_uri=uri)


def matching_step(secrets: SecretBox, sealed: bytes | None, code: str, *, user_id: uuid.UUID) -> int | None:
    """The time step `code` matches (±1 step for clock drift), or None; the caller consumes the step once."""
    if sealed is None:
        return None
    totp = pyotp.TOTP(open_seed(secrets, sealed, user_id))
    now = int(time.time())
    for drift in (0, -1, 1):
        at = now + drift * totp.interval
        if pysecrets.compare_digest(totp.at(at), code):
            return int(at // totp.interval)
    return None


def seed_step(seed: str, code: str) -> int | None:
    """The time step `code` matches for a seed not stored yet (one an enrolment offers), or None."""
    totp = pyotp.TOTP(seed)
    now = int(time.time())
    for drift in (0, -1, 1):
        at = now + drift * totp.interval
        if pysecrets.compare_digest(totp.at(at), code):
            return int(at // totp.interval)
    return None
