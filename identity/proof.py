"""Proof that an account's holder is at the keyboard: its current password, then a current code of its second factor
when it has one, each miss counted against the same budgets as a sign-in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn

import asyncpg

from core.crypto import SecretBox
from core.db import Database
from core.errors import AuthenticationFailed, InvalidInput
from identity import totp
from identity.model import Account
from identity.passwords import verify_password
from identity.repository import IdentityRepository
from identity.throttle import SigninThrottle

REFUSED = "invalid password or second-factor code"
# Also recorded with a miss, in the same transaction (e.g. the miss of an enrolment link); True when it burned it.
MissHook = Callable[[asyncpg.Connection], Awaitable[bool]]


class HolderProof:
    """Used where a person acts on their own credentials: changing their password or second factor, accepting an
    invitation with an account they already hold."""

    def __init__(self, db: Database, secrets: SecretBox, throttle: SigninThrottle, repository: IdentityRepository):
        self._db = db
        self._secrets = secrets
        self._throttle = throttle
        self._repo = repository

    async def check(
        self, account: Account, password: str, code: str | None, *, on_miss: MissHook | None = None
    ) -> None:
        """Raises RateLimited on a locked or delayed account, AuthenticationFailed on a wrong password or code (once
        the miss is committed), InvalidInput when the account has a second factor and no code was given."""
        self._throttle.check_account(account)
        # argon2 is CPU-bound: off the event loop.
        if not await asyncio.to_thread(verify_password, account.password_hash, password):
            await self._refuse(account, on_miss, second_factor=False)
        if account.totp_secret_sealed is None:
            return
        if code is None:
            raise InvalidInput("a current code of the account's second factor is required", field="code")
        async with self._db.anonymous() as conn:
            step = totp.matching_step(self._secrets, account.totp_secret_sealed, code, user_id=account.id)
            used = step is not None and await self._repo.use_totp_step(conn, account.id, step)
        if not used:
            await self._refuse(account, on_miss, second_factor=True)

    async def _refuse(self, account: Account, on_miss: MissHook | None, *, second_factor: bool) -> NoReturn:
        async with self._db.anonymous() as conn:
            if second_factor:
                await self._throttle.second_factor_failed(conn, account.id)
            else:
                await self._throttle.password_failed(conn, account.id)
            burned = await on_miss(conn) if on_miss is not None else False
        raise AuthenticationFailed(REFUSED + ("; this link is now void" if burned else ""))
