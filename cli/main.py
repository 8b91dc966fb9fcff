"""`vigie` command line: database, demo, journal verification and anchors, keys, communes, second-factor codes for the
demo."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pyotp

from cli.billing import add_commands as add_billing_commands
from cli.bus import add_commands as add_bus_commands
from cli.capacity import add_commands as add_capacity_commands
from cli.database import department_database
from cli.dvr import add_commands as add_dvr_commands
from cli.evidence import add_commands as add_evidence_commands
from cli.evidence import provision_evidence_keys
from cli.secrets import add_commands as add_secret_commands
from core.crypto import SecretBox
from core.errors import InvalidInput
from core.logging import configure_logging
from core.migrate import prepare_database
from core.settings import Settings, get_settings
from identity.keys import rotate_signing_key
from identity.repository import IdentityRepository
from identity.totp import open_seed
from tenants.model import Commune
from tenants.repository import TenancyRepository
from tenants.rules import check_insee_format


async def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    await prepare_database(settings)
    print("database ready")
    return 0


async def ensure_signing_key(settings: Settings) -> str | None:
    """Create the first signing key when there is none; returns its kid, or None if one existed."""
    async with department_database(settings) as db, db.cross_tenant("signing key provisioning") as conn:
        if await IdentityRepository().has_live_signing_key(conn):
            return None
        return await rotate_signing_key(
            conn,
            SecretBox(settings.data_key.get_secret_value()),
            IdentityRepository(),
            publish_ahead=timedelta(0),
            keep_published=timedelta(seconds=settings.auth.access_ttl_s * 2),
        )


async def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    async with department_database(settings) as db, db.cross_tenant("signing key rotation") as conn:
        kid = await rotate_signing_key(
            conn,
            SecretBox(settings.data_key.get_secret_value()),
            IdentityRepository(),
            publish_ahead=timedelta(seconds=args.publish_ahead),
            keep_published=timedelta(seconds=max(args.keep_published, settings.auth.access_ttl_s)),
        )
    print(f"new signing key {kid}: published now, signs after {args.publish_ahead}s")
    return 0


def read_communes(path: Path) -> list[Commune]:
    """Parse an INSEE COG extract; raises ValueError naming the line that is wrong."""
    communes: list[Commune] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"insee_code", "name", "department_code"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            code = (row["insee_code"] or "").strip()
            try:
                check_insee_format(code)
            except InvalidInput as exc:
                raise ValueError(f"{path}:{line}: {code!r} is not an INSEE commune code") from exc
            communes.append(Commune(code, (row["name"] or "").strip(), (row["department_code"] or "").strip()))
    return communes


async def cmd_communes_import(settings: Settings, args: argparse.Namespace) -> int:
    try:
        communes = await asyncio.to_thread(read_communes, Path(args.csv))
    except FileNotFoundError:
        print(f"{args.csv}: no such file", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    async with department_database(settings) as db, db.cross_tenant("communes import") as conn, conn.transaction():
        count = await TenancyRepository().upsert_communes(conn, communes)
    print(f"{count} communes loaded")
    return 0


async def cmd_totp(settings: Settings, args: argparse.Namespace) -> int:
    if settings.environment not in ("dev", "test"):
        print("second-factor codes are shown only on dev and test platforms", file=sys.stderr)
        return 2
    async with department_database(settings) as db, db.anonymous() as conn:
        account = await IdentityRepository().account_by_email(conn, args.email)
    if account is None or account.totp_secret_sealed is None:
        print(f"{args.email}: no account with a second factor", file=sys.stderr)
        return 1
    secret = open_seed(SecretBox(settings.data_key.get_secret_value()), account.totp_secret_sealed, account.id)
    print(pyotp.TOTP(secret).now())
    return 0


async def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    # The steps the demo shares with the other commands run here, so cli.demo never imports this module.
    settings = await prepare_database(settings)
    await ensure_signing_key(settings)
    await provision_evidence_keys(settings)
    code: int = await run_demo(settings, with_api=not args.no_api)
    return code


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="vigie", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create roles and database if needed, apply migrations").set_defaults(
        run=cmd_migrate
    )
    demo = sub.add_parser("demo", help="start the platform on embedded defaults with a seeded department")
    demo.add_argument("--no-api", action="store_true", help="prepare and seed, then exit")
    demo.set_defaults(run=cmd_demo)
    audit = sub.add_parser("audit", help="access journal").add_subparsers(dest="audit_command", required=True)
    add_evidence_commands(sub, audit)
    keys = sub.add_parser("keys", help="token signing keys").add_subparsers(dest="keys_command", required=True)
    rotate = keys.add_parser("rotate", help="publish a new signing key")
    rotate.add_argument("--publish-ahead", type=int, default=60, help="seconds before it starts signing")
    rotate.add_argument("--keep-published", type=int, default=3600, help="seconds old keys stay published")
    rotate.set_defaults(run=cmd_keys_rotate)
    add_secret_commands(sub, keys)
    communes = sub.add_parser("communes", help="commune list").add_subparsers(dest="communes_command", required=True)
    load = communes.add_parser("import", help="load an INSEE COG CSV (insee_code,name,department_code)")
    load.add_argument("csv")
    load.set_defaults(run=cmd_communes_import)
    totp = sub.add_parser("totp", help="current second-factor code of a demo account (dev only)")
    totp.add_argument("email")
    totp.set_defaults(run=cmd_totp)
    add_billing_commands(sub)
    add_bus_commands(sub)
    add_capacity_commands(sub)
    add_dvr_commands(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        code: int = asyncio.run(args.run(settings, args))
    except KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())
