"""The trio Socket.IO client API: ``Client`` (``open_client``, in ``context``, connects one).

Owns: the connection lifecycle (connect, namespace handshake, serve, reconnect with backoff), the reader
task, acks in both directions, user handlers, the bounded incoming event queue, and a clean close (``41``
per namespace, then the websocket close frame). Every task runs in the nursery that runs ``Client.run``
(``open_client``'s).

Must not know about: packet text (``protocol``), sockets and websocket frames (``transport``), reading one
message with the heartbeat deadline (``connection``), or anything of
the session gateway beyond "the query and auth may change between reconnects" (``on_reconnect``, or ``query``
and ``auth`` given as callables).

Differences from the JS client, on purpose: the namespaces of a client are one unit, and a server-side
namespace DISCONNECT is treated like a lost connection (reconnect when enabled), since our gateway kicks
slow clients that then resume with ``latest_event_id``; nothing is buffered while disconnected (``emit``
raises ``DisconnectedError``).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, NoReturn

import structlog
import trio

from .backoff import Backoff
from .connection import Connection, ConnectionEnded, Event, PendingCall, maybe_await
from .errors import ConnectError, ConnectionFailedError, DisconnectedError
from .protocol import (
    AckReceived,
    Closed,
    EventReceived,
    NamespaceConnected,
    NamespaceDisconnected,
    NamespaceRefused,
    Opened,
    ProtocolError,
    encode_args,
)
from .transport import Connector, TransportClosed, TransportError, build_url, websocket_connector

__all__ = ["AuthArg", "Client", "Event", "Handler", "QueryArg", "ReconnectHook"]

log = structlog.get_logger(__name__)

Handler = Callable[..., Any]
QueryArg = Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None
AuthArg = Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None
ReconnectHook = Callable[["Client", int], Awaitable[None] | None]


class Client:
    """A Socket.IO v5 client over a websocket. Create it with ``open_client``; see its docstring."""

    def __init__(
        self,
        url: str,
        *,
        query: QueryArg = None,
        auth: AuthArg = None,
        headers: Mapping[str, str] | None = None,
        namespaces: Sequence[str] = ("/",),
        path: str = "socket.io",
        reconnect: bool = True,
        reconnect_delay: float = 0.5,
        reconnect_delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        max_attempts: int | None = None,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
        queue_size: int = 1000,
        on_reconnect: ReconnectHook | None = None,
        handlers: Mapping[str, Handler] | None = None,
        connector: Connector | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not namespaces:
            raise ValueError("at least one namespace is required")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1 (the queue is bounded)")
        build_url(url, path)  # fail early on a bad URL
        self.url = url
        self.path = path
        self.query = query
        self.auth = auth
        self.headers: dict[str, str] = dict(headers or {})
        self.namespaces: tuple[str, ...] = tuple(namespaces)
        self.reconnect = reconnect
        self.max_attempts = max_attempts
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.on_reconnect = on_reconnect
        self._backoff = Backoff(reconnect_delay, reconnect_delay_max, randomization_factor, rng)
        self._connector = connector or websocket_connector(
            connect_timeout=connect_timeout, close_timeout=close_timeout
        )
        self._send_events, self._events = trio.open_memory_channel[Event](queue_size)
        self._handlers: dict[tuple[str, str], Handler] = {("/", k): v for k, v in (handlers or {}).items()}
        self._pending: dict[int, PendingCall] = {}
        self._ack_ids = itertools.count(1)
        self._conn: Connection | None = None
        self._changed = trio.Event()
        self._stop_scope: trio.CancelScope | None = None
        self._closing = False
        self._done = trio.Event()
        self._failure: BaseException | None = None
        self.sid: str | None = None
        self.namespace_sids: dict[str, str | None] = {}
        self.connect_count = 0
        self.disconnect_count = 0
        self.disconnect_reason: str | None = None

    # -- state ----------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None

    @property
    def closed(self) -> bool:
        """True once the client has stopped for good (closed, refused on reconnect, or out of attempts)."""
        return self._done.is_set()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_connected(self, count: int | None = None) -> None:
        """Wait until connected (and, with ``count``, until at least ``count`` connections were made)."""
        while not (self.connected and (count is None or self.connect_count >= count)):
            self._raise_if_done()
            await self._changed.wait()

    async def wait_disconnected(self) -> str:
        """Wait until the current connection is lost (at once when not connected); returns the reason."""
        seen = self.disconnect_count
        while self.connected and self.disconnect_count == seen:
            await self._changed.wait()
        return self.disconnect_reason or "not connected"

    def _raise_if_done(self) -> None:
        if self._done.is_set():
            raise DisconnectedError(f"client is closed ({self.disconnect_reason})") from self._failure

    # -- sending --------------------------------------------------------------------------------------------

    def _connection_for(self, namespace: str) -> Connection:
        conn = self._conn
        if conn is None:
            self._raise_if_done()
            raise DisconnectedError(f"not connected ({self.disconnect_reason or 'connecting'})")
        if namespace not in conn.protocol.connected:
            raise DisconnectedError(f"namespace {namespace!r} is not connected")
        return conn

    async def emit(self, event: str, data: Any = None, namespace: str = "/") -> None:
        """Send an event without waiting for anything. A tuple ``data`` is several arguments."""
        conn = self._connection_for(namespace)
        await conn.send(conn.protocol.emit(namespace, event, encode_args(data)))

    async def call(
        self,
        event: str,
        data: Any = None,
        namespace: str = "/",
        timeout: float = 10.0,  # noqa: ASYNC109 - python-socketio's signature
    ) -> Any:
        """Send an event and wait for the server's ack.

        Returns the ack's single argument, a tuple when there are several, ``None`` when there are none.
        Raises ``TimeoutError`` after ``timeout`` seconds, ``DisconnectedError`` if the connection is lost
        first.
        """
        conn = self._connection_for(namespace)
        ack_id = next(self._ack_ids)
        pending = PendingCall(conn.generation)
        self._pending[ack_id] = pending
        try:
            await conn.send(conn.protocol.emit(namespace, event, encode_args(data), ack_id))
            with trio.move_on_after(timeout):
                await pending.done.wait()
            if not pending.done.is_set():
                raise TimeoutError(f"no ack for {event!r} within {timeout} s")
        finally:
            self._pending.pop(ack_id, None)
        if pending.error is not None:
            raise pending.error
        args = pending.args
        return None if not args else args[0] if len(args) == 1 else tuple(args)

    async def ack(self, event: Event, data: Any = None) -> None:
        """Answer a server call received through the queue. A tuple ``data`` is several arguments."""
        if event.ack_id is None:
            raise ValueError(f"event {event.name!r} did not ask for an ack")
        conn = self._connection_for(event.namespace)
        if conn.generation != event.connection:
            raise DisconnectedError("the connection that carried this call is gone")
        await conn.send(conn.protocol.ack(event.namespace, event.ack_id, encode_args(data)))

    # -- receiving ------------------------------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> Event:  # noqa: ASYNC109
        """The next event the server sent (handled events excluded). ``TimeoutError`` after ``timeout`` s;
        ``DisconnectedError`` once the client has stopped and the queue is drained."""
        if timeout is None:
            return await self._receive()
        with trio.move_on_after(timeout):
            return await self._receive()
        raise TimeoutError(f"no event within {timeout} s")

    async def _receive(self) -> Event:
        try:
            return await self._events.receive()
        except trio.EndOfChannel:
            raise DisconnectedError(f"client is closed ({self.disconnect_reason})") from self._failure

    async def events(self) -> AsyncIterator[Event]:
        """Iterate over incoming events until the client closes. Ends quietly after ``aclose``; raises
        ``DisconnectedError`` when the client stopped by itself (refused on reconnect, out of attempts)."""
        while True:
            try:
                yield await self._receive()
            except DisconnectedError:
                if self._closing:
                    return
                raise

    def on(self, event: str, handler: Handler | None = None, namespace: str = "/") -> Any:
        """Register ``handler(*args)`` for ``event`` (usable as a decorator).

        A handled event does not go to the queue; the handler's return value answers a server call (a tuple
        is several arguments). Handlers run in the reader task, in order: keep them short. Lifecycle
        handlers: ``connect()`` after each (re)connection, ``disconnect(reason)``, ``connect_error(message,
        data)`` when a reconnect is refused. An exception in a handler stops the client and is raised from
        the ``open_client`` block.
        """

        def register(fn: Handler) -> Handler:
            self._handlers[(namespace, event)] = fn
            return fn

        return register if handler is None else register(handler)

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Leave every namespace (``41``), close the websocket, stop reconnecting, end the event queue."""
        if not self._closing:
            self._closing = True
            conn = self._conn
            if conn is not None:
                with trio.move_on_after(self.close_timeout):
                    for namespace in list(conn.protocol.connected):
                        try:
                            await conn.send(conn.protocol.disconnect(namespace))
                        except (DisconnectedError, ProtocolError):
                            break
            if self._stop_scope is not None:
                self._stop_scope.cancel()
        await self._done.wait()

    def _current_query(self) -> Mapping[str, Any]:
        query = self.query() if callable(self.query) else self.query
        return query or {}

    def _current_auth(self) -> Mapping[str, Any] | None:
        return self.auth() if callable(self.auth) else self.auth

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The connection loop: connect, serve until lost, back off, reconnect. ``open_client`` starts it
        in the nursery it owns (``await nursery.start(client.run)``: started once the first connection is
        up, raising if it cannot be made) and ends it with ``aclose``."""
        attempt = 0
        try:
            while not self._closing:
                try:
                    first = self.connect_count == 0
                    established = await self._connection_once(task_status if first else None)
                except ConnectError as exc:
                    if self.connect_count == 0:
                        raise
                    log.warning("client.reconnect_refused", error=str(exc))
                    await self._fire("connect_error", exc.namespace, exc.message, exc.data)
                    self._failure = exc
                    self.disconnect_reason = "connect error"
                    return
                except (TransportError, TransportClosed, ProtocolError, trio.TooSlowError) as exc:
                    reason = _describe(exc)
                    if self.connect_count == 0:
                        raise ConnectionFailedError(f"cannot connect to {self.url}: {reason}") from exc
                    log.info("client.reconnect_failed", attempt=attempt, reason=reason)
                    self._failure = exc
                else:
                    if established:
                        attempt = 0
                if self._closing or not self.reconnect:
                    return
                attempt += 1
                if self.max_attempts is not None and attempt > self.max_attempts:
                    log.warning("client.reconnect_gave_up", attempts=self.max_attempts)
                    self.disconnect_reason = f"gave up after {self.max_attempts} reconnect attempts"
                    return
                delay = self._backoff.delay(attempt)
                log.info("client.reconnect_wait", attempt=attempt, delay=round(delay, 3))
                with trio.CancelScope() as self._stop_scope:
                    await trio.sleep(delay)
                    if self.on_reconnect is not None:
                        await maybe_await(self.on_reconnect(self, attempt))
                self._stop_scope = None
        finally:
            self._done.set()
            self._send_events.close()
            self._notify()

    async def _connection_once(self, task_status: trio.TaskStatus[None] | None) -> bool:
        """Open one connection and serve it until it ends. Returns whether it was established (the
        namespace handshake completed); raises when establishing it failed."""
        url = build_url(self.url, self.path, self._current_query())
        auth = self._current_auth()
        established = False
        reason = "io client disconnect"
        with trio.CancelScope() as abort_scope:
            self._stop_scope = abort_scope  # aclose() while the transport opens: drop the attempt at once
            async with self._connector(url, list(self.headers.items())) as transport:
                conn = Connection(transport, self.connect_count + 1)
                with trio.CancelScope() as serve_scope:
                    self._stop_scope = serve_scope  # from here on aclose() closes the transport gracefully
                    with trio.fail_after(self.connect_timeout):
                        await self._handshake(conn, auth)
                    established = True
                    self._connected(conn)
                    if task_status is not None:
                        task_status.started()
                    try:
                        for namespace in self.namespaces:
                            await self._fire("connect", namespace)
                        await self._serve(conn)
                    except ConnectionEnded as ended:
                        reason = ended.reason
                self._stop_scope = None
                if established:
                    self._disconnected(conn, reason)
                if reason == "ping timeout":
                    abort_scope.cancel()  # the peer is unresponsive: do not wait for its close frame
        if established:
            await self._fire_disconnects()
        return established

    async def _handshake(self, conn: Connection, auth: Mapping[str, Any] | None) -> None:
        """Wait for the Engine.IO OPEN, then CONNECT every namespace and wait for every answer."""
        while conn.protocol.sid is None:
            await self._read_one(conn, handshake=True)
        for namespace in self.namespaces:
            await conn.send(conn.protocol.connect(namespace, auth))
        while conn.protocol.connecting:
            await self._read_one(conn, handshake=True)

    async def _serve(self, conn: Connection) -> NoReturn:
        while True:
            await self._read_one(conn, handshake=False)

    async def _read_one(self, conn: Connection, *, handshake: bool) -> None:
        for event in await conn.read(handshake=handshake):
            await self._apply(conn, event)

    async def _apply(self, conn: Connection, event: object) -> None:
        match event:
            case EventReceived():
                await self._dispatch(conn, event)
            case AckReceived(ack_id=ack_id, args=args):
                pending = self._pending.get(ack_id)
                if pending is not None and pending.generation == conn.generation:
                    pending.args = args
                    pending.done.set()
                else:
                    conn.log.debug("client.unknown_ack", ack_id=ack_id)
            case Opened(sid=sid):
                self.sid = sid
                conn.log = conn.log.bind(sid=sid)
            case NamespaceConnected():
                pass
            case NamespaceRefused(namespace=namespace, message=message, data=data):
                raise ConnectError(message, data, namespace)
            case NamespaceDisconnected(namespace=namespace):
                conn.log.info("client.namespace_disconnected_by_server", namespace=namespace)
                self.namespace_sids.pop(namespace, None)
                await self._fire("disconnect", namespace, "io server disconnect")
                # the namespaces of a client are one unit: losing one ends (and maybe reconnects) them all
                raise ConnectionEnded("io server disconnect")
            case Closed(reason=reason):
                raise ConnectionEnded(reason)

    async def _dispatch(self, conn: Connection, event: EventReceived) -> None:
        name = str(event.event)  # the client API's names are strings, as the JS client's
        handler = self._handlers.get((event.namespace, name))
        if handler is None:
            event_out = Event(name, event.args, event.namespace, event.ack_id, conn.generation)
            await self._send_events.send(event_out)
            return
        result = await maybe_await(handler(*event.args))
        if event.ack_id is not None and event.namespace in conn.protocol.connected:
            await conn.send(conn.protocol.ack(event.namespace, event.ack_id, encode_args(result)))

    async def _fire(self, name: str, namespace: str, *args: Any) -> None:
        handler = self._handlers.get((namespace, name))
        if handler is not None:
            await maybe_await(handler(*args))

    def _connected(self, conn: Connection) -> None:
        self._conn = conn
        self.connect_count = conn.generation
        self._failure = None
        self.namespace_sids = dict(conn.protocol.connected)
        conn.log.info("client.connected", namespaces=list(self.namespace_sids), count=self.connect_count)
        self._notify()

    def _disconnected(self, conn: Connection, reason: str) -> None:
        if self._conn is not conn:
            return
        self._conn = None
        self.disconnect_count += 1
        self.disconnect_reason = reason
        conn.log.info("client.disconnected", reason=reason)
        for pending in self._pending.values():
            if pending.generation == conn.generation and not pending.done.is_set():
                pending.error = DisconnectedError(f"connection lost before the ack ({reason})")
                pending.done.set()
        self._notify()

    async def _fire_disconnects(self) -> None:
        for namespace in self.namespace_sids:
            await self._fire("disconnect", namespace, self.disconnect_reason)
        self.namespace_sids = {}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TransportClosed):
        return exc.reason
    if isinstance(exc, trio.TooSlowError):
        return str(exc) or "connect timeout"
    return str(exc) or type(exc).__name__
