"""Second-factor seeds (TOTP): generated and sealed at enrolment, shown once, and codes checked against them."""

from __future__ import annotations

import secrets as pysecrets
import time

import pyotp

from core.crypto import SecretBox
from identity.model import TotpEnrolment

TOTP_PURPOSE = "totp-seed"


def new_seed() -> str:
    return str(pyotp.random_base32())


def seal(secrets: SecretBox, seed: str) -> bytes:
    return secrets.seal(seed.encode(), purpose=TOTP_PURPOSE)


def enrolment(seed: str, *, email: str, issuer: str) -> TotpEnrolment:
    """What the account holder scans once: the seed and its provisioning URI."""
    uri = pyotp.TOTP(seed).provisioning_uri(name=email, issuer_name=issuer)
    return TotpEnrolment(secret=seed, provisioning_uri=uri)


def matching_step(secrets: SecretBox, sealed: bytes | None, code: str) -> int | None:
    """The time step `code` matches (±1 step for clock drift), or None; the caller consumes the step once."""
    if sealed is None:
        return None
    totp = pyotp.TOTP(secrets.open(sealed, purpose=TOTP_PURPOSE).decode())
    now = int(time.time())
    for drift in (0, -1, 1):
        at = now + drift * totp.interval
        if pysecrets.compare_digest(totp.at(at), code):
            return int(at // totp.interval)
    return None
