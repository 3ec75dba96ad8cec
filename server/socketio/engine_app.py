"""Socket.IO as an Engine.IO application: the per-connection and per-sid lifecycle (private).

Owns: ``EngineApplication`` (between ``delivery.Delivery`` and ``server.socketio.Server``) -- the
``EngineApp`` callbacks (``engine_connect`` / ``engine_message`` / ``engine_disconnect``, and
``engine_upgraded``) driving one ``SocketIOProtocol`` per Engine.IO connection, the namespace connect flow
(connect handler, refusal, the connect backlog that keeps emits behind the CONNECT reply), ending sids
(disconnect handlers), event and ack dispatch, and the instrumentation hooks of those moments. Options,
tables and delivery are ``delivery.py``; the public API is ``server.py``. Knows nothing of HTTP or of
Engine.IO's transports: it sees ``transport.Transport``s.

Handler execution (the ``async_handlers`` choice):

- ``async_handlers=False`` (default): event handlers and ack callbacks run inline, in the task that read
  the packet (the websocket reader, or the polling POST). Events of one connection are handled in order,
  a slow handler slows down only its own connection (natural backpressure: the engine stops reading it),
  and no task is spawned per event. A handler must then not wait for its own connection: ``call()`` to
  the connection whose handler is running raises ``RuntimeError`` at once instead of deadlocking; and a
  handler that runs longer than the ping timeout delays the engine's reading of pongs.
- ``async_handlers=True`` (python-socketio's default): each event runs in a task of the server's nursery,
  at most ``max_handlers_per_connection`` at a time per connection (beyond that the reader waits for a
  slot: still backpressure); order between events is not preserved, and a handler may ``await
  sio.call(...)`` on its own connection.

``connect`` and ``disconnect`` handlers always run inline. A handler exception is logged (with the sid) and
never reaches the reader or the server; an event whose handler raised gets no ack.
"""

from __future__ import annotations

import builtins
import contextvars
import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import trio
from socketio import exceptions as sio_exceptions

from server.socketio import codec
from server.socketio._sockets import AckCallback, AckWaiter, Connection, NamespaceSocket
from server.socketio.delivery import Delivery
from server.socketio.environ import build_environ
from server.socketio.errors import DisconnectReason
from server.socketio.handlers import NOT_HANDLED
from server.socketio.instrument import Handshake
from server.socketio.protocol import (
    AckReceived,
    ConnectRequested,
    EventReceived,
    NamespaceLeft,
    ProtocolViolation,
    SocketIOProtocol,
)
from server.socketio.recovery import RECOVERABLE_REASONS as RECOVERABLE
from server.socketio.transport import Transport

log = structlog.get_logger("server.socketio.server")

# The connection whose handler is running inline in this task (to refuse a self-deadlocking call()).
inline_connection: contextvars.ContextVar[Connection | None] = contextvars.ContextVar(
    "socketioinline_connection", default=None
)

# Engine.IO close reasons -> the reason strings python-socketio gives disconnect handlers.
_ENGINE_REASONS = {
    "ping timeout": DisconnectReason.PING_TIMEOUT,
    "transport close": DisconnectReason.TRANSPORT_CLOSE,
    "transport error": DisconnectReason.TRANSPORT_ERROR,
    "client disconnect": DisconnectReason.CLIENT_DISCONNECT,
    "server disconnect": DisconnectReason.SERVER_DISCONNECT,
    "parse error": DisconnectReason.PROTOCOL_ERROR,
}


