"""The state under ``Server`` and non-blocking delivery to a sid (private).

Owns: ``Delivery``, the base of ``server.socketio.Server``: the server's options, its tables (Engine.IO
connections, Socket.IO sids, rooms, the timer queue of connect timeouts and ack expiries, the nursery of
its tasks, the registered instrumentation), and getting packets to one sid without blocking (queued behind
the CONNECT reply while the sid connects; a callback ack registered per recipient). The Engine.IO
application and the sid lifecycle are ``engine_app.py``; the public API is ``server.py``. Knows nothing of
HTTP or of Engine.IO's transports: it sees ``transport.Transport``s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import structlog
import trio

from actors.timers import TimerQueue
from server.engineio import OutgoingMessage
from server.socketio import codec
from server.socketio._sockets import AckCallback, AckWaiter, Connection, NamespaceSocket, Outgoing
from server.socketio.codec import Serializer
from server.socketio.handlers import HandlerRegistry
from server.socketio.instrument import Instrumentation
from server.socketio.recovery import RecoveryConfig, RecoveryStore, room_set
from server.socketio.rooms import RoomIndex

log = structlog.get_logger("server.socketio.server")


class Delivery:
    """Options, tables and output of the Socket.IO server; see the module docstring."""

    def __init__(
        self,
        *,
        namespaces: str | Iterable[str] | None = None,
        connect_timeout: float = 45.0,
        serializer: Serializer = "default",
        always_connect: bool = False,
        async_handlers: bool = False,
        max_handlers_per_connection: int = 16,
        max_pending_acks: int = 256,
        max_ack_wait: float | None = 300.0,
        max_attachments: int = 10,
        max_binary_size: int = 16 * 1024 * 1024,
        max_connect_backlog: int = 4096,
        close_on_refusal: bool = False,
        connection_state_recovery: RecoveryConfig | Mapping[str, Any] | bool | None = None,
        **engine_options: Any,
    ) -> None:
        """
        :param namespaces: ``"*"`` accepts any namespace; a list accepts those; None (python-socketio's
            default) accepts ``"/"``. Namespaces with a registered handler are always accepted.
        :param connect_timeout: seconds after the Engine.IO handshake at which a connection that has no
            namespace connected (or connecting) is closed.
        :param serializer: ``"default"`` (JSON text with binary attachments) or ``"msgpack"``.
        :param always_connect: send the CONNECT reply before running the connect handler (a refusal then
            arrives as a DISCONNECT), as python-socketio's option.
        :param async_handlers: run event handlers in tasks (True) or inline (False); see the module doc.
        :param max_handlers_per_connection: handler tasks in flight per connection (async_handlers=True).
        :param max_pending_acks: server-initiated acks outstanding per connection; one more raises
            ``AckLimitError``.
        :param max_ack_wait: an ``emit(callback=...)`` callback not acknowledged within this many seconds is
            dropped (None: kept until the socket disconnects). ``call`` has its own ``timeout``.
        :param max_attachments: binary attachments per packet accepted from a client.
        :param max_binary_size: total bytes of one packet's attachments accepted from a client.
        :param max_connect_backlog: Engine.IO messages queued for a sid while its connect handler runs;
            one more closes the connection.
        :param close_on_refusal: when a connect handler refuses a client and no other namespace is
            connected on its connection, close the connection right after the CONNECT_ERROR (the session
            gateway's contract). Off by default, as the Node server: the client closes it.
        :param connection_state_recovery: Node's ``connectionStateRecovery``
            (``{"max_disconnection_duration": 120.0, "skip_middlewares": True}``, any ``RecoveryConfig``
            field; True for the defaults); off by default. See ``server.socketio.recovery``.
        :param engine_options: ``EngineConfig`` fields for ``engine_server()`` / ``serve()``
            (``ping_interval``, ``ping_timeout``, ``max_payload``, ``cors_allowed_origins``, ...).
        """
        if namespaces is None:
            self.namespaces: str | frozenset[str] = frozenset({"/"})
        elif namespaces == "*":
            self.namespaces = "*"
        elif isinstance(namespaces, str):
            self.namespaces = frozenset({namespaces})
        else:
            self.namespaces = frozenset(namespaces)
        self.connect_timeout = connect_timeout
        self.packet_class = codec.packet_class_for(serializer)
        self.always_connect = always_connect
        self.async_handlers = async_handlers
        self.max_handlers_per_connection = max_handlers_per_connection
        self.max_pending_acks = max_pending_acks
        self.max_ack_wait = max_ack_wait
        self.max_attachments = max_attachments
        self.max_binary_size = max_binary_size
        self.max_connect_backlog = max_connect_backlog
        self.close_on_refusal = close_on_refusal
        self.engine_options = engine_options
        recovery = RecoveryConfig.of(connection_state_recovery)
        self._recovery = RecoveryStore(recovery) if recovery is not None else None
        self.handlers = HandlerRegistry()
        self._rooms = RoomIndex()
        self._timers = TimerQueue()
        self._conns: dict[str, Connection] = {}  # Engine.IO sid -> connection
        self._sockets: dict[str, NamespaceSocket] = {}  # Socket.IO sid -> namespace socket
        self._nursery: trio.Nursery | None = None
        self._instruments: tuple[Instrumentation, ...] = ()  # empty: the hooks cost one falsy check
        # The observers that override a per-event hook: the hot path checks this one (usually empty).
        self._event_observers: tuple[Instrumentation, ...] = ()
        self.events_received = 0  # ``instrument.EventCounts``: what counting observers read
        self.events_sent = 0

    def _require_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the Socket.IO server is not running: start it with nursery.start(sio.run)")
        return self._nursery

    # -- instrumentation ---------------------------------------------------------------------------------

    def add_instrumentation(self, instrumentation: Instrumentation) -> None:
        """Register an observer (``server.socketio.instrument``); its hooks run from now on."""
        if instrumentation not in self._instruments:
            self._instruments = (*self._instruments, instrumentation)
            if _observes_events(instrumentation):
                self._event_observers = (*self._event_observers, instrumentation)
            attached = getattr(instrumentation, "attached", None)  # optional: wants the event counters
            if attached is not None:
                attached(self)

    def remove_instrumentation(self, instrumentation: Instrumentation) -> None:
        self._instruments = tuple(obj for obj in self._instruments if obj is not instrumentation)
        self._event_observers = tuple(obj for obj in self._event_observers if obj is not instrumentation)

    def _notify(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on every observer; callers check ``self._instruments`` first (the zero cost)."""
        self._notify_each(self._instruments, hook, args)

    def _notify_event(self, hook: str, *args: Any) -> None:
        """``event_received``/``event_sent`` to the observers that override them (callers check
        ``self._event_observers`` first)."""
        self._notify_each(self._event_observers, hook, args)

    @staticmethod
    def _notify_each(observers: tuple[Instrumentation, ...], hook: str, args: tuple[Any, ...]) -> None:
        for instrumentation in observers:
            try:
                getattr(instrumentation, hook)(*args)
            except Exception:
                log.exception("socketio instrumentation hook failed", hook=hook)

    def _fail_acks(self, tokens: list[object]) -> None:
        for token in tokens:
            if isinstance(token, AckWaiter):
                token.fail()
            elif isinstance(token, AckCallback) and token.timer is not None:
                self._timers.cancel(token.timer)

    # -- output ------------------------------------------------------------------------------------------

    def _send_direct(self, conn: Connection, messages: Sequence[Outgoing]) -> None:
        sock = conn.sock
        if sock.closed:
            return
        for message in messages:
            sock.send(message)

    def _deliver(self, nss: NamespaceSocket, messages: Sequence[Outgoing]) -> bool:
        """Send to one sid without blocking (queued behind the CONNECT reply while connecting).
        False when the sid is gone or its connection is (now) closed because it was overfull."""
        if nss.ended:
            return False
        sock = nss.conn.sock
        if sock.closed:
            return False
        backlog = nss.backlog
        if backlog is not None:
            if len(backlog) + len(messages) > self.max_connect_backlog:
                log.warning("socketio connect backlog overflow, closing", sid=nss.sid)
                sock.close("transport error")
                return False
            backlog.extend(messages)
            return True
        for message in messages:
            sock.send(message)
        return not sock.closed

    def _lookup(self, sid: str, namespace: str | None) -> NamespaceSocket | None:
        nss = self._sockets.get(sid)
        if nss is None or nss.ended or (namespace is not None and nss.namespace != namespace):
            return None
        return nss

    def _encode_shared(self, namespace: str, event: Any, data: Any, json_text: str | None) -> list[Outgoing]:
        if json_text is not None and codec.is_text_packet_class(self.packet_class):
            encoded = codec.encode_event_json(namespace, event, json_text)
        else:
            encoded = codec.encode_event(self.packet_class, namespace, event, codec.args_from_data(data))
        return [OutgoingMessage(message) for message in encoded]

    def _recorded_event(self, recovery: RecoveryStore, namespace: str, event: Any, data: Any, to: Any,
                        skip: Any) -> list[codec.EngineMessage]:
        """Connection state recovery: the event with its offset as last argument, kept in the log."""
        args = [*codec.args_from_data(data), recovery.next_offset()]
        encoded = codec.encode_event(self.packet_class, namespace, event, args)
        recovery.record(namespace, room_set(to), room_set(skip), encoded, trio.current_time())
        return encoded

    def _emit_with_callback(
        self, nss: NamespaceSocket, event: str, args: list[Any], callback: Callable[..., Any]
    ) -> None:
        proto = nss.conn.proto
        token = AckCallback(callback)
        ack_id = proto.register_ack(nss.namespace, token)
        if self.max_ack_wait is not None:
            token.timer = self._timers.call_at(
                trio.current_time() + self.max_ack_wait,
                functools.partial(proto.forget_ack, nss.namespace, ack_id),
            )
        messages = codec.encode_event(self.packet_class, nss.namespace, event, args, ack_id)
        if not self._deliver(nss, messages):
            proto.forget_ack(nss.namespace, ack_id)
            self._fail_acks([token])


def _observes_events(instrumentation: Instrumentation) -> bool:
    cls = type(instrumentation)
    for hook in ("event_received", "event_sent"):
        method = getattr(cls, hook, None)
        if method is not None and method is not getattr(Instrumentation, hook):
            return True
    return False
