"""`vigie dvr reindex`: the recording index rebuilt from the object store after a database restore."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import date

from cli.database import department_database
from core.objectstore_settings import ObjectStoreSettings, open_object_store
from core.settings import Settings
from dvr.reindex import reindex


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from exc


async def cmd_dvr_reindex(settings: Settings, args: argparse.Namespace) -> int:
    store = open_object_store(ObjectStoreSettings())
    async with department_database(settings) as db:
        report = await reindex(db, store, since=args.since, tenant_id=args.tenant, dry_run=args.dry_run)
    verb = "would index" if args.dry_run else "indexed"
    print(f"{report.cameras} cameras, {report.stored} segments in the store, {report.already_indexed} already "
          f"indexed, {verb} {report.reindexed}")
    for problem in report.unreadable:
        print(f"unreadable: {problem}", file=sys.stderr)
    for key in report.missing:
        print(f"indexed but not in the store: {key}", file=sys.stderr)
    return 0 if report.clean else 1


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dvr = sub.add_parser("dvr", help="recordings").add_subparsers(dest="dvr_command", required=True)
    again = dvr.add_parser("reindex", help="index the stored segments the recording index lacks (after a restore)")
    again.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="only segments from this day on")
    again.add_argument("--tenant", type=uuid.UUID, metavar="UUID", help="only this tenant's cameras")
    again.add_argument("--dry-run", action="store_true", help="report, write nothing")
    again.set_defaults(run=cmd_dvr_reindex)
