"""The health watch, a department job (one leader): re-evaluates every camera's health (an authorisation ends at
midnight without anyone reporting), opens and mails maintenance tickets, and publishes each transition once."""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from core.db import Database
from core.ids import new_id
from core.logging import get_logger
from health.mailer import SmtpSender
from health.repository import HealthRepository
from health.settings import HealthSettings

log = get_logger(__name__)


@dataclass(frozen=True)
class PublishedTransition:
    transition_id: int
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    from_state: str | None
    to_state: str
    detail: str | None
    at: datetime


TransitionSink = Callable[[PublishedTransition], Awaitable[None]]


_STATE_WORDS = {"offline": "hors ligne", "degraded": "dégradée", "frozen": "image figée", "tampered": "masquée ou "
                "détournée"}


@dataclass
class HealthWatch:
    db: Database
    publish: TransitionSink
    settings: HealthSettings = field(default_factory=HealthSettings)
    mailer: SmtpSender | None = None
    repo: HealthRepository = field(default_factory=HealthRepository)
    batch: int = 500

    def __post_init__(self) -> None:
        if self.mailer is None:
            self.mailer = SmtpSender(self.settings)

    async def open_tickets(self) -> list[uuid.UUID]:
        """A ticket for every camera out of order beyond the threshold (one until resolved), mailed to the tenant's
        maintainer and the department; a mail that fails is recorded on the ticket, which the console shows."""
        opened: list[tuple[uuid.UUID, asyncpg.Record]] = []
        async with self.db.cross_tenant("camera health watch") as conn, conn.transaction():
            await self.repo.note_restorations(conn)
            for row in await self.repo.outages_without_ticket(conn, self.settings.ticket_after_s):
                ticket_id = new_id()
                if await self.repo.open_ticket(conn, ticket_id, row):
                    opened.append((ticket_id, row))
        for ticket_id, row in opened:
            to = [a for a in (row["maintainer_email"], row["maintenance_email"]) if a]
            error = None
            assert self.mailer is not None
            if not to:
                error = "aucun contact de maintenance (commune ni département)"
            elif not self.mailer.configured:
                error = "aucun relais SMTP configuré"
            else:
                try:
                    await self.mailer.send(to, *ticket_mail(ticket_id, row))
                except (OSError, smtplib.SMTPException) as exc:
                    error = f"envoi refusé : {exc}"
            async with self.db.cross_tenant("camera health watch") as conn:
                await self.repo.ticket_notified(conn, ticket_id, to, error)
            log.info("health.ticket_opened", ticket_id=str(ticket_id), camera_id=str(row["camera_id"]),
                     state=row["state"], notified=to, error=error)
        return [ticket_id for ticket_id, _ in opened]

    async def reevaluate(self) -> int:
        """Every camera in service, re-combined; how many changed state."""
        changed = 0
        async with self.db.cross_tenant("camera health watch") as conn:
            cameras = await self.repo.watched_cameras(conn)
        for row in cameras:
            async with self.db.cross_tenant("camera health watch") as conn, conn.transaction():
                if await self.repo.report(conn, row["tenant_id"], row["camera_id"], None, None, None) is not None:
                    changed += 1
        return changed

    async def relay(self) -> int:
        """Publish the transitions not yet published, in order; each is marked only after the server's ack (the
        event id is derived from the transition, so a republish after a crash is a duplicate the stream drops)."""
        sent = 0
        while True:
            async with self.db.cross_tenant("camera health watch") as conn, conn.transaction():
                rows = await self.repo.unpublished(conn, self.batch)
                for row in rows:
                    await self.publish(PublishedTransition(
                        transition_id=int(row["id"]), tenant_id=row["tenant_id"], camera_id=row["camera_id"],
                        from_state=row["from_state"], to_state=row["to_state"], detail=row["detail"], at=row["at"]))
                    await self.repo.mark_published(conn, int(row["id"]))
                    sent += 1
            if len(rows) < self.batch:
                return sent

    async def run_once(self) -> None:
        changed = await self.reevaluate()
        tickets = await self.open_tickets()
        sent = await self.relay()
        if changed or sent or tickets:
            log.info("health.watch", changed=changed, published=sent, tickets=len(tickets))


def ticket_mail(ticket_id: uuid.UUID, row: asyncpg.Record) -> tuple[str, str]:
    """Subject and body of a ticket's e-mail (French: read by the commune's maintainer and the department)."""
    state = _STATE_WORDS.get(row["state"], row["state"])
    since = row["since"].astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y %H:%M")
    subject = f"[Vigie] Caméra {row['camera_name']} ({row['tenant_name']}) : {state} depuis {since}"
    body = (f"Bonjour,\n\nLa caméra « {row['camera_name']} » de {row['tenant_name']} est {state} depuis le {since} "
            f"(heure de Paris).\nDétail : {row['detail'] or 'non précisé'}\n\n"
            f"Ticket de maintenance : {ticket_id}\nMerci d'intervenir et de clore le ticket depuis la console Vigie "
            f"une fois la caméra rétablie.\n\n-- \nCentre de supervision départemental (Vigie)\n")
    return subject, body
