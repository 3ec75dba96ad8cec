"""The Engine.IO socket the application sees, and its transports.

Owns: ``EngineSocket``, the thin trio glue around one ``SocketProtocol``, and every piece of state that
glue needs: it moves the outbox to the websocket or wakes the pending GET, closes transports when the
protocol says so, keeps its heartbeat (``heartbeat.Heartbeat``, in the server's ``TimerQueue``), and calls
``engine_disconnect`` exactly once. The transports are its methods, so nothing outside touches its state:
answering a polling GET (wait until something is queued, then flush it all as one payload) and POST
(decode the payload, hand each message to the application in order), the websocket reader loop (one packet
per message, no cancel scope per message; a websocket costs no task beyond the HTTP connection's own) and
the upgrade probe loop. Knows nothing of HTTP routing, CORS or sid
allocation (``server.py``, through ``interfaces.SocketHost``), nothing of Socket.IO; the protocol
decisions are ``protocol.py``'s.

Where the application's coroutines run (the contract in docs/architecture.md): ``engine_connect`` in the
handshake request (polling) or the websocket's reader task; ``engine_message`` in the task that read the
packet (the POST request or the websocket reader); ``engine_disconnect`` in the websocket reader when the
socket is on a websocket, in the POST request that carried the close or the bad packet, and otherwise
(ping timeout, ``close()`` from elsewhere, a GET that went away) in a short task of ``EngineServer.run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
import trio

from server.engineio._state import Phase, PhaseError, is_polling
from server.engineio.codec import (
    PROBE_PONG,
    DecodeError,
    OutgoingMessage,
    decode_packet,
    decode_payload,
    encode_message,
)
from server.engineio.heartbeat import Heartbeat
from server.engineio.interfaces import SocketHost
from server.engineio.protocol import (
    SERVER_DISCONNECT,
    TRANSPORT_CLOSE,
    TRANSPORT_ERROR,
    PollStart,
    ProbeAction,
    SocketProtocol,
)
from server.http.frames import CLOSE_POLICY
from server.http.types import Request
from server.http.websocket import WebSocketClosed

if TYPE_CHECKING:
    from server.http.websocket import WebSocket

log = structlog.get_logger(__name__)

_NOTIFY_NONE, _NOTIFY_QUEUED, _NOTIFY_DONE = range(3)


def _message_size(raw: str | bytes, limit: int) -> int:
    """Bytes of a websocket message, without encoding a str that cannot be over ``limit``."""
    if isinstance(raw, str) and len(raw) * 4 > limit:
        return len(raw.encode("utf-8"))
    return len(raw)


class EngineSocket:
    """One Engine.IO session. ``send`` and ``close`` never await."""

    __slots__ = (
        "__weakref__",
        "_close_after_upgrade",
        "_connected",
        "_drained",
        "_heartbeat",
        "_host",
        "_notify",
        "_poll_wake",
        "_probe_ws",
        "_proto",
        "_reader_scope",
        "_ws",
        "request",
        "sid",
    )

    def __init__(
        self, host: SocketHost, proto: SocketProtocol, request: Request, ws: WebSocket | None = None
    ) -> None:
        self.sid = proto.sid
        self.request = request
        self._host = host
        self._proto = proto
        self._ws = ws  # the websocket transport (opened so, or after the upgrade)
        self._probe_ws: WebSocket | None = None  # an upgrade probe in progress
        self._close_after_upgrade: str | None = None  # a close asked for while the client switches
        self._poll_wake: trio.Event | None = None  # set when the pending GET can be answered
        self._drained: trio.Event | None = None  # polling wait_writable() waiters
        self._reader_scope: trio.CancelScope | None = None  # set while a websocket receive() waits
        self._heartbeat = Heartbeat(proto, host.timers, host.config.ping_timeout, self._sync)
        self._connected = False  # engine_connect returned
        self._notify = _NOTIFY_NONE  # engine_disconnect: not yet / queued in the server / called

    def __repr__(self) -> str:
        return f"<EngineSocket sid={self.sid} phase={self._proto.phase.value}>"

    # -- public ------------------------------------------------------------------------------------------

    @property
    def transport(self) -> str:  # "polling" or "websocket" (after an upgrade: "websocket")
        return self._proto.transport

    @property
    def closed(self) -> bool:  # True from the moment the socket starts closing: sends are dropped
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

    def flush(self) -> None:
        """What was sent on the websocket goes to the kernel now, not coalesced with what follows."""
        ws = self._ws
        if ws is not None and not ws.flush_pending():
            self._proto.abort(TRANSPORT_ERROR if ws.close_code == CLOSE_POLICY else TRANSPORT_CLOSE)
            self._sync()

    def close(self, reason: str = SERVER_DISCONNECT) -> None:
        """Close the socket (idempotent, non-blocking). Packets already sent are still delivered: on
        polling the next GET collects them with the close packet; on a websocket they are written now.
        Between ``3probe`` and ``5`` the client has paused polling and reads only the new websocket: the
        close then waits for the switch (at most ``upgrade_timeout``) and goes out over it, as in Node."""
        if self._proto.phase is Phase.UPGRADING:
            self._close_after_upgrade = reason
            return
        if self._proto.server_close(trio.current_time(), reason):
            self._sync()

    def abort(self, reason: str = TRANSPORT_ERROR) -> None:
        """Close at once with ``reason``, dropping what is queued (the client broke a limit)."""
        self._proto.abort(reason)
        self._sync()

    async def wait_writable(self) -> None:
        """Return once the socket can take more without risking its bound (or is closed)."""
        ws = self._ws
        if ws is not None:
            await ws.wait_writable()
            return
        proto = self._proto
        while proto.open and proto.buffered * 2 >= self._host.config.max_buffered_packets:
            if self._drained is None:
                self._drained = trio.Event()
            await self._drained.wait()
        await trio.lowlevel.checkpoint()

    # -- handshakes (called by EngineServer) -------------------------------------------------------------

    async def _connect(self) -> None:
        """``engine_connect``; if it raises, the socket is dropped without ``engine_disconnect``."""
        log.debug("engine.io socket open", sid=self.sid, transport=self.transport)
        try:
            await self._host.app.engine_connect(self)
        except BaseException:
            self._notify = _NOTIFY_DONE
            self._proto.abort(TRANSPORT_ERROR)
            self._sync()
            raise
        self._connected = True

    async def open_polling(self) -> str:
        """The polling handshake: ``engine_connect``, then the open packet to answer the GET with."""
        body = self._proto.open_packet("polling")
        await self._connect()
        self._sync()  # schedule the heartbeat
        if self.closed:
            await self._notify_disconnect()  # closed inside engine_connect
        return body

    async def open_websocket(self) -> None:
        """The websocket handshake on the socket's websocket, then its reader loop until it closes."""
        ws = self._ws
        assert ws is not None, "open_websocket needs a socket created with its websocket"
        ws.send(self._proto.open_packet("websocket"))
        try:
            await self._connect()
        except BaseException:
            ws.close()
            raise
        self._sync()
        await self._read_websocket(ws)

    # -- polling -----------------------------------------------------------------------------------------

    async def poll(self) -> str | None:
        """A polling GET: the body to answer with. None means "overlap": the caller answers 400 (the
        socket is closed)."""
        proto = self._proto
        start = proto.poll_begin()
        if start is PollStart.OVERLAP:
            self._sync()
            return None
        if start is PollStart.WAIT:
            wake = self._poll_wake = trio.Event()
            try:
                await wake.wait()
            except BaseException:
                # Cancelled: the client went away (or the server is shutting down) with the GET pending.
                if self._poll_wake is wake:
                    self._poll_wake = None
                if proto.poll_pending:
                    proto.poll_abandoned()
                    self._sync()
                raise
        body = proto.poll_take()
        self._sync()
        return body

    async def post(self, request: Request) -> bool:
        """A polling POST: each packet in order; messages go to the application in this task. Returns
        False if the request must get a 400 (overlapping POST, binary content, an undecodable packet); the
        socket is closed then."""
        proto = self._proto
        app = self._host.app
        if request.headers.get("content-type", "").startswith("application/octet-stream"):
            proto.decode_error()  # v4 sends binary as base64 text; Node rejects this content type too
            self._sync()
            await self._notify_disconnect()
            return False
        if not proto.post_begin():
            self._sync()
            await self._notify_disconnect()
            return False
        ok = True
        try:
            packets, error = decode_payload(request.body)
            for packet in packets:
                data = proto.receive(packet, trio.current_time())
                self._sync()
                if data is not None:
                    await app.engine_message(self, data)
                if not proto.open:
                    break
            else:
                if error is not None and proto.open:
                    proto.decode_error()
                    self._sync()
                    ok = False
        finally:
            proto.post_end()
        await self._notify_disconnect()
        return ok

    # -- websocket ---------------------------------------------------------------------------------------

    async def _read_websocket(self, ws: WebSocket) -> None:
        """The reader loop of a socket whose transport is ``ws``; returns once the socket is closed, after
        ``engine_disconnect``. One cancel scope lives as long as the loop and is exposed as
        ``_reader_scope`` only while ``receive()`` waits: closing the socket cancels a wait, never the
        handling of a message."""
        proto = self._proto
        app = self._host.app
        limit = self._host.config.max_payload
        heartbeat = self._heartbeat
        heartbeat.schedule()
        try:
            with trio.CancelScope() as scope:
                while proto.open:
                    self._reader_scope = scope
                    try:
                        raw = await ws.receive()
                    finally:
                        self._reader_scope = None
                    if scope.cancel_called:  # closed as the frame arrived: nothing more to handle
                        break
                    if _message_size(raw, limit) > limit:
                        proto.abort(TRANSPORT_ERROR)
                        self._sync()
                        break
                    try:
                        packet = decode_packet(raw)
                    except DecodeError:
                        proto.decode_error()
                        self._sync()
                        break
                    data = proto.receive(packet, trio.current_time())
                    self._sync()
                    if data is not None:
                        heartbeat.busy = True  # (its pongs wait unread meanwhile: see Heartbeat)
                        try:
                            await app.engine_message(self, data)
                        finally:
                            heartbeat.busy = False
        except WebSocketClosed:
            proto.abort(TRANSPORT_CLOSE)
        finally:
            if proto.open:  # cancelled, or the application raised
                proto.abort(TRANSPORT_CLOSE)
            self._sync()
            await self.notify_disconnect()

    async def probe(self, ws: WebSocket) -> None:
        """A websocket with the sid of this polling socket: the upgrade. On ``5`` it becomes the transport
        and this task its reader; otherwise it is closed and the socket stays on polling."""
        proto = self._proto
        try:
            proto.attach_probe(trio.current_time())
        except PhaseError:
            ws.close()  # a second websocket, one after the upgrade, or upgrades disabled
            return
        upgraded = False
        self._probe_ws = ws
        try:
            while True:
                with trio.move_on_at(proto.upgrade_deadline) as scope:
                    self._reader_scope = scope
                    try:
                        raw = await ws.receive()
                    finally:
                        self._reader_scope = None
                if scope.cancelled_caught:  # upgrade_timeout passed, or the socket closed
                    break
                try:
                    action = proto.receive_probe(decode_packet(raw))
                except DecodeError:
                    break
                if action is ProbeAction.REPLY:
                    # Not held for write coalescing: it must beat a concurrent GET's "6" or 400.
                    ws.send(PROBE_PONG)
                    ws.flush_pending()
                    self._sync()  # the pending GET is answered "6"
                elif action is ProbeAction.UPGRADED:
                    self._probe_ws = None
                    self._ws = ws
                    upgraded = True
                    self._sync()  # flush what waited for the switch
                    self._host.upgraded(self)
                    if self._close_after_upgrade is not None:
                        self.close(self._close_after_upgrade)
                    break
                elif action is ProbeAction.FAILED:
                    break
        except WebSocketClosed:
            pass
        finally:
            if not upgraded:
                proto.probe_failed()
                if self._probe_ws is ws:
                    self._probe_ws = None
                ws.close()
                self._sync()
                if self._close_after_upgrade is not None:
                    self.close(self._close_after_upgrade)  # on polling after all
        if upgraded:
            await self._read_websocket(ws)

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
        if self._drained is not None and (proto.buffered * 2 < self._host.config.max_buffered_packets
                                          or not proto.open):
            self._drained.set()
            self._drained = None
        if proto.phase is Phase.CLOSED:
            self._closed()
        elif ws is not None or is_polling(proto.phase):
            self._heartbeat.schedule()
        if not proto.open:
            if self._probe_ws is not None:  # no upgrade for a closing socket
                self._probe_ws.close()
                self._probe_ws = None
                if ws is None and self._reader_scope is not None:
                    self._reader_scope.cancel()  # the probe task's receive()
            if ws is None and self._notify == _NOTIFY_NONE and self._connected:
                self._notify = _NOTIFY_QUEUED
                self._host.defer_disconnect(self)

    def catch_up(self) -> None:
        """Run a polling deadline that passed before its timer fired: the request sees its outcome."""
        if self._ws is None:
            self._heartbeat.run_if_due()

    def _flush_ws(self, ws: WebSocket) -> None:
        for packet in self._proto.take_outbox():
            sent = ws.send_frame(packet.frame) if isinstance(packet, OutgoingMessage) else ws.send(packet)
            if not sent:
                # The HTTP layer dropped the connection (slow consumer, or it is gone).
                self._proto.abort(TRANSPORT_ERROR if ws.close_code == CLOSE_POLICY else TRANSPORT_CLOSE)
                return

    def _closed(self) -> None:
        self._host.forget(self)
        self._heartbeat.cancel()
        ws = self._ws
        if ws is not None:
            ws.close()
        scope = self._reader_scope
        if scope is not None:
            scope.cancel()

    async def _notify_disconnect(self) -> None:
        """Call ``engine_disconnect`` once, after ``engine_connect`` returned and once the socket closed."""
        if self._notify == _NOTIFY_DONE or not self._connected or self._proto.open:
            return
        self._notify = _NOTIFY_DONE
        reason = self._proto.close_reason or TRANSPORT_CLOSE
        log.debug("engine.io socket closed", sid=self.sid, reason=reason, transport=self.transport)
        await self._host.app.engine_disconnect(self, reason)

    async def notify_disconnect(self) -> None:
        """``engine_disconnect`` if it is due and was not called yet; it still runs (for at most
        ``disconnect_grace``) when cancelled."""
        with trio.CancelScope(shield=True), trio.move_on_after(self._host.config.disconnect_grace):
            await self._notify_disconnect()
