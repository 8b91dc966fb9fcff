"""The platform's error tree; the API maps it to problem+json in one place (api/errors.py).

* VigieError
  + NotFound            - absent, or belongs to a tenant outside the caller's scope (indistinguishable)
  + Conflict            - state forbids the action (double claim, duplicate name, closed alert)
  + InvalidInput        - a field breaks a rule; carries the field name
  + LegalRuleViolation  - an InvalidInput that a law forbids; carries the legal reference
  + AuthenticationFailed- credentials, token or session not valid
  + PermissionDenied    - authenticated, but the role does not allow the action
  + RateLimited         - too many attempts; carries retry_after_s
  + Unavailable         - a dependency (database, bus, store) is down
  + OutOfScope          - an event names a camera that belongs to none of its tenants (never retried)
"""

from __future__ import annotations


class VigieError(Exception):
    """Base of every error the platform raises on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(VigieError):
    """The object does not exist for this caller."""


class Conflict(VigieError):
    """The object's state or a uniqueness rule forbids the change."""


class InvalidInput(VigieError):
    """A field of the request breaks a rule."""

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class LegalRuleViolation(InvalidInput):
    """A field breaks a rule set by law; `reference` cites it."""

    def __init__(self, detail: str, *, field: str, reference: str) -> None:
        super().__init__(detail, field=field)
        self.reference = reference


class AuthenticationFailed(VigieError):
    """Credentials, token or session are not valid."""


class SecondFactorRequired(AuthenticationFailed):
    """Password accepted, a TOTP code is needed to finish signing in."""


class PermissionDenied(VigieError):
    """The caller's role does not allow the action."""


class RateLimited(VigieError):
    """Too many attempts; retry after `retry_after_s` seconds."""

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Unavailable(VigieError):
    """A dependency is down."""


class OutOfScope(VigieError):
    """An event names a camera outside the tenants it claims: a bad event, never retried."""
