"""The Engine.IO server: an HTTP handler that routes requests to sessions, and the polling timer.

Owns: ``EngineServer``: request validation with the Engine.IO error codes (in Node's order: transport,
origin, sid, method, handshake transport, protocol version), the handshake (sid allocation, open packet,
``engine_connect``), the sid table, and ``run``: one task per server holding a heap of polling-socket
deadlines (heartbeats and close lingers) and spawning the ``engine_disconnect`` calls no request task is
there to make. Knows nothing of HTTP parsing (``server.http``), of packet semantics (``protocol.py``) or
of Socket.IO.

Why a timer heap for polling: a polling socket has no task of its own between requests, and giving it one
would cost a task per socket for something that is usually upgraded within milliseconds. One heap task
per server checks a deadline per socket at exactly its time (no periodic sweep). Websocket sockets keep
their deadline in their reader task instead (``transports.read_websocket``).
"""

from __future__ import annotations

import heapq
import itertools
import math
import secrets
from collections import deque
from functools import partial

import structlog
import trio

from server.engineio import transports
from server.engineio.config import EngineConfig
from server.engineio.cors import CorsPolicy
from server.engineio.protocol import TRANSPORT_ERROR, SocketProtocol
from server.engineio.socket import NOTIFY_DONE, NOTIFY_NONE, NOTIFY_QUEUED, EngineApp, EngineSocket
from server.http.types import Request, Response, WebSocketAccept
from server.http.websocket import WebSocket

