"""The auditor's desk: who may use it, and each use case in the caller's scoped, read-only transaction."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

import msgspec

from core.db import Database
from core.errors import InvalidInput
from core.objectstore import ObjectStore
from core.tenancy import Principal, Role, require_role
from journal.desk.csv_export import csv_document
from journal.desk.model import AuditLine, DestructionRow, ExportRow, JournalVerification, RequisitionRow
from journal.desk.repository import AuditRepository
from journal.desk.verification import verify_scope
from journal.model import JournalFilter
from journal.service import JournalService

AUDIT_ROLES = frozenset({Role.AUDITOR, Role.DEPARTMENT_ADMIN})
# A CSV holds at most this many rows; past it the caller narrows the period.
CSV_MAX_ROWS = 10_000

RegisterKind = Literal["destructions", "requisitions", "exports", "transmissions"]
RegisterRow = DestructionRow | RequisitionRow | ExportRow

JOURNAL_HEADER = ("Date", "Commune", "Position", "Personne", "Rôle", "Action", "Objet", "Identifiant de l'objet",
                  "Caméra", "Début de la période vue", "Fin de la période vue", "Motif", "Destinataire", "Détails",
                  "Empreinte (SHA-256)")
HEADERS: dict[RegisterKind, tuple[str, ...]] = {
    "destructions": ("Date de destruction", "Commune", "Caméra", "Type", "Début", "Fin", "Conservation (jours)",
                     "Échéance", "Méthode", "Taille (octets)", "SHA-256"),
    "requisitions": ("Enregistrée le", "Commune", "Procédure", "Cadre", "OPJ", "Service", "Caméras", "Début", "Fin",
                     "Reçue le", "Enregistrée par", "Enregistrements gelés", "Levée le", "Motif de la levée"),
    "exports": ("Exporté le", "Commune", "Procédure", "Exporté par", "SHA-256 du paquet", "SHA-256 du manifeste",
                "Clé de signature", "Transmis le", "Destinataire"),
    "transmissions": ("Transmis le", "Commune", "Procédure", "Destinataire", "Exporté le", "Exporté par",
                      "SHA-256 du paquet", "Enregistré le"),
}


def check_period(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and until <= since:
        raise InvalidInput("the period ends before it starts", field="until")


def journal_row(line: AuditLine) -> Sequence[object]:
    return (line.occurred_at, line.tenant_name, line.position, line.actor_name, line.actor_role, line.action,
            line.target_type, line.target_id, line.camera_name or line.camera_id, line.range_start, line.range_end,
            line.motive, line.recipient, line.details, line.hash)


def register_row(kind: RegisterKind, row: RegisterRow) -> Sequence[object]:
    if isinstance(row, DestructionRow):
        return (row.destroyed_at, row.tenant_name, row.camera_name or row.camera_id, row.recording_type,
                row.start_at, row.end_at, row.retention_days, row.due_at, row.method, row.size_bytes, row.sha256)
    if isinstance(row, RequisitionRow):
        return (row.registered_at, row.tenant_name, row.procedure_number, row.legal_frame, row.opj_name,
                row.opj_service, row.camera_names, row.start_at, row.end_at, row.received_at,
                row.registered_by_name, row.holds, row.released_at, row.release_reason)
    if kind == "transmissions":
        return (row.transmitted_at, row.tenant_name, row.procedure_number, row.recipient, row.exported_at,
                row.exported_by_name, row.package_sha256, row.transmission_recorded_at)
    return (row.exported_at, row.tenant_name, row.procedure_number, row.exported_by_name, row.package_sha256,
            row.manifest_sha256, row.signing_key_id, row.transmitted_at, row.recipient)


class AuditService:
    """Stateless: the database and the store come from the caller (the API's composition root)."""

    def __init__(self, repository: AuditRepository | None = None, journal: JournalService | None = None) -> None:
        self._repo = repository or AuditRepository()
        self._journal = journal or JournalService()

    async def journal_lines(self, db: Database, principal: Principal, search: JournalFilter, *,
                            after: uuid.UUID | None, limit: int) -> list[AuditLine]:
        require_role(principal, AUDIT_ROLES, "search the access journal")
        check_period(search.since, search.until)
        async with db.transaction(principal, readonly=True) as conn:
            return await self._repo.journal_lines(conn, search, after=after, limit=limit)

    async def journal_csv(self, db: Database, principal: Principal, search: JournalFilter) -> bytes:
        lines = await self.journal_lines(db, principal, search, after=None, limit=CSV_MAX_ROWS + 1)
        _check_size(len(lines))
        document = csv_document(JOURNAL_HEADER, (journal_row(line) for line in lines))
        filters = {name: value for name, value in msgspec.to_builtins(search).items() if value is not None}
        await self._note_download(db, principal, "journal.csv_download", ("journal", None), document, len(lines),
                                  filters)
        return document

    async def verification(self, db: Database, principal: Principal, store: ObjectStore, space: uuid.UUID, *,
                           depth: int) -> JournalVerification:
        require_role(principal, AUDIT_ROLES, "verify the access journal")
        async with db.transaction(principal, readonly=True) as conn:
            return await verify_scope(conn, store, space, depth=depth)

    async def register(self, db: Database, principal: Principal, kind: RegisterKind, *, since: datetime | None,
                       until: datetime | None, after: uuid.UUID | None, limit: int) -> list[RegisterRow]:
        require_role(principal, AUDIT_ROLES, f"read the {kind} register")
        check_period(since, until)
        async with db.transaction(principal, readonly=True) as conn:
            if kind == "destructions":
                return list(await self._repo.destructions(conn, since, until, after, limit))
            if kind == "requisitions":
                return list(await self._repo.requisitions(conn, since, until, after, limit))
            return list(await self._repo.exports(conn, since, until, after, limit,
                                                 transmitted_only=kind == "transmissions"))

    async def register_csv(self, db: Database, principal: Principal, kind: RegisterKind, *,
                           since: datetime | None, until: datetime | None) -> bytes:
        rows = await self.register(db, principal, kind, since=since, until=until, after=None,
                                   limit=CSV_MAX_ROWS + 1)
        _check_size(len(rows))
        document = csv_document(HEADERS[kind], (register_row(kind, row) for row in rows))
        period = {name: value.isoformat() for name, value in (("since", since), ("until", until)) if value}
        await self._note_download(db, principal, "register.csv_download", ("register", kind), document, len(rows),
                                  period)
        return document

    async def _note_download(self, db: Database, principal: Principal, action: str, target: tuple[str, str | None],
                             document: bytes, rows: int, asked: Mapping[str, object]) -> None:
        """A copy of the journal or a register leaves the platform: who took it, what was asked, how many rows, and
        the document's SHA-256 (so a copy found later can be told genuine), in the taker's home tenant's chain."""
        async with db.transaction(principal) as conn:
            await self._journal.note(conn, principal, action, target, tenant_id=principal.home_tenant_id, rows=rows,
                                     sha256=hashlib.sha256(document).hexdigest(), query=asked)


def _check_size(count: int) -> None:
    if count > CSV_MAX_ROWS:
        raise InvalidInput(f"more than {CSV_MAX_ROWS} rows: narrow the period", field="since")
