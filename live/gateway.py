"""The gateway's HTTP side: the WebSocket a browser opens per tile (ticket first, then fMP4 in binary frames and JSON
status in text frames), and its health."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, MediaType, WebSocket, get, websocket
from litestar.exceptions import WebSocketDisconnect

from core.logging import get_logger
from live import protocol
from live.errors import BAD_REQUEST, FORBIDDEN, INTERNAL, TICKET_REJECTED, LiveRefused
from live.hub import ViewerHub
from live.model import Stream, Viewing
from live.remuxer import Closing, Viewer
from live.service import LiveService
from live.settings import LiveSettings

log = get_logger(__name__)


class _TicketMessage(msgspec.Struct, frozen=True):
    ticket: str


_TICKET = msgspec.json.Decoder(_TicketMessage)


async def _refuse(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> None:
    """An error frame the console can show, then the close frame with the same code and reason."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await socket.send_text(protocol.error(code, reason))
        await socket.close(code=code, reason=reason)


class LiveGateway:
    """One socket per viewing: the ticket is the first text frame (never in the URL, which proxies log), then the
    gateway streams until the viewer leaves, its session ends, or the camera's codec cannot play."""

    def __init__(self, service: LiveService, hub: ViewerHub, settings: LiveSettings, gateway_id: str) -> None:
        self.service, self.hub, self.settings, self.gateway_id = service, hub, settings, gateway_id

    async def serve(self, socket: WebSocket[Any, Any, Any], camera_id: uuid.UUID) -> None:
        origin = socket.headers.get("origin")
        await socket.accept()
        if self.settings.allowed_origins and origin not in self.settings.allowed_origins:
            await _refuse(socket, FORBIDDEN, "origin not allowed")
            return
        try:
            stream = Stream(socket.query_params.get("stream", Stream.SUB.value))
        except ValueError:
            await _refuse(socket, BAD_REQUEST, "stream must be main or sub")
            return
        try:
            event = await asyncio.wait_for(socket.receive(), timeout=self.settings.ticket_wait_s)
        except TimeoutError:
            await _refuse(socket, BAD_REQUEST, 'send {"ticket": "..."} first')
            return
        except WebSocketDisconnect:
            return
        if event["type"] == "websocket.disconnect":
            return
        frame = event.get("text") or event.get("bytes") or b""
        try:
            if not isinstance(frame, str | bytes):
                raise msgspec.DecodeError("not a frame")
            ticket = _TICKET.decode(frame).ticket
        except msgspec.DecodeError:
            await _refuse(socket, BAD_REQUEST, 'the first frame must be {"ticket": "..."}')
            return
        try:
            viewing = await self.service.redeem(ticket, camera_id, stream, gateway_id=self.gateway_id)
        except LiveRefused as exc:
            self.hub.refused.labels(type(exc).__name__).inc()
            log.info("live.refused", camera_id=str(camera_id), stream=stream.value, code=exc.code, reason=exc.detail)
            await _refuse(socket, exc.code, exc.detail)
            return
        except (asyncpg.PostgresError, OSError) as exc:
            log.error("live.redeem_failed", camera_id=str(camera_id), error=str(exc))
            await _refuse(socket, INTERNAL, "the gateway cannot check tickets now; retry")
            return
        except Exception:
            # A camera whose credentials no longer open (another data key), say: the viewer is told, the cause logged.
            log.exception("live.redeem_error", camera_id=str(camera_id))
            await _refuse(socket, INTERNAL, "the gateway could not open this camera")
            return
        await self._watch(socket, viewing)

    async def _watch(self, socket: WebSocket[Any, Any, Any], viewing: Viewing) -> None:
        viewer = Viewer(self.settings.viewer_queue_fragments)
        try:
            self.hub.join(viewing.source, viewer)
        except LiveRefused as exc:
            await self._end(viewing, "viewer_cap")
            await _refuse(socket, exc.code, exc.detail)
            return
        log.info("live.viewing_started", view_id=str(viewing.view_id), camera_id=str(viewing.source.camera_id),
                 stream=viewing.source.stream.value, user_id=str(viewing.claims.sub))
        tasks = {
            asyncio.create_task(self._pump(socket, viewer), name="pump"),
            asyncio.create_task(self._listen(socket), name="listen"),
            asyncio.create_task(self._heartbeat(viewing, viewer), name="heartbeat"),
        }
        reason = "client_closed"
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            reason = next(iter(done)).result()
            if viewer.closing is not None:
                # The gateway ended it (session revoked, codec, shutdown): that, not the socket closing after, is why.
                reason = f"closed {viewer.closing.code}: {viewer.closing.reason}"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.hub.leave(viewer)
            await self._end(viewing, reason)
            log.info("live.viewing_ended", view_id=str(viewing.view_id), reason=reason, dropped=viewer.dropped)

    async def _pump(self, socket: WebSocket[Any, Any, Any], viewer: Viewer) -> str:
        """Send what the session queued for this viewer; returns why it stopped."""
        try:
            while True:
                item = await viewer.next()
                if isinstance(item, Closing):
                    await _refuse(socket, item.code, item.reason)
                    return f"closed {item.code}: {item.reason}"
                if isinstance(item, bytes):
                    await socket.send_bytes(item)
                else:
                    await socket.send_text(item)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return "client_closed"

    async def _listen(self, socket: WebSocket[Any, Any, Any]) -> str:
        """Nothing is expected from the viewer once it watches; reading notices when it goes."""
        try:
            while True:
                await socket.receive_data(mode="text")
        except (WebSocketDisconnect, RuntimeError, OSError):
            return "client_closed"

    async def _heartbeat(self, viewing: Viewing, viewer: Viewer) -> str:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            try:
                refusal = await self.service.heartbeat(viewing)
            except (asyncpg.PostgresError, OSError) as exc:
                # The database may be back at the next beat; the picture keeps flowing meanwhile.
                log.warning("live.heartbeat_failed", view_id=str(viewing.view_id), error=str(exc))
                continue
            if refusal is not None:
                viewer.close(TICKET_REJECTED, refusal)
                # The pump sends the close frame and returns: the viewing ends then.
                await asyncio.Event().wait()

    async def _end(self, viewing: Viewing, reason: str) -> None:
        try:
            await asyncio.shield(self.service.end(viewing, reason))
        except (asyncpg.PostgresError, OSError) as exc:
            log.error("live.end_not_recorded", view_id=str(viewing.view_id), error=str(exc))


def create_gateway(service: LiveService, hub: ViewerHub, settings: LiveSettings, gateway_id: str) -> Litestar:
    gateway = LiveGateway(service, hub, settings, gateway_id)

    @websocket("/live/cameras/{camera_id:uuid}")
    async def live_socket(socket: WebSocket[Any, Any, Any], camera_id: uuid.UUID) -> None:
        await gateway.serve(socket, camera_id)

    @get("/healthz", media_type=MediaType.JSON)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sessions": len(hub.sessions)}

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await hub.close()

    # logging_config=None: records go through the platform's JSON handler (core.logging), not litestar's own format.
    return Litestar(route_handlers=[live_socket, healthz], lifespan=[lifespan], logging_config=None,
                    debug=False)
