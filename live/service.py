"""Live viewing use cases: the API issues a journaled, signed, single-use ticket per viewing; the gateway redeems it,
loads the camera's stream, re-checks the session while the viewing lasts, and records its end."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import msgspec

from core.crypto import CAMERA_CREDENTIALS, SecretBox
from core.db import Database
from core.errors import Conflict, NotFound, OutOfScope
from core.ids import new_id
from core.tenancy import Principal, require_role
from journal.errors import MotiveRequired
from journal.service import JournalService
from live.errors import CameraGone, LiveRefused, TicketMismatch, TicketRejected, TicketUsed
from live.model import CameraSource, LiveView, Stream, TicketClaims, TicketGrant, Viewing
from live.repository import LiveRepository
from live.rules import LIVE_ROLES, LIVE_VIEW_READERS, mask_polygons, session_refusal, url_with_credentials
from live.settings import LiveSettings
from live.tickets import TicketSigner


@dataclass
class LiveService:
    """Built once by the API (tickets, the viewings record) and once by the gateway (redemption, heartbeat, end; it
    alone holds the SecretBox that opens camera credentials)."""

    db: Database
    signer: TicketSigner
    settings: LiveSettings
    journal: JournalService = field(default_factory=JournalService)
    secrets: SecretBox | None = None
    repo: LiveRepository = field(default_factory=LiveRepository)

    # -- API -------------------------------------------------------------------------------------------------------
    async def issue_ticket(
        self, principal: Principal, camera_id: uuid.UUID, *, stream: Stream, motive: str | None
    ) -> TicketGrant:
        """A ticket for one viewing of one camera's stream, journaled (media.live: who, camera, start, motive) in the
        same transaction as its live_views row."""
        require_role(principal, LIVE_ROLES, "watch live video")
        if motive is None or not motive.strip():
            raise MotiveRequired()
        motive = motive.strip()
        view_id = new_id()
        async with self.db.transaction(principal) as conn:
            camera = await self.repo.camera_status(conn, camera_id)
            if camera is None:
                raise NotFound("no such camera")
            if camera["status"] == "disabled":
                raise Conflict("the camera is disabled")
            tenant_id: uuid.UUID = camera["tenant_id"]
            issued_at, expires_at = await self.repo.insert_view(
                conn, view_id=view_id, tenant_id=tenant_id, camera_id=camera_id, user_id=principal.user_id,
                session_id=principal.session_id, stream=stream, motive=motive, ttl_s=self.settings.ticket_ttl_s)
            await self.journal.record(conn, tenant_id=tenant_id, actor=principal, action="media.live",
                                      target_type="live_view", target_id=view_id, camera_id=camera_id,
                                      range_start=issued_at, motive=motive, details={"stream": stream.value})
        claims = TicketClaims(jti=view_id, tid=tenant_id, cam=camera_id, stream=stream, sub=principal.user_id,
                              sid=principal.session_id, exp=int(expires_at.timestamp()))
        url = f"{self.settings.public_url.rstrip('/')}/live/cameras/{camera_id}?stream={stream.value}"
        return TicketGrant(ticket=self.signer.sign(claims), url=url, expires_at=expires_at, view_id=view_id,
                           stream=stream)

    async def views(
        self, principal: Principal, camera_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
    ) -> list[LiveView]:
        """A camera's viewings, newest first: who, which stream, why, when issued, started and ended."""
        require_role(principal, LIVE_VIEW_READERS, "read live viewings")
        async with self.db.transaction(principal, readonly=True) as conn:
            found = await self.repo.views(conn, camera_id, after, limit)
            # The record outlives a removed camera; a camera neither known nor watched in scope is not found.
            if not found and after is None and await self.repo.camera_status(conn, camera_id) is None:
                raise NotFound("no such camera")
        return found

    # -- gateway ---------------------------------------------------------------------------------------------------
    async def redeem(self, ticket: str, camera_id: uuid.UUID, stream: Stream, *, gateway_id: str) -> Viewing:
        """Check a ticket and start its viewing (once), in the ticket's tenant: its session must still allow live
        viewing and the camera must still belong to that tenant. Raises a LiveRefused naming the close code."""
        claims = self.signer.verify(ticket, now=time.time())
        if claims.cam != camera_id:
            raise TicketMismatch("this ticket was issued for another camera")
        if claims.stream != stream:
            raise TicketMismatch(f"this ticket was issued for the {claims.stream.value} stream")
        now = datetime.now(UTC)
        try:
            async with self.db.for_tenants([claims.tid], camera_id=claims.cam) as conn:
                refusal = session_refusal(await self.repo.session_state(conn, claims.sid), now=now, today=now.date())
                if refusal is not None:
                    raise TicketRejected(refusal)
                camera = await self.repo.camera_source(conn, claims.cam)
                if camera is None:
                    raise CameraGone("no such camera")
                if camera["status"] == "disabled":
                    raise LiveRefused("the camera is disabled", code=CameraGone.code)
                started = await self.repo.claim(conn, claims, gateway_id)
                if started is None:
                    raise await self._unclaimed(conn, claims)
        except OutOfScope as exc:
            raise CameraGone("no such camera") from exc
        return Viewing(claims=claims, source=self._source(claims, camera), started_at=started)

    async def _unclaimed(self, conn: asyncpg.Connection, claims: TicketClaims) -> LiveRefused:
        row = await self.repo.view(conn, claims.jti)
        if row is None:
            return TicketRejected("unknown ticket")
        if row["started_at"] is not None:
            return TicketUsed("this ticket was already used: ask the API for a new one")
        if row["expired"]:
            return TicketRejected("ticket expired")
        return TicketRejected("the ticket does not match its viewing")

    def _source(self, claims: TicketClaims, camera: asyncpg.Record) -> CameraSource:
        # A camera without a sub stream serves its main stream to wall tiles too.
        url: str = camera["main_stream_url"]
        if claims.stream is Stream.SUB and camera["sub_stream_url"]:
            url = camera["sub_stream_url"]
        if camera["credentials_sealed"] is not None:
            if self.secrets is None:
                raise RuntimeError("the gateway needs the data key to open camera credentials")
            opened = self.secrets.open(camera["credentials_sealed"], column=CAMERA_CREDENTIALS, row_id=claims.cam)
            credentials = msgspec.json.decode(opened)
            url = url_with_credentials(url, credentials.get("username"), credentials.get("password"))
        return CameraSource(camera_id=claims.cam, stream=claims.stream, url=url, transcode=camera["live_transcode"],
                            masks=mask_polygons(msgspec.json.decode(camera["privacy_masks"] or "[]")))

    async def heartbeat(self, viewing: Viewing) -> str | None:
        """While a viewing lasts: why its session no longer allows it (revoked, expired, habilitation lapsed), or None
        after marking it alive."""
        now = datetime.now(UTC)
        async with self.db.for_tenants([viewing.claims.tid]) as conn:
            refusal = session_refusal(await self.repo.session_state(conn, viewing.claims.sid), now=now,
                                      today=now.date())
            if refusal is None:
                await self.repo.touch(conn, viewing.view_id)
        return refusal

    async def end(self, viewing: Viewing, reason: str) -> bool:
        """Record the viewing's end (once)."""
        async with self.db.for_tenants([viewing.claims.tid]) as conn:
            return await self.repo.end(conn, viewing.view_id, reason)