class EngineApplication(Delivery):
    """The Engine.IO callbacks and the sid lifecycle; ``Server`` adds the public API on top."""

    # -- EngineApp ---------------------------------------------------------------------------------------

    async def engine_connect(self, sock: Transport) -> None:
        self._require_nursery()
        deadline = trio.current_time() + self.connect_timeout
        proto = SocketIOProtocol(
            self.packet_class,
            connect_deadline=deadline,
            max_attachments=self.max_attachments,
            max_binary_size=self.max_binary_size,
            max_pending_acks=self.max_pending_acks,
        )
        conn = Connection(sock, proto, build_environ(sock.request))
        self._conns[sock.sid] = conn
        conn.timer = self._timers.call_at(deadline, functools.partial(self._connect_timeout, conn))
        if self._instruments:
            self._notify("engine_connected", sock.sid, sock.transport)

    async def engine_message(self, sock: Transport, data: str | bytes) -> None:
        conn = self._conns.get(sock.sid)
        if conn is None or conn.sock is not sock:
            return
        event = conn.proto.receive(data)
        if event is None:
            return
        if isinstance(event, EventReceived):
            await self._on_event(conn, event)
        elif isinstance(event, AckReceived):
            await self._on_ack(conn, event)
        elif isinstance(event, ConnectRequested):
            await self._on_connect(conn, event)
        elif isinstance(event, NamespaceLeft):
            nss = conn.sockets.get(event.namespace)
            if nss is not None:
                await self._end(nss, DisconnectReason.CLIENT_DISCONNECT)
        elif isinstance(event, ProtocolViolation):
            log.info("socketio protocol violation, closing", eio_sid=sock.sid, reason=event.reason)
            sock.close(DisconnectReason.PROTOCOL_ERROR)

    async def engine_disconnect(self, sock: Transport, reason: str) -> None:
        conn = self._conns.get(sock.sid)
        if conn is None or conn.sock is not sock:
            return
        del self._conns[sock.sid]
        if conn.timer is not None:
            self._timers.cancel(conn.timer)
            conn.timer = None
        conn.proto.close()
        sio_reason = _ENGINE_REASONS.get(reason, reason)
        try:
            for nss in list(conn.sockets.values()):
                await self._end(nss, sio_reason)
            self._fail_acks(conn.proto.drain_acks())
        finally:
            if self._instruments:  # after the sids' own disconnects, even if cancelled
                self._notify("engine_disconnected", sock.sid, reason)

    def engine_upgraded(self, sock: Transport) -> None:
        """The engine's ``on_upgrade``: the connection moved to a websocket."""
        if self._instruments and self._conns.get(sock.sid) is not None:
            self._notify("transport_upgraded", sock.sid, sock.transport)

    def _connect_timeout(self, conn: Connection) -> None:
        conn.timer = None
        if conn.proto.connect_timed_out() and not conn.sock.closed:
            log.info("socketio connect timeout, closing", eio_sid=conn.sock.sid)
            conn.sock.close("connect timeout")

    # -- namespace connect / disconnect ------------------------------------------------------------------

    def _namespace_allowed(self, namespace: str) -> bool:
        if self.namespaces == "*" or namespace in self.namespaces:
            return True
        return namespace in self.handlers.namespaces()

    async def _on_connect(self, conn: Connection, request: ConnectRequested) -> None:
        namespace = request.namespace
        if not self._namespace_allowed(namespace):
            self._send_direct(conn, conn.proto.refuse(namespace, "Invalid namespace"))
            return
        recovery, restored = self._recovery, None
        if recovery is not None and isinstance(request.auth, dict) and request.auth.get("pid") is not None:
            restored = recovery.restore(
                namespace, request.auth.get("pid"), request.auth.get("offset"), trio.current_time()
            )
            if restored is not None and restored.sid in self._sockets:
                restored = None  # the old sid is still live (its end has not finished): a new one
        sid = restored.sid if restored is not None else secrets.token_urlsafe(15)
        nss = NamespaceSocket(sid, namespace, conn)
        conn.sockets[namespace] = nss
        self._sockets[sid] = nss
        self._rooms.add_socket(namespace, sid)
        missed: tuple[Any, ...] = ()
        if restored is not None:
            nss.pid, nss.recovered, nss.session, missed = restored.pid, True, restored.data, restored.missed
            for room in restored.rooms:
                if room != sid:
                    self._rooms.enter(namespace, sid, room)
        elif recovery is not None:
            nss.pid = recovery.new_pid()
        if self.always_connect or (restored is not None and recovery and recovery.config.skip_middlewares):
            self._complete_connect(nss, request.auth, missed)
        refusal: dict[str, Any] | None = None
        token = inline_connection.set(conn)
        try:
            result = await self.handlers.trigger_trimmed(
                "connect", namespace, sid, conn.environ, request.auth
            )
            if result is False:
                refusal = {"message": "Connection rejected by server"}
        except sio_exceptions.ConnectionRefusedError as exc:
            refusal = dict(exc.error_args)
        except builtins.ConnectionRefusedError:
            refusal = {"message": "Connection refused by server"}
        except Exception:
            log.exception("socketio connect handler failed", sid=sid, namespace=namespace)
            refusal = {"message": "Connection refused by server"}
        finally:
            inline_connection.reset(token)
        if nss.ended:
            # The connection closed (or the server disconnected the sid) while the handler ran. The
            # application believes it accepted the sid, so it gets the matching disconnect.
            if refusal is None:
                await self._disconnect_handler(nss, nss.end_reason or DisconnectReason.TRANSPORT_CLOSE)
            return
        if refusal is None:
            if not nss.connected:
                self._complete_connect(nss, request.auth, missed)
            return
        log.info("socketio connect refused", sid=sid, namespace=namespace, message=refusal.get("message"))
        message = str(refusal.get("message", "Connection refused by server"))
        if nss.connected:  # always_connect: the CONNECT already went out
            self._send_direct(conn, conn.proto.leave(namespace, refusal))
        else:
            self._send_direct(conn, conn.proto.refuse(namespace, message, refusal.get("data")))
        self._begin_end(nss, DisconnectReason.SERVER_DISCONNECT)
        self._remove(nss)
        if self.close_on_refusal and not conn.sockets:
            conn.sock.close(DisconnectReason.SERVER_DISCONNECT)  # the CONNECT_ERROR is flushed first

    def _complete_connect(self, nss: NamespaceSocket, auth: Any, missed: tuple[Any, ...] = ()) -> None:
        """Send the CONNECT reply (with the recovery ``pid`` when on), then the packets a recovered sid
        missed, then what was emitted to the sid meanwhile, in that order."""
        conn = nss.conn
        self._send_direct(conn, conn.proto.accept(nss.namespace, nss.sid, pid=nss.pid))
        # The reply in a write of its own, not coalesced with what the connect handler emitted: a client
        # that reads its messages one await at a time (the official conformance suite) must not get the
        # two in one TCP segment, as it never does from Node (which writes them in separate ticks).
        conn.sock.flush()
        if missed:
            self._send_direct(conn, missed)
        backlog, nss.backlog = nss.backlog, None
        nss.connected = True
        if backlog:
            self._send_direct(conn, backlog)
        if self._instruments:
            environ = conn.environ
            handshake = Handshake(
                eio_sid=conn.sock.sid,
                address=environ.get("REMOTE_ADDR", ""),
                headers={key: value for key, value in environ.items() if key.startswith("HTTP_")},
                query=environ.get("QUERY_STRING", ""),
                url=environ.get("RAW_URI", ""),
                auth=auth,
                time=time.time(),
            )
            self._notify("socket_connected", nss.sid, nss.namespace, handshake)

    def _begin_end(self, nss: NamespaceSocket, reason: str) -> bool:
        """The synchronous half of ending a sid: no more output to it, its pending acks fail.
        False if it had ended already."""
        if nss.ended:
            return False
        nss.ended = True
        nss.end_reason = reason
        nss.backlog = None
        if nss.connected and self._instruments:
            self._notify("socket_disconnected", nss.sid, nss.namespace, reason)
        self._fail_acks(nss.conn.proto.drain_acks(nss.namespace))
        return True

    def _remove(self, nss: NamespaceSocket) -> None:
        conn = nss.conn
        if conn.sockets.get(nss.namespace) is nss:
            del conn.sockets[nss.namespace]
        if self._sockets.get(nss.sid) is nss:
            del self._sockets[nss.sid]
        recovery = self._recovery
        if recovery is not None and nss.pid is not None and nss.connected and nss.end_reason in RECOVERABLE:
            rooms = self._rooms.rooms_of(nss.namespace, nss.sid)
            recovery.persist(nss.pid, nss.sid, nss.namespace, rooms, nss.session, trio.current_time())
        self._rooms.remove_socket(nss.namespace, nss.sid)

    async def _end(self, nss: NamespaceSocket, reason: str) -> None:
        """End a sid: its disconnect handler runs (if it was connected) while its rooms, session and
        environ are still readable, then it is forgotten."""
        if not self._begin_end(nss, reason):
            return
        try:
            if nss.connected:
                await self._disconnect_handler(nss, reason)
        finally:
            self._remove(nss)

    async def _disconnect_handler(self, nss: NamespaceSocket, reason: str) -> None:
        try:
            await self.handlers.trigger_trimmed("disconnect", nss.namespace, nss.sid, reason)
        except Exception:
            log.exception("socketio disconnect handler failed", sid=nss.sid, namespace=nss.namespace)

    # -- incoming events and acks ------------------------------------------------------------------------

    async def _on_event(self, conn: Connection, event: EventReceived) -> None:
        nss = conn.sockets.get(event.namespace)
        if nss is None or nss.ended:
            return
        self.events_received += 1
        if self._event_observers:
            self._notify_event("event_received", nss.sid, nss.namespace, event.event, event.args)
        if not self.async_handlers:
            token = inline_connection.set(conn)
            try:
                await self._run_event(nss, event)
            finally:
                inline_connection.reset(token)
            return
        nursery = self._require_nursery()
        while conn.inflight >= self.max_handlers_per_connection:
            if conn.slot_free is None:
                conn.slot_free = trio.Event()
            await conn.slot_free.wait()
        conn.inflight += 1
        nursery.start_soon(self._event_task, nss, event)

    async def _event_task(self, nss: NamespaceSocket, event: EventReceived) -> None:
        conn = nss.conn
        try:
            await self._run_event(nss, event)
        finally:
            conn.inflight -= 1
            if conn.slot_free is not None:
                conn.slot_free.set()
                conn.slot_free = None

    async def _run_event(self, nss: NamespaceSocket, event: EventReceived) -> None:
        try:
            result = await self.handlers.trigger(event.event, nss.namespace, nss.sid, *event.args)
        except Exception:
            log.exception("socketio event handler failed", sid=nss.sid, namespace=nss.namespace,
                          event_name=str(event.event))
            return
        if event.ack_id is None or result is NOT_HANDLED:
            return
        try:
            messages = nss.conn.proto.ack(nss.namespace, event.ack_id, codec.args_from_data(result))
        except (TypeError, ValueError):
            log.exception("socketio ack not serializable", sid=nss.sid, event_name=str(event.event))
            return
        self._deliver(nss, messages)

    async def _on_ack(self, conn: Connection, ack: AckReceived) -> None:
        token = ack.token
        if isinstance(token, AckWaiter):
            token.resolve(ack.args)
            return
        if not isinstance(token, AckCallback):
            return
        if token.timer is not None:
            self._timers.cancel(token.timer)
        nss = conn.sockets.get(ack.namespace)
        sid = nss.sid if nss is not None else None
        if self.async_handlers:
            self._require_nursery().start_soon(self._run_callback, token.callback, ack.args, sid)
        else:
            context = inline_connection.set(conn)
            try:
                await self._run_callback(token.callback, ack.args, sid)
            finally:
                inline_connection.reset(context)

    async def _run_callback(self, callback: Callable[..., Any], args: list[Any], sid: str | None) -> None:
        try:
            result = callback(*args)
            if isinstance(result, Awaitable):
                await result
        except Exception:
            log.exception("socketio ack callback failed", sid=sid)

    async def _finish_end(self, nss: NamespaceSocket) -> None:
        try:
            await self._disconnect_handler(nss, nss.end_reason or DisconnectReason.SERVER_DISCONNECT)
        finally:
            self._remove(nss)

    def _send_leave(self, nss: NamespaceSocket) -> None:
        proto = nss.conn.proto
        if nss.connected:
            self._send_direct(nss.conn, proto.leave(nss.namespace))
        else:
            self._send_direct(nss.conn, proto.refuse(nss.namespace, "Connection rejected by server"))
