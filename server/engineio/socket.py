"""The Engine.IO socket the application sees, and the application's interface.

Owns: ``EngineSocket`` (the thin trio glue around one ``SocketProtocol``: it moves the outbox to the
websocket or wakes the pending GET, closes transports when the protocol says so, schedules the polling
heartbeat with the server's timer, and calls ``engine_disconnect`` exactly once) and ``EngineApp``.
Knows nothing of HTTP routing or request parsing (``server.py``, ``transports.py``) and nothing of
Socket.IO.

Where the application's coroutines run (the contract in docs/architecture.md): ``engine_connect`` in the
handshake request (polling) or the websocket's reader task; ``engine_message`` in the task that read the
packet (the POST request or the websocket reader); ``engine_disconnect`` in the websocket reader when the
socket is on a websocket, in the POST request that carried the close or the bad packet, and otherwise
(ping timeout, ``close()`` from elsewhere, a GET that went away) in a short task of ``EngineServer.run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import structlog
import trio

from server.engineio._state import Phase, is_polling
from server.engineio.codec import OutgoingMessage, encode_message
from server.engineio.protocol import SERVER_DISCONNECT, TRANSPORT_CLOSE, TRANSPORT_ERROR, SocketProtocol
from server.http.frames import CLOSE_POLICY
from server.http.types import Request

if TYPE_CHECKING:
    from server.engineio.server import EngineServer
    from server.http.websocket import WebSocket

log = structlog.get_logger(__name__)

NOTIFY_NONE, NOTIFY_QUEUED, NOTIFY_DONE = range(3)


class EngineApp(Protocol):
    """What the layer above (Socket.IO) implements."""

    async def engine_connect(self, sock: EngineSocket) -> None: ...

    async def engine_message(self, sock: EngineSocket, data: str | bytes) -> None: ...

    async def engine_disconnect(self, sock: EngineSocket, reason: str) -> None: ...


class EngineSocket:
    """One Engine.IO session. ``send`` and ``close`` never await."""

    __slots__ = (
        "__weakref__",
        "_connected",
        "_drained",
        "_notify",
        "_poll_wake",
        "_probe_ws",
        "_proto",
        "_reader_scope",
        "_server",
        "_timer_at",
        "_ws",
        "request",
        "sid",
    )

    def __init__(self, server: EngineServer, proto: SocketProtocol, request: Request) -> None:
        self.sid = proto.sid
        self.request = request
        self._server = server
        self._proto = proto
        self._ws: WebSocket | None = None  # the websocket transport (opened so, or after the upgrade)
        self._probe_ws: WebSocket | None = None  # an upgrade probe in progress
        self._poll_wake: trio.Event | None = None  # set when the pending GET can be answered
        self._drained: trio.Event | None = None  # polling wait_writable() waiters
        self._reader_scope: trio.CancelScope | None = None  # around the websocket reader's receive()
        self._timer_at: float | None = None  # the live entry of this socket in the server's timer heap
        self._connected = False  # engine_connect returned
        self._notify = NOTIFY_NONE  # engine_disconnect: not yet / queued in the server / called

    def __repr__(self) -> str:
        return f"<EngineSocket sid={self.sid} phase={self._proto.phase.value}>"

    # -- public ------------------------------------------------------------------------------------------

    @property
    def transport(self) -> str:
        """ "polling" or "websocket" (after an upgrade: "websocket")."""
        return self._proto.transport

    @property
    def closed(self) -> bool:
        """True from the moment the socket starts closing: sends are dropped from then on."""
        return not self._proto.open

    @property
    def close_reason(self) -> str | None:
        return self._proto.close_reason

    def send(self, data: str | bytes | OutgoingMessage) -> None:
        """Send a MESSAGE packet without awaiting. Dropped if the socket is closed. A polling socket holds
        at most ``max_buffered_packets`` for its next GET and closes ("transport error") past that; a
        websocket writes at once and the HTTP layer bounds its buffer (a slow consumer is closed)."""
        proto = self._proto
        if not proto.open:
            return
        ws = self._ws
        if ws is not None and proto.phase is Phase.WEBSOCKET and not proto.buffered:
            # The hot path: straight to the websocket, no outbox.
            if isinstance(data, OutgoingMessage):
                sent = ws.send_frame(data.frame)
            else:
                sent = ws.send(encode_message(data))
            if not sent:
                proto.abort(TRANSPORT_ERROR if ws.close_code == CLOSE_POLICY else TRANSPORT_CLOSE)
                self._sync()
            return
        proto.queue(data if isinstance(data, OutgoingMessage) else encode_message(data))
        self._sync()

    def close(self, reason: str = SERVER_DISCONNECT) -> None:
        """Close the socket (idempotent, non-blocking). Packets already sent are still delivered: on
        polling the next GET collects them with the close packet; on a websocket they are written now."""
        if self._proto.server_close(trio.current_time(), reason):
            self._sync()

    async def wait_writable(self) -> None:
        """Return once the socket can take more without risking its bound (or is closed)."""
        ws = self._ws
        if ws is not None:
            await ws.wait_writable()
            return
        proto = self._proto
        while proto.open and proto.buffered * 2 >= self._server.config.max_buffered_packets:
            if self._drained is None:
                self._drained = trio.Event()
            await self._drained.wait()
        await trio.lowlevel.checkpoint()

    # -- glue: called after every change of the protocol state -------------------------------------------

    def _sync(self) -> None:
        """Make the I/O match the protocol state: flush the outbox to the websocket, wake the pending GET
        or the polling writers, close transports once closed, schedule the heartbeat and the disconnect."""
        proto = self._proto
        ws = self._ws
        if ws is not None and proto.phase is Phase.WEBSOCKET and proto.buffered:
            self._flush_ws(ws)
        wake = self._poll_wake
        if wake is not None and proto.poll_ready():
            self._poll_wake = None
            wake.set()
        if self._drained is not None and (proto.buffered * 2 < self._server.config.max_buffered_packets
                                          or not proto.open):
            self._drained.set()
            self._drained = None
        if proto.phase is Phase.CLOSED:
            self._closed()
        elif is_polling(proto.phase) and ws is None:
            self._server._schedule(self)
        if not proto.open:
            if self._probe_ws is not None:  # no upgrade for a closing socket
                self._probe_ws.close()
                self._probe_ws = None
                if ws is None and self._reader_scope is not None:
                    self._reader_scope.cancel()  # the probe task's receive()
            if ws is None:
                self._server._defer_notify(self)

    def _flush_ws(self, ws: WebSocket) -> None:
        for packet in self._proto.take_outbox():
            sent = ws.send_frame(packet.frame) if isinstance(packet, OutgoingMessage) else ws.send(packet)
            if not sent:
                # The HTTP layer dropped the connection (slow consumer, or it is gone).
                self._proto.abort(TRANSPORT_ERROR if ws.close_code == CLOSE_POLICY else TRANSPORT_CLOSE)
                return

    def _closed(self) -> None:
        self._server._forget(self)
        ws = self._ws
        if ws is not None:
            ws.close()
        scope = self._reader_scope
        if scope is not None:
            scope.cancel()

    async def _notify_disconnect(self) -> None:
        """Call ``engine_disconnect`` once, after ``engine_connect`` returned and once the socket closed."""
        if self._notify == NOTIFY_DONE or not self._connected or self._proto.open:
            return
        self._notify = NOTIFY_DONE
        reason = self._proto.close_reason or TRANSPORT_CLOSE
        log.debug("engine.io socket closed", sid=self.sid, reason=reason, transport=self.transport)
        await self._server.app.engine_disconnect(self, reason)

    async def _notify_disconnect_shielded(self) -> None:
        """``_notify_disconnect`` that still runs (for at most ``disconnect_grace``) when cancelled."""
        with trio.CancelScope(shield=True), trio.move_on_after(self._server.config.disconnect_grace):
            await self._notify_disconnect()
