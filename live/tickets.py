"""Signs and checks live viewing tickets: HMAC-SHA256 under the key the API and the gateway share.

A ticket is `v1.<claims>.<mac>` (base64url, no padding). The signature makes it unforgeable and lets the gateway
refuse a bad or stale one without a database round trip; single use is enforced by the gateway's claim on the
ticket's live_views row.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import msgspec

from live.errors import TicketRejected
from live.model import TicketClaims

_PREFIX = "v1"
MAX_TICKET_CHARS = 1024
# Clocks of the API and gateway hosts may disagree a little; the database's clock has the last word on expiry.
CLOCK_LEEWAY_S = 5


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


MIN_KEY_CHARS = 32


def decode_key(key: str) -> bytes:
    """The shared key's bytes: a random string of at least 32 characters (`vigie secrets generate` prints one)."""
    if len(key) < MIN_KEY_CHARS:
        raise ValueError(f"the live ticket key must be at least {MIN_KEY_CHARS} characters")
    return key.encode()


class TicketSigner:
    """Issues (API) and verifies (gateway) tickets under one shared key."""

    def __init__(self, key: str) -> None:
        self._key = decode_key(key)
        self._decoder = msgspec.json.Decoder(TicketClaims)

    def _mac(self, signed: str) -> bytes:
        return hmac.new(self._key, signed.encode(), hashlib.sha256).digest()

    def sign(self, claims: TicketClaims) -> str:
        signed = f"{_PREFIX}.{_b64(msgspec.json.encode(claims))}"
        return f"{signed}.{_b64(self._mac(signed))}"

    def verify(self, ticket: str, *, now: float) -> TicketClaims:
        """The claims of a ticket this key signed that has not expired; TicketRejected otherwise."""
        if len(ticket) > MAX_TICKET_CHARS:
            raise TicketRejected("malformed ticket")
        parts = ticket.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise TicketRejected("malformed ticket")
        try:
            mac = _unb64(parts[2])
            payload = _unb64(parts[1])
        except (ValueError, binascii.Error) as exc:
            raise TicketRejected("malformed ticket") from exc
        if not hmac.compare_digest(mac, self._mac(f"{parts[0]}.{parts[1]}")):
            raise TicketRejected("ticket signature is not valid")
        try:
            claims = self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            raise TicketRejected("malformed ticket") from exc
        if claims.exp + CLOCK_LEEWAY_S < now:
            raise TicketRejected("ticket expired")
        return claims
