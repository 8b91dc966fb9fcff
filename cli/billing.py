"""`vigie billing …`: the monthly run, the documents, their validation and the Chorus Pro deposit of a department."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import facturx

from billing import validation
from billing.metering import Month
from billing.service import BillingService
from billing.settings import BillingSettings
from cli.database import department_database
from core.db import open_database
from core.errors import Unavailable, VigieError
from core.leadership import Leadership
from core.objectstore_settings import ObjectStoreSettings, open_object_store
from core.settings import Settings
from journal.service import JournalService


@asynccontextmanager
async def billing_service(settings: Settings) -> AsyncIterator[BillingService]:
    """The runtime role only: the run reads the department through its GUC, never across the RLS."""
    db = await open_database(settings.database.app_dsn, app_pool_size=(1, 6))
    service = BillingService(db, JournalService(), open_object_store(ObjectStoreSettings()), BillingSettings())
    try:
        yield service
    finally:
        service.close()
        await db.close()


async def _department(service: BillingService, code: str | None) -> str:
    if code is not None:
        return code
    codes = await service.department_codes()
    if len(codes) != 1:
        raise ValueError(f"this platform has {len(codes)} departments ({', '.join(codes) or 'none'}): "
                         "name one with --department")
    return codes[0]


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


async def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    async with billing_service(settings) as service:
        code = await _department(service, args.department)
        # One monthly run of a department at a time, whichever machine or scheduled job starts it: the lock is held
        # on a department connection of its own (the run itself reads through the runtime role).
        async with department_database(settings) as lock_db, Leadership(lock_db, f"billing-run:{code}").term() as term:
            if term is None:
                print(f"a billing run of department {code} is already under way; nothing done", file=sys.stderr)
                return 1
            return await _run(service, code, args)


async def _run(service: BillingService, code: str, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    run = await service.run_department_month(code, str(args.month))
    outcome = run.outcome
    print(f"{args.month}: {len(outcome.issued)} issued, {len(outcome.already_issued)} already issued, "
          f"{outcome.nothing_to_bill} with nothing to bill ({time.perf_counter() - started:.1f} s, run {run.id})")
    for ref in outcome.issued:
        print(f"  issued {ref.number}  {ref.total_ttc} € TTC  tenant {ref.tenant_id}")
    for problem in outcome.problems:
        print(f"  NOT BILLED {problem.tenant_name}: {problem.problem}", file=sys.stderr)
    for camera in outcome.unplanned_cameras:
        print(f"  camera without a plan: {camera.name} ({camera.camera_id}), {camera.days} days", file=sys.stderr)
    if not args.no_documents:
        department_id = await service.department_id(code)
        ids = [ref.invoice_id for ref in outcome.issued]
        stored = await service.render_documents(department_id, ids)
        print(f"  {len(stored)} documents stored")
    return 1 if outcome.problems else 0


async def cmd_documents(settings: Settings, args: argparse.Namespace) -> int:
    async with billing_service(settings) as service:
        department_id = await service.department_id(await _department(service, args.department))
        ids = await service.month_documents(department_id, args.month)
        stored = await service.render_documents(department_id, ids)
        print(f"{args.month}: {len(ids)} documents, {len(stored)} rendered and stored now")
    return 0


async def cmd_validate(settings: Settings, args: argparse.Namespace) -> int:
    """Every stored document of the month: its embedded XML against the XSD and the EN 16931 schematron."""
    failures = 0
    async with billing_service(settings) as service:
        department_id = await service.department_id(await _department(service, args.department))
        ids = await service.month_documents(department_id, args.month)
        await service.render_documents(department_id, ids)
        for name, pdf in await service.stored_documents(department_id, ids):
            _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
            try:
                await asyncio.to_thread(validation.validate, xml)
            except validation.InvalidDocument as exc:
                failures += 1
                print(f"{name}: INVALID {exc}", file=sys.stderr)
        print(f"{args.month}: {len(ids) - failures} of {len(ids)} documents valid (XSD and EN 16931 schematron)")
    return 1 if failures else 0


async def cmd_deposit(settings: Settings, args: argparse.Namespace) -> int:
    async with billing_service(settings) as service:
        department_id = await service.department_id(await _department(service, args.department))
        part, written = 1, []
        while True:
            name, data = await service.deposit_for(department_id, args.month, part)
            path = Path(args.out) / name
            path.write_bytes(data)
            written.append(path)
            if "-of-" not in name or name.endswith(f"-{part}-of-{part}.zip"):
                break
            part += 1
    for path in written:
        print(f"{path} ({path.stat().st_size} bytes): deposit it on Chorus Pro (envoi d'un lot de factures)")
    return 0


def _guarded(run: Callable[[Settings, argparse.Namespace], Awaitable[int]]) -> Callable[..., Awaitable[int]]:
    """Clear messages instead of tracebacks: what was refused and why."""

    async def guarded(settings: Settings, args: argparse.Namespace) -> int:
        try:
            return await run(settings, args)
        except Unavailable as exc:
            print(f"billing: {exc.detail}", file=sys.stderr)
            return 1
        except VigieError as exc:
            field = getattr(exc, "field", None)
            print(f"billing: {exc.detail}{f' ({field})' if field else ''}", file=sys.stderr)
            return 2
        except (ValueError, OSError) as exc:
            print(f"billing: {exc}", file=sys.stderr)
            return 2

    return guarded


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    billing = sub.add_parser("billing", help="monthly invoices, documents, Chorus Pro deposit").add_subparsers(
        dest="billing_command", required=True
    )
    for name, run, text in (
        ("run", cmd_run, "bill a month that has ended (idempotent) and store its documents"),
        ("documents", cmd_documents, "render and store the month's documents not stored yet"),
        ("validate", cmd_validate, "check every document of the month: XSD and EN 16931 schematron"),
        ("deposit", cmd_deposit, "write the month's Chorus Pro deposit (ZIP of Factur-X PDFs)"),
    ):
        command = billing.add_parser(name, help=text)
        command.add_argument("--month", required=True, type=_month, help="YYYY-MM")
        command.add_argument("--department", help="department code (needed when the platform has several)")
        if name == "run":
            command.add_argument("--no-documents", action="store_true", help="issue only; render later")
        if name == "deposit":
            command.add_argument("--out", default=".", help="folder to write the ZIP into")
        command.set_defaults(run=_guarded(run))
