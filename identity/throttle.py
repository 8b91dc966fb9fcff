"""Sign-in budgets: per client address, per account (the password and the second factor counted apart) and across the
platform. A correct password resets nothing by itself: failures start over only when the last factor succeeds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from core.db import Database
from core.errors import RateLimited
from core.settings import AuthSettings
from identity import rules
from identity.model import Account
from identity.repository import IdentityRepository
from identity.throttle_repository import ThrottleRepository

# Rows of past minutes are kept this long (diagnosis), then pruned by the first attempt of a new minute.
KEEP_WINDOWS = timedelta(minutes=10)
LOCKED_RETRY_S = 3600


def _minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


class SigninThrottle:
    """Every place that checks a credential (sign-in, second factor, enrolment link, a change of one's own password or
    second factor) admits the attempt here first and reports its outcome here."""

    def __init__(
        self,
        db: Database,
        settings: AuthSettings,
        repository: IdentityRepository | None = None,
        budgets: ThrottleRepository | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._repo = repository or IdentityRepository()
        self._budgets = budgets or ThrottleRepository()

    async def admit(self, client_ip: str) -> None:
        """Count one attempt from the client's address (an IPv6 address counts for its /64); refuse it past the
        address's budget, or while the platform's budget of failures for this minute is spent (a spray over many
        accounts from many addresses then slows everybody's sign-in to the next minute, never beyond)."""
        now = datetime.now(UTC)
        window = _minute(now)
        async with self._db.anonymous() as conn:
            attempts, failures = await self._budgets.admit(conn, rules.address_key(client_ip), window)
            if attempts == 1:
                await self._budgets.prune(conn, window - KEEP_WINDOWS)
        retry = 60 - now.second
        if attempts > self._settings.login_rate_per_ip_per_minute:
            raise RateLimited("too many sign-in attempts from this address", retry_after_s=retry)
        if failures >= self._settings.platform_failures_per_minute:
            raise RateLimited("too many failed sign-ins on the platform right now; retry in a minute",
                              retry_after_s=retry)

    def check_account(self, account: Account) -> None:
        """Refuse an attempt on a locked account (either counter past its limit) or one still in its delay."""
        if (
            account.failed_attempts >= self._settings.max_consecutive_failures
            or account.second_factor_failures >= self._settings.max_second_factor_failures
        ):
            raise RateLimited(
                "this account is locked after too many failures: an administrator must unlock it",
                retry_after_s=LOCKED_RETRY_S,
            )
        wait = rules.retry_after(
            account.failed_attempts,
            account.last_failed_at,
            datetime.now(UTC),
            free_attempts=self._settings.max_failures_before_delay,
        )
        if wait:
            raise RateLimited("too many failed attempts on this account; retry later", retry_after_s=wait)

    async def password_failed(self, conn: asyncpg.Connection, user_id: uuid.UUID | None) -> None:
        """A wrong password (or an unknown account: it counts for the platform all the same). The caller commits."""
        if user_id is not None:
            await self._repo.record_failure(conn, user_id)
        await self._budgets.count_failure(conn, _minute(datetime.now(UTC)))

    async def second_factor_failed(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
        """A wrong or replayed second-factor code; its counter is the second factor's own. The caller commits."""
        await self._budgets.second_factor_failed(conn, user_id)
        await self._budgets.count_failure(conn, _minute(datetime.now(UTC)))

    async def challenge_missed(self, conn: asyncpg.Connection, challenge_id: uuid.UUID) -> bool:
        """One more miss on a sign-in challenge; True when it is now burned."""
        return await self._budgets.challenge_missed(conn, challenge_id, self._settings.challenge_max_misses)

    async def succeeded(self, conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
        """The last factor of a sign-in succeeded: both counters start over."""
        await self._repo.record_success(conn, user_id)
