"""The Engine.IO server: an HTTP handler that routes requests to sessions, and the server's tasks.

Owns: ``EngineServer``: request validation with the Engine.IO error codes (in Node's order: transport,
origin, sid, method, handshake transport, protocol version), the handshake (sid allocation, then the
socket's own handshake), the sid table, and ``run``: the one ``TimerQueue`` task holding every polling
socket's deadline (heartbeats and close lingers), and the ``engine_disconnect`` calls no request task is
there to make. Knows nothing of HTTP parsing (``server.http``), of packet semantics (``protocol.py``), of a
socket's state (``socket.py``) or of Socket.IO.

Why a timer queue for polling: a polling socket has no task of its own between requests, and giving it one
would cost a task per socket for something that is usually upgraded within milliseconds. One timer task
per server fires a deadline per socket at exactly its time (no periodic sweep). Websocket sockets keep
their deadline in their reader task instead (``EngineSocket``'s reader loop).
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from functools import partial

import structlog
import trio

from actors.timers import TimerQueue
from server.engineio.address_cap import AddressCap
from server.engineio.config import EngineConfig
from server.engineio.cors import CorsPolicy
from server.engineio.interfaces import EngineApp
from server.engineio.protocol import TRANSPORT_ERROR, SocketProtocol
from server.engineio.socket import EngineSocket
from server.http.types import Request, Response, WebSocketAccept
from server.http.websocket import WebSocket

log = structlog.get_logger(__name__)

TEXT = "text/plain; charset=UTF-8"

UNKNOWN_TRANSPORT, UNKNOWN_SID, BAD_HANDSHAKE_METHOD, BAD_REQUEST, FORBIDDEN, UNSUPPORTED_PROTOCOL_VERSION = (
    range(6)
)
ERROR_MESSAGES = {
    UNKNOWN_TRANSPORT: "Transport unknown",
    UNKNOWN_SID: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


class EngineServer:
    """Mount ``handle`` at the Engine.IO path; run ``run`` in a nursery you own (polling needs it)."""

    def __init__(
        self,
        app: EngineApp,
        config: EngineConfig | None = None,
        *,
        on_upgrade: Callable[[EngineSocket], object] | None = None,
    ) -> None:
        """``on_upgrade(sock)``, if given, is called (synchronously) when a polling socket upgrades."""
        self.app = app
        self.on_upgrade = on_upgrade
        self.config = config or EngineConfig()
        self._cors = CorsPolicy(self.config.cors_allowed_origins, self.config.cors_credentials)
        self._sockets: dict[str, EngineSocket] = {}
        self._cap = AddressCap(self.config.max_connections_per_address, self.config.trusted_proxies)
        self._address_of: dict[str, str] = {}  # sid -> client address, only while a cap is set
        self.timers = TimerQueue()  # every polling socket's next deadline
        self._wake: trio.Event | None = None
        self._pending_notify: deque[EngineSocket] = deque()

    # -- introspection -----------------------------------------------------------------------------------

    def get(self, sid: str) -> EngineSocket | None:
        return self._sockets.get(sid)

    def __len__(self) -> int:
        return len(self._sockets)

    # -- the HTTP handler --------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response | WebSocketAccept:
        """Route one HTTP request (polling GET/POST, websocket upgrade, CORS preflight)."""
        cors = self._cors
        upgrade = request.is_websocket_upgrade
        if request.method == "OPTIONS" and not upgrade:
            if not cors.allows(request):
                return self._refuse_origin(request)
            return cors.preflight(request)
        query = request.query
        transport = query.get("transport")
        if transport not in self.config.transports:
            return self._error(request, UNKNOWN_TRANSPORT)
        if not cors.allows(request):
            return self._refuse_origin(request)
        sid = query.get("sid")
        if sid is not None:
            sock = self._sockets.get(sid)
            if sock is not None and not upgrade:
                sock.catch_up()  # a deadline that passed goes first: the request may find the sid gone
                sock = self._sockets.get(sid)
            if sock is None:
                return self._error(request, UNKNOWN_SID)
            if upgrade:
                if transport != "websocket":
                    return self._error(request, BAD_REQUEST)
                return WebSocketAccept(sock.probe)
            if sock.transport != transport:
                return self._error(request, BAD_REQUEST)  # e.g. polling after the upgrade
            if request.method == "GET":
                body = await sock.poll()
                if body is None:
                    log.info("engine.io overlapping GET", sid=sid)
                    return self._error(request, BAD_REQUEST)
                return Response(200, body.encode("utf-8"), cors.headers(request), TEXT)
            if request.method == "POST":
                if len(request.body) > self.config.max_payload:
                    # Node answers 413 and drops the body; we also close: the client broke maxPayload.
                    sock.abort(TRANSPORT_ERROR)
                    return Response(413, b"", cors.headers(request))
                if not await sock.post(request):
                    return self._error(request, BAD_REQUEST)
                return Response(200, b"ok", cors.headers(request), "text/html")
            return self._error(request, BAD_REQUEST)
        if request.method != "GET":
            return self._error(request, BAD_HANDSHAKE_METHOD)
        if transport == "websocket" and not upgrade:
            return self._error(request, BAD_REQUEST)
        if query.get("EIO") != "4":
            return self._error(request, UNSUPPORTED_PROTOCOL_VERSION)
        if self._cap.limit is not None and not self._cap.allows(self._client_address(request)):
            return self._refuse_address(request)
        if upgrade:
            if transport != "websocket":
                return self._error(request, BAD_REQUEST)
            return WebSocketAccept(partial(self._open_websocket, request))
        return await self._open_polling(request)

    def _client_address(self, request: Request) -> str:
        return self._cap.address(request.remote[0], request.headers)

    def _refuse_address(self, request: Request) -> Response:
        address = self._client_address(request)
        log.info("engineio.refused", reason="too many connections from this address", address=address,
                 limit=self._cap.limit)
        message = b"Too many connections from this address"
        if request.is_websocket_upgrade:
            return Response(429, message, content_type="text/html")
        body = {"code": BAD_REQUEST, "message": message.decode()}
        return Response.json(429, body, self._cors.headers(request))

    def _refuse_origin(self, request: Request) -> Response:
        log.info(
            "engineio.refused", reason="origin not allowed (CORS)", origin=request.headers.get("origin"),
            host=request.headers.get("host"), hint="add it to [engineio] cors_allowed_origins",
        )
        return self._error(request, FORBIDDEN)

    def _error(self, request: Request, code: int) -> Response:
        status = 403 if code == FORBIDDEN else 400
        message = ERROR_MESSAGES[code]
        if request.is_websocket_upgrade:  # Node's abortUpgrade: the bare message
            return Response(status, message.encode(), content_type="text/html")
        headers = self._cors.headers(request) if code != FORBIDDEN else []
        return Response.json(status, {"code": code, "message": message}, headers)

    # -- handshakes --------------------------------------------------------------------------------------

    def _create(self, request: Request, transport: str, ws: WebSocket | None = None) -> EngineSocket:
        sid = secrets.token_urlsafe(15)
        while sid in self._sockets:
            sid = secrets.token_urlsafe(15)
        proto = SocketProtocol(sid, transport, self.config, trio.current_time())
        sock = EngineSocket(self, proto, request, ws)
        self._sockets[sid] = sock
        if self._cap.limit is not None:
            address = self._address_of[sid] = self._client_address(request)
            self._cap.opened(address)
        return sock

    async def _open_polling(self, request: Request) -> Response:
        body = await self._create(request, "polling").open_polling()
        return Response(200, body.encode(), self._cors.headers(request), TEXT)

    async def _open_websocket(self, request: Request, ws: WebSocket) -> None:
        await self._create(request, "websocket", ws).open_websocket()

    # -- SocketHost: called by the sockets ----------------------------------------------------------------

    def forget(self, sock: EngineSocket) -> None:
        """``sock`` closed: its sid is unknown from now on."""
        if self._sockets.get(sock.sid) is sock:
            del self._sockets[sock.sid]
            address = self._address_of.pop(sock.sid, None)
            if address is not None:
                self._cap.closed(address)

    def upgraded(self, sock: EngineSocket) -> None:
        """``sock`` moved to its websocket."""
        if self.on_upgrade is not None:
            self.on_upgrade(sock)

    def defer_disconnect(self, sock: EngineSocket) -> None:
        """Have ``sock.notify_disconnect()`` run in a task of ``run`` (no request task is there to)."""
        self._pending_notify.append(sock)
        if self._wake is not None:
            self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Every socket's heartbeat timer (polling and websocket) and the deferred ``engine_disconnect``
        calls. Runs until cancelled; without it no socket is ever pinged."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.timers.run)
            task_status.started()
            pending = self._pending_notify
            while True:
                if pending:
                    await trio.lowlevel.checkpoint()
                else:
                    wake = self._wake = trio.Event()
                    await wake.wait()
                    self._wake = None
                while pending:
                    nursery.start_soon(pending.popleft().notify_disconnect)
