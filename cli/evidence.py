"""`vigie evidence init-key` (the platform's evidence keys, provisioned once), `vigie audit anchor` (a journal anchor
now) and `vigie audit verify` (every chain, and every signed anchor in the object-locked store)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cli.database import department_database
from core.crypto import SecretBox
from core.objectstore_settings import ObjectStoreSettings, open_object_store
from core.settings import Settings
from journal.anchors import JournalAnchorer, anchor_space, load_anchors
from journal.errors import EvidenceKeyMissing
from journal.keys import KeyPurpose, key_id, load_public_pem, provision_key, public_key, trusted_keys
from journal.service import JournalService


async def provision_evidence_keys(settings: Settings) -> dict[KeyPurpose, tuple[str, bool]]:
    """Create the export signing key and the journal anchor key where missing (idempotent); each key's id and
    whether it was created now."""
    box = SecretBox(settings.data_key.get_secret_value())
    async with department_database(settings) as db, db.cross_tenant("evidence key provisioning") as conn, \
            conn.transaction():
        return {purpose: await provision_key(conn, box, purpose) for purpose in KeyPurpose}


async def cmd_evidence_init_key(settings: Settings, _: argparse.Namespace) -> int:
    keys = await provision_evidence_keys(settings)
    async with department_database(settings) as db, db.anonymous(readonly=True) as conn:
        pems = {purpose: await public_key(conn, purpose) for purpose in KeyPurpose}
    for purpose, (kid, created) in keys.items():
        print(f"{purpose.value} key {kid}: {'created' if created else 'already provisioned'}")
        print(pems[purpose].decode(), end="")
    return 0


async def cmd_audit_anchor(settings: Settings, _: argparse.Namespace) -> int:
    box = SecretBox(settings.data_key.get_secret_value())
    async with department_database(settings) as db:
        anchorer = JournalAnchorer(db=db, store=open_object_store(ObjectStoreSettings()), secret_box=box,
                                   space=anchor_space(settings.database.name))
        try:
            anchor = await anchorer.anchor_once(force=True)
        except EvidenceKeyMissing as exc:
            print(str(exc), file=sys.stderr)
            return 2
    if anchor is None:
        print("another process is writing an anchor right now; nothing done", file=sys.stderr)
        return 1
    print(f"journal anchored: {len(anchor.chains)} chains at {anchor.anchored_at.isoformat()} ({anchor.anchor_id})")
    return 0


async def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    pinned: dict[str, Ed25519PublicKey] = {}
    for path in args.public_key or []:
        key = load_public_pem(await asyncio.to_thread(Path(path).read_bytes))
        pinned[key_id(key)] = key
    async with department_database(settings) as db, db.cross_tenant("journal verification") as conn:
        # The provisioned keys (all of them: old anchors stay verifiable), plus any key pinned on the command line.
        trusted = {**await trusted_keys(conn, KeyPurpose.JOURNAL_ANCHOR), **pinned}
        anchors = await load_anchors(open_object_store(ObjectStoreSettings()), anchor_space(settings.database.name),
                                     trusted)
        report = await JournalService().verify(conn, anchors)
    newest = report.newest_anchor.isoformat(timespec="seconds") if report.newest_anchor else None
    summary = (f"{report.entries} entries in {report.chains} chains; {report.anchors} signed anchors checked"
               + (f", newest {newest}" if newest else ""))
    if report.intact and not report.anchors:
        print("no journal anchor found in the store: only the chains' own consistency was checked", file=sys.stderr)
        if args.require_anchors:
            return 1
    if report.intact:
        print(f"journal intact: {summary}")
        return 0
    count = len(report.problems) + len(report.anchor_problems)
    print(f"journal TAMPERED: {count} problems; {summary}", file=sys.stderr)
    for problem in report.anchor_problems:
        print(f"  {problem}", file=sys.stderr)
    for found in report.problems:
        print(f"  tenant {found.tenant_id} position {found.position}: {found.problem}", file=sys.stderr)
    return 1


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                 audit: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evidence = sub.add_parser("evidence", help="evidence keys").add_subparsers(dest="evidence_command",
                                                                               required=True)
    evidence.add_parser("init-key", help="provision the export signing and journal anchor keys (once)").set_defaults(
        run=cmd_evidence_init_key)
    verify = audit.add_parser("verify", help="detect any altered, removed or rewritten journal line")
    verify.add_argument("--public-key", action="append", metavar="PEM",
                        help="a journal anchor key to trust besides those provisioned (repeatable)")
    verify.add_argument("--require-anchors", action="store_true", help="fail when the store holds no anchor")
    verify.set_defaults(run=cmd_audit_verify)
    audit.add_parser("anchor", help="write a signed anchor of every chain head now").set_defaults(
        run=cmd_audit_anchor)
