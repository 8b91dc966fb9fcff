"""Use cases of prefectoral authorisations: the prefecture issues them, the department's admins record them (with the
décret 2023-828 event types they grant and the scan of the order), tenant admins and the CSU read them. Each runs in
one scoped transaction and journals what it does."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from core.db import Database
from core.errors import InvalidInput, NotFound
from core.ids import new_id
from core.objectstore import ObjectReader, ObjectStore
from core.tenancy import DEPARTMENT_ADMINS, STAFF_READERS, Principal, Role, require_role
from journal.service import JournalService
from tenants import rules
from tenants.model import Authorisation, AuthorisationCreate, AuthorisationExpiry, OrderScan
from tenants.repository import TenancyRepository

# Only the department records what the prefecture authorised: a commune cannot grant itself a legal basis.
AUTHORISATION_RECORDERS = DEPARTMENT_ADMINS
# Who is warned of authorisations coming to an end: the department (it files renewals) and the tenant's admins.
EXPIRY_READERS = frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN})


def _today() -> date:
    return datetime.now(UTC).date()


def _paris_today() -> date:
    # The orders' dates are French calendar days (paris_today() in SQL, migration 0125).
    return datetime.now(ZoneInfo("Europe/Paris")).date()


def order_scan_key(camera_id: uuid.UUID, authorisation_id: uuid.UUID, sha256: str) -> str:
    return f"authorisations/{camera_id}/{authorisation_id}/order-{sha256[:16]}.pdf"


class AuthorisationService:
    """Prefectoral authorisations of cameras, as seen by one principal."""

    def __init__(self, db: Database, store: ObjectStore, journal: JournalService | None = None,
                 repository: TenancyRepository | None = None) -> None:
        self._db = db
        self._store = store
        self._journal = journal or JournalService()
        self._repo = repository or TenancyRepository()

    async def list_authorisations(self, principal: Principal, camera_id: uuid.UUID) -> list[Authorisation]:
        require_role(principal, STAFF_READERS, "read authorisations")
        async with self._db.transaction(principal, readonly=True) as conn:
            if await self._repo.camera(conn, camera_id) is None:
                raise NotFound("no such camera")
            return await self._repo.authorisations(conn, camera_id)

    async def expiring(self, principal: Principal, *, within_days: int = max(rules.EXPIRY_WARNING_DAYS),
                       tenant_id: uuid.UUID | None = None, today: date | None = None) -> list[AuthorisationExpiry]:
        """Cameras in scope whose authorisation ends within `within_days` (warned 60, 30 and 7 days ahead), and
        those with none today, which neither record nor run analytics; soonest first."""
        require_role(principal, EXPIRY_READERS, "read authorisation expiries")
        today = today or _paris_today()
        async with self._db.transaction(principal, readonly=True) as conn:
            rows = await self._repo.authorisation_windows(conn, tenant_id)
        found: list[AuthorisationExpiry] = []
        for row in rows:
            until = rules.authorised_until(list(zip(row["valid_from"], row["valid_until"], strict=True)), today)
            days_left = None if until is None else (until - today).days
            if days_left is not None and days_left > within_days:
                continue
            found.append(AuthorisationExpiry(
                camera_id=row["camera_id"], tenant_id=row["tenant_id"], camera_name=row["name"],
                state="unauthorised" if until is None else "expiring", authorised_until=until, days_left=days_left,
                warning_days=None if days_left is None else rules.expiry_warning(days_left),
                prefectoral_order_number=row["latest_order"]))
        return sorted(found, key=lambda e: (e.days_left is not None, e.days_left or 0, e.camera_name))

    async def get_authorisation(self, principal: Principal, authorisation_id: uuid.UUID) -> Authorisation:
        require_role(principal, STAFF_READERS, "read authorisations")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._authorisation(conn, authorisation_id)

    async def _authorisation(self, conn: asyncpg.Connection, authorisation_id: uuid.UUID) -> Authorisation:
        found = await self._repo.authorisation(conn, authorisation_id)
        if found is None:
            raise NotFound("no such authorisation")
        return found

    async def create_authorisation(
        self, principal: Principal, camera_id: uuid.UUID, data: AuthorisationCreate
    ) -> Authorisation:
        """Record the prefectoral order for a camera and the event types it grants (department admins only)."""
        require_role(principal, AUTHORISATION_RECORDERS, "record prefectoral authorisations")
        purposes = rules.check_purposes(list(data.purposes))
        rules.check_retention_bounds(data.max_retention_days, data.min_retention_days)
        rules.check_authorisation_window(data.valid_from, data.valid_until, today=_today())
        seen: set[str] = set()
        for index, grant in enumerate(data.event_types):
            field = f"event_types[{index}]"
            rules.check_event_type(grant.event_type, field=f"{field}.event_type")
            rules.check_event_window(
                grant.valid_from, grant.valid_until, data.valid_from, data.valid_until, field=field
            )
            if grant.event_type in seen:
                raise InvalidInput(f"{grant.event_type} is listed twice", field=field)
            seen.add(grant.event_type)
        async with self._db.transaction(principal) as conn:
            camera = await self._repo.camera(conn, camera_id)
            if camera is None:
                raise NotFound("no such camera")
            authorisation_id = await self._repo.insert_authorisation(
                conn,
                {
                    "id": new_id(),
                    "tenant_id": camera.tenant_id,
                    "camera_id": camera_id,
                    "prefectoral_order_number": data.prefectoral_order_number,
                    "purposes": purposes,
                    "max_retention_days": data.max_retention_days,
                    "min_retention_days": data.min_retention_days,
                    "valid_from": data.valid_from,
                    "valid_until": data.valid_until,
                    "authorised_viewers": data.authorised_viewers,
                    "recorded_by": principal.user_id,
                },
            )
            for grant in data.event_types:
                await self._repo.upsert_event_type(
                    conn,
                    {
                        "id": new_id(),
                        "tenant_id": camera.tenant_id,
                        "authorisation_id": authorisation_id,
                        **msgspec.structs.asdict(grant),
                    },
                )
            await self._journal.note(
                conn, principal, "authorisation.create", ("authorisation", authorisation_id),
                tenant_id=camera.tenant_id, camera_id=camera_id, order=data.prefectoral_order_number,
                event_types=sorted(seen),
            )
            return await self._authorisation(conn, authorisation_id)

    async def file_order_scan(self, principal: Principal, authorisation_id: uuid.UUID,
                              chunks: AsyncIterable[bytes]) -> Authorisation:
        """Store the PDF scan of the prefectoral order (department admins only): streamed to disk with its SHA-256,
        checked to be a PDF within the cap, stored in the tenant's space, recorded and journaled. A new scan
        replaces the previous one in the record; both stay in the versioned store and in the journal."""
        require_role(principal, AUTHORISATION_RECORDERS, "file prefectoral orders")
        async with self._db.transaction(principal, readonly=True) as conn:
            authorisation = await self._authorisation(conn, authorisation_id)
        with tempfile.TemporaryDirectory(prefix="vigie-order-") as tmp:
            path = Path(tmp) / "order.pdf"
            sha256, size = await _spool(chunks, path)
            key = order_scan_key(authorisation.camera_id, authorisation_id, sha256)
            stored = await self._store.put_file(authorisation.tenant_id, key, path,
                                                content_type=rules.ORDER_SCAN_MEDIA_TYPE, sha256=sha256)
        async with self._db.transaction(principal) as conn:
            if not await self._repo.set_order_scan(conn, authorisation_id, key=key, version_id=stored.version_id,
                                                   sha256=sha256, size=size, uploaded_by=principal.user_id):
                raise NotFound("no such authorisation")
            await self._journal.note(
                conn, principal, "authorisation.order_filed", ("authorisation", authorisation_id),
                tenant_id=authorisation.tenant_id, camera_id=authorisation.camera_id,
                order=authorisation.prefectoral_order_number, sha256=sha256, size_bytes=size,
            )
            return await self._authorisation(conn, authorisation_id)

    async def order_scan(self, principal: Principal, authorisation_id: uuid.UUID) -> tuple[OrderScan, ObjectReader]:
        """The filed scan, opened for streaming, after journaling who read it (tenant admins and the CSU)."""
        require_role(principal, STAFF_READERS, "read prefectoral orders")
        async with self._db.transaction(principal) as conn:
            authorisation = await self._authorisation(conn, authorisation_id)
            where = await self._repo.order_scan_object(conn, authorisation_id)
            if authorisation.order_scan is None or where is None:
                raise NotFound("no scan of this prefectoral order was filed")
            await self._journal.note(
                conn, principal, "authorisation.order_read", ("authorisation", authorisation_id),
                tenant_id=authorisation.tenant_id, camera_id=authorisation.camera_id,
                sha256=authorisation.order_scan.sha256,
            )
        reader = await self._store.read_stream(authorisation.tenant_id, where[0], version_id=where[1])
        return authorisation.order_scan, reader


async def _spool(chunks: AsyncIterable[bytes], path: Path) -> tuple[str, int]:
    """Write the body to `path` in chunks, hashing it and holding it to the cap; its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        async for chunk in chunks:
            size += len(chunk)
            if size > rules.ORDER_SCAN_MAX_BYTES:
                rules.check_order_scan(head, size)
            if len(head) < 8:
                head = (head + chunk)[:8]
            digest.update(chunk)
            await asyncio.to_thread(f.write, chunk)
    rules.check_order_scan(head, size)
    return digest.hexdigest(), size
