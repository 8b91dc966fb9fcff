"""`vigie secrets generate` (fresh production secrets as env lines) and `vigie keys rotate-data-key` (every sealed
column re-sealed under a new data key, bound to its row)."""

from __future__ import annotations

import argparse
import secrets as pysecrets
import sys
from dataclasses import dataclass

import asyncpg
from cryptography.exceptions import InvalidTag

from core.crypto import SEALED_COLUMNS, SealedColumn, SecretBox, new_data_key
from core.db import Database, open_database
from core.nats_auth import PROCESS_USERS
from core.settings import Settings


def generate_secrets() -> list[str]:
    """Env lines with fresh values for every secret that has a development default (refused in production)."""
    def token() -> str:
        return pysecrets.token_urlsafe(32)

    lines = [
        "# Fresh secrets for a production platform (VIGIE_ENVIRONMENT other than dev/test refuses the defaults).",
        f"VIGIE_DATA_KEY={new_data_key()}",
        f"VIGIE_OBJECTSTORE_PRESIGN_SECRET={token()}",
        # Shared by the API and the live gateway (they must hold the same value).
        f"VIGIE_LIVE_TICKET_KEY={token()}",
        f"VIGIE_DATABASE__OWNER_PASSWORD={token()}",
        f"VIGIE_DATABASE__APP_PASSWORD={token()}",
        f"VIGIE_DATABASE__DEPARTMENT_PASSWORD={token()}",
        "# NATS: one user per process; each line pair goes into that process's env file (and the server's users).",
    ]
    for user in PROCESS_USERS:
        lines += [f"# {user}", f"VIGIE_NATS__USER={user}", f"VIGIE_NATS__PASSWORD={token()}"]
    return lines


async def cmd_secrets_generate(_settings: Settings, _args: argparse.Namespace) -> int:
    print("\n".join(generate_secrets()))
    return 0


class RotationError(Exception):
    """A sealed value opens with neither the old nor the new key: the rotation of its table is rolled back."""


@dataclass(frozen=True)
class Resealed:
    column: SealedColumn
    resealed: int
    already: int


def _current(box: SecretBox, sealed: bytes, column: SealedColumn, row_id: object) -> bool:
    """Whether the value is already sealed for its row under this key (a rotation run before, or interrupted)."""
    if not SecretBox.bound_to_row(sealed):
        return False
    try:
        box.open(sealed, column=column, row_id=row_id)
    except InvalidTag:
        return False
    return True


async def reseal_column(conn: asyncpg.Connection, column: SealedColumn, old: SecretBox, new: SecretBox) -> Resealed:
    """Re-seal one column in one transaction: values under the old key (bound to their row or of version 1) are
    sealed again under the new key, bound to their row; values already so are left alone, so a second run (or one
    after an interruption) changes nothing."""
    # Identifiers come from the registry of sealed columns (core.crypto), never from input.
    table, value, key = f'"{column.table}"', f'"{column.column}"', f'"{column.key}"'
    resealed: list[tuple[object, bytes]] = []
    already = 0
    async with conn.transaction():
        rows = await conn.fetch(
            f"SELECT {key} AS id, {value} AS sealed FROM {table} WHERE {value} IS NOT NULL FOR UPDATE")  # noqa: S608
        for row in rows:
            if _current(new, row["sealed"], column, row["id"]):
                already += 1
                continue
            try:
                plaintext = old.open(row["sealed"], column=column, row_id=row["id"])
            except InvalidTag as exc:
                raise RotationError(f"{column.table}.{column.column} of row {row['id']} opens with neither the old "
                                    "nor the new key: nothing of this table was changed") from exc
            resealed.append((row["id"], new.seal(plaintext, column=column, row_id=row["id"])))
        await conn.executemany(f"UPDATE {table} SET {value} = $2 WHERE {key} = $1", resealed)  # noqa: S608
    return Resealed(column, len(resealed), already)


async def rotate_data_key(db: Database, old: SecretBox, new: SecretBox) -> list[Resealed]:
    """Every sealed column of the schema, one transaction per table."""
    done: list[Resealed] = []
    async with db.cross_tenant("data key rotation") as conn:
        for column in SEALED_COLUMNS:
            done.append(await reseal_column(conn, column, old, new))
    return done


def _key_argument(value: str | None, fallback: str) -> str:
    """A key given on the command line, or read from standard input when "-" (out of `ps` and shell history)."""
    if value is None:
        return fallback
    if value == "-":
        return sys.stdin.readline().strip()
    return value


async def cmd_rotate_data_key(settings: Settings, args: argparse.Namespace) -> int:
    try:
        old = SecretBox(_key_argument(args.old_key, settings.data_key.get_secret_value()))
        new = SecretBox(_key_argument(args.new_key, ""))
    except ValueError as exc:
        print(f"rotate-data-key: {exc}", file=sys.stderr)
        return 2
    db = await open_database(settings.database.app_dsn, settings.database.department_dsn,
                             app_pool_size=(1, 1), department_pool_size=(1, 1))
    try:
        done = await rotate_data_key(db, old, new)
    except RotationError as exc:
        print(f"rotate-data-key: {exc}", file=sys.stderr)
        return 1
    finally:
        await db.close()
    for item in done:
        print(f"{item.column.table}.{item.column.column}: {item.resealed} re-sealed, {item.already} already under "
              "the new key")
    print("done: set VIGIE_DATA_KEY to the new key in every process's environment and restart them")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                 keys: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`vigie secrets generate` and `vigie keys rotate-data-key`, added to the command line's parser."""
    group = commands.add_parser("secrets", help="production secrets").add_subparsers(dest="secrets_command",
                                                                                      required=True)
    group.add_parser("generate", help="print fresh secrets as env lines").set_defaults(run=cmd_secrets_generate)
    rotate = keys.add_parser("rotate-data-key", help="re-seal every sealed secret under a new data key")
    rotate.add_argument("--new-key", required=True, help="the new data key (urlsafe base64), or - to read it from "
                        "standard input")
    rotate.add_argument("--old-key", help="the key the secrets are sealed with now (default: VIGIE_DATA_KEY), or -")
    rotate.set_defaults(run=cmd_rotate_data_key)