log = structlog.get_logger(__name__)

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

    def __init__(self, app: EngineApp, config: EngineConfig | None = None) -> None:
        self.app = app
        self.config = config or EngineConfig()
        self._cors = CorsPolicy(self.config.cors_allowed_origins, self.config.cors_credentials)
        self._sockets: dict[str, EngineSocket] = {}
        self._timers: list[tuple[float, int, EngineSocket]] = []
        self._seq = itertools.count()
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
                return self._error(request, FORBIDDEN)
            return cors.preflight(request)
        query = request.query
        transport = query.get("transport")
        if transport not in self.config.transports:
            return self._error(request, UNKNOWN_TRANSPORT)
        if not cors.allows(request):
            return self._error(request, FORBIDDEN)
        sid = query.get("sid")
        if sid is not None:
            sock = self._sockets.get(sid)
            if sock is None:
                return self._error(request, UNKNOWN_SID)
            if upgrade:
                if transport != "websocket":
                    return self._error(request, BAD_REQUEST)
                return WebSocketAccept(partial(transports.probe, sock))
            if sock.transport != transport:
                return self._error(request, BAD_REQUEST)  # e.g. polling after the upgrade
            if request.method == "GET":
                response = await transports.poll(sock)
                if response is None:
                    log.info("engine.io overlapping GET", sid=sid)
                    return self._error(request, BAD_REQUEST)
                response.headers.extend(cors.headers(request))
                return response
            if request.method == "POST":
                if len(request.body) > self.config.max_payload:
                    # Node answers 413 and drops the body; we also close: the client broke maxPayload.
                    sock._proto.abort(TRANSPORT_ERROR)
                    sock._sync()
                    return Response(413, b"", cors.headers(request))
                if not await transports.post(sock, request):
                    return self._error(request, BAD_REQUEST)
                return Response(200, b"ok", cors.headers(request), "text/html")
            return self._error(request, BAD_REQUEST)
        if request.method != "GET":
            return self._error(request, BAD_HANDSHAKE_METHOD)
        if transport == "websocket" and not upgrade:
            return self._error(request, BAD_REQUEST)
        if query.get("EIO") != "4":
            return self._error(request, UNSUPPORTED_PROTOCOL_VERSION)
        if upgrade:
            if transport != "websocket":
                return self._error(request, BAD_REQUEST)
            return WebSocketAccept(partial(self._open_websocket, request))
        return await self._open_polling(request)

    def _error(self, request: Request, code: int) -> Response:
        status = 403 if code == FORBIDDEN else 400
        message = ERROR_MESSAGES[code]
        if request.is_websocket_upgrade:  # Node's abortUpgrade: the bare message
            return Response(status, message.encode(), content_type="text/html")
        headers = self._cors.headers(request) if code != FORBIDDEN else []
        return Response.json(status, {"code": code, "message": message}, headers)

    # -- handshakes --------------------------------------------------------------------------------------

    def _create(self, request: Request, transport: str) -> EngineSocket:
        sid = secrets.token_urlsafe(15)
        while sid in self._sockets:
            sid = secrets.token_urlsafe(15)
        proto = SocketProtocol(sid, transport, self.config, trio.current_time())
        sock = EngineSocket(self, proto, request)
        self._sockets[sid] = sock
        return sock

    async def _connect(self, sock: EngineSocket) -> None:
        """``engine_connect``; if it raises, the socket is dropped without ``engine_disconnect``."""
        log.debug("engine.io socket open", sid=sock.sid, transport=sock.transport)
        try:
            await self.app.engine_connect(sock)
        except BaseException:
            sock._notify = NOTIFY_DONE
            sock._proto.abort(TRANSPORT_ERROR)
            sock._sync()
            raise
        sock._connected = True

    async def _open_polling(self, request: Request) -> Response:
        sock = self._create(request, "polling")
        body = sock._proto.open_packet("polling")
        await self._connect(sock)
        sock._sync()  # schedule the heartbeat
        if sock.closed:
            await sock._notify_disconnect()  # closed inside engine_connect
        return Response(200, body.encode(), self._cors.headers(request), transports.TEXT)

    async def _open_websocket(self, request: Request, ws: WebSocket) -> None:
        sock = self._create(request, "websocket")
        sock._ws = ws
        ws.send(sock._proto.open_packet("websocket"))
        try:
            await self._connect(sock)
        except BaseException:
            ws.close()
            raise
        sock._sync()
        await transports.read_websocket(sock, ws)

    # -- session table and polling timers (called by EngineSocket._sync) ----------------------------------

    def _forget(self, sock: EngineSocket) -> None:
        if self._sockets.get(sock.sid) is sock:
            del self._sockets[sock.sid]

    def _schedule(self, sock: EngineSocket) -> None:
        """Make the heap hold the socket's next deadline. Entries whose time no longer matches the
        socket's ``_timer_at`` are stale and skipped when they come up (at most a few per socket)."""
        deadline = sock._proto.next_deadline()
        if deadline == sock._timer_at or math.isinf(deadline):
            return
        sock._timer_at = deadline
        heapq.heappush(self._timers, (deadline, next(self._seq), sock))
        if self._timers[0][2] is sock and self._wake is not None:
            self._wake.set()

    def _defer_notify(self, sock: EngineSocket) -> None:
        if sock._notify != NOTIFY_NONE or not sock._connected:
            return
        sock._notify = NOTIFY_QUEUED
        self._pending_notify.append(sock)
        if self._wake is not None:
            self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The polling timer heap and the deferred ``engine_disconnect`` calls. Runs until cancelled."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            timers = self._timers
            pending = self._pending_notify
            while True:
                if pending:
                    await trio.lowlevel.checkpoint()
                else:
                    wake = self._wake = trio.Event()
                    with trio.move_on_at(timers[0][0] if timers else math.inf):
                        await wake.wait()
                    self._wake = None
                now = trio.current_time()
                while timers and timers[0][0] <= now:
                    at, _, sock = heapq.heappop(timers)
                    if sock._timer_at != at:
                        continue
                    sock._timer_at = None
                    if sock._ws is None:
                        sock._proto.on_timer(now)
                        sock._sync()
                while pending:
                    sock = pending.popleft()
                    if sock._notify != NOTIFY_DONE:
                        nursery.start_soon(sock._notify_disconnect_shielded)
