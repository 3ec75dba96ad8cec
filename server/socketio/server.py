"""``Server``: python-socketio's ``AsyncServer`` API on trio.

Owns: the user-facing surface -- handler registration (``@sio.event``, ``@sio.on``), running
(``run``), emitting (``emit``, ``emit_nowait``, ``send``, ``send_packet_nowait`` with its shared-encoding
cache, ``call``), rooms, sessions, disconnecting, per-sid data. The machinery underneath (the Engine.IO
application, the sid lifecycle, dispatch, delivery, and the ``async_handlers`` choice, documented there)
is ``engine_app.py`` over ``delivery.py``; mounting and serving the whole stack is
``server.engineio.serving``.
Knows nothing of HTTP or of Engine.IO's transports.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

from server.engineio import EngineConfig, EngineServer, OutgoingMessage, serving
from server.socketio import codec
from server.socketio._sockets import AckWaiter, Outgoing
from server.socketio.engine_app import EngineApplication, inline_connection
from server.socketio.errors import DisconnectReason, TimeoutError
from server.socketio.rooms import Rooms

F = TypeVar("F", bound=Callable[..., Any])


class _Done:
    """What ``enter_room`` & co. return: the work is done already, but ``await`` on it works too, so code
    written for python-socketio's ``await sio.enter_room(...)`` runs unchanged."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # pragma: no cover - makes this a generator


_DONE = _Done()


class _Wire:
    """What ``send_packet_nowait`` stores in a caller's cache slot: the shared encoding of one event."""

    __slots__ = ("event", "messages", "namespace", "packet_class")

    def __init__(self, packet_class: type, namespace: str, event: Any, messages: list[Outgoing]) -> None:
        self.packet_class = packet_class
        self.namespace = namespace
        self.event = event
        self.messages = messages


def _ack_result(args: list[Any]) -> Any:
    # python-socketio's call() return convention.
    if not args:
        return None
    return args[0] if len(args) == 1 else tuple(args)


class Server(EngineApplication):
    """A Socket.IO v5 server on trio with python-socketio's ``AsyncServer`` API.

    Run it with ``await nursery.start(sio.run)`` (or ``sio.serve(...)``, which runs the whole stack), and
    mount ``sio.engine_server()`` at ``/socket.io/``. Options are documented on ``Delivery.__init__``;
    ``async_handlers`` in ``server.socketio.engine_app``. Observers: ``add_instrumentation``.
    """

    reason = DisconnectReason

    # -- registration (python-socketio's decorators) -----------------------------------------------------

    def on(
        self, event: str, handler: Callable[..., Any] | None = None, namespace: str | None = None
    ) -> Any:
        """``@sio.on("name", namespace="/chat")``; ``"*"`` is the catch-all event (it receives the event
        name first) and ``namespace="*"`` the catch-all namespace (it receives the namespace first)."""
        return self.handlers.on(event, handler, namespace)

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """``@sio.event`` registers a handler named by the function; ``@sio.event(namespace="/x")`` too."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.handlers.on(args[0].__name__)(args[0])  # type: ignore[misc]

        def set_handler(handler: F) -> F:
            return self.handlers.on(handler.__name__, *args, **kwargs)(handler)  # type: ignore[misc]

        return set_handler

    # -- running -----------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the server's tasks (timers, handler tasks) until cancelled: ``nursery.start(sio.run)``."""
        if self._nursery is not None:
            raise RuntimeError("Server.run() is already running")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self._timers.run)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    def start_background_task(self, target: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``target(*args)`` in the server's nursery (python-socketio's name)."""
        self._require_nursery().start_soon(target, *args)

    async def sleep(self, seconds: float = 0) -> None:
        await trio.sleep(seconds)

    def send_packet_nowait(
        self,
        sid: str,
        namespace: str | None,
        event: str,
        data: Any = None,
        *,
        cache: object | None = None,
        json_text: str | None = None,
    ) -> bool:
        """Emit ``event`` to one sid without blocking; False if the sid is gone or its connection was
        closed for being overfull (the caller then treats it as gone).

        ``data`` follows ``emit``'s convention (a tuple is several arguments). ``json_text``, if given, is
        ``data`` (one argument) already encoded as JSON; it is spliced in without re-encoding. ``cache`` is
        any object with a writable ``wire`` attribute (``actors.events.OutboundEvent``): the first call
        stores the encoded messages there and every later recipient of the same object reuses them, so a
        fan-out encodes (and frames) once.
        """
        nss = self._lookup(sid, namespace)
        if nss is None:
            return False
        self.events_sent += 1
        if self._event_observers:  # the data as given (a pre-encoded event's JSON text only when it has none)
            sent = data if data is not None or json_text is None else json_text
            self._notify_event("event_sent", sid, nss.namespace, event, sent)
        messages: Sequence[Outgoing]
        if self._recovery is not None:  # every sid gets its own offset: no shared encoding
            if json_text is not None:
                data = json.loads(json_text)
            messages = self._recorded_event(self._recovery, nss.namespace, event, data, sid, None)
        elif cache is None:
            if json_text is not None and codec.is_text_packet_class(self.packet_class):
                messages = codec.encode_event_json(nss.namespace, event, json_text)
            else:
                args = codec.args_from_data(data)
                messages = codec.encode_event(self.packet_class, nss.namespace, event, args)
        else:
            wire = getattr(cache, "wire", None)
            if (
                isinstance(wire, _Wire)
                and wire.namespace == nss.namespace
                and wire.event == event
                and wire.packet_class is self.packet_class
            ):
                messages = wire.messages
            else:
                messages = self._encode_shared(nss.namespace, event, data, json_text)
                cache.wire = _Wire(self.packet_class, nss.namespace, event, messages)  # type: ignore[attr-defined]
        return self._deliver(nss, messages)

    def emit_nowait(
        self,
        event: str,
        data: Any = None,
        to: Rooms = None,
        room: Rooms = None,
        skip_sid: Rooms = None,
        namespace: str | None = None,
        callback: Callable[..., Any] | None = None,
    ) -> None:
        """``emit`` without awaiting (it never needs to block): to a sid, a room, several rooms, or
        (``to=None``) the whole namespace, minus ``skip_sid``. Encoded once for all recipients unless a
        ``callback`` asks each recipient for its own ack. Raises ``AckLimitError`` when a single
        recipient has ``max_pending_acks`` outstanding."""
        namespace = namespace or "/"
        target = to if to is not None else room
        sids = self._rooms.recipients(namespace, target, skip_sid)
        recovery = self._recovery if callback is None else None  # kept even with no sid connected now
        if not sids and recovery is None:
            return
        self.events_sent += 1
        if self._event_observers:
            self._notify_event("event_sent", target, namespace, event, data)
        args = codec.args_from_data(data)
        if recovery is not None:
            encoded = self._recorded_event(recovery, namespace, event, data, target, skip_sid)
        elif callback is not None:
            for sid in sids:
                nss = self._lookup(sid, namespace)
                if nss is not None:
                    self._emit_with_callback(nss, event, args, callback)
            return
        else:
            encoded = codec.encode_event(self.packet_class, namespace, event, args)
        if not sids:
            return
        if len(sids) == 1:
            nss = self._lookup(sids[0], namespace)
            if nss is not None:
                self._deliver(nss, encoded)
            return
        shared: list[Outgoing] = [OutgoingMessage(message) for message in encoded]
        for sid in sids:
            nss = self._lookup(sid, namespace)
            if nss is not None:
                self._deliver(nss, shared)

    async def emit(
        self,
        event: str,
        data: Any = None,
        to: Rooms = None,
        room: Rooms = None,
        skip_sid: Rooms = None,
        namespace: str | None = None,
        callback: Callable[..., Any] | None = None,
    ) -> None:
        """python-socketio's ``emit``; it never blocks (``emit_nowait`` plus a checkpoint)."""
        self.emit_nowait(event, data, to, room, skip_sid, namespace, callback)
        await trio.lowlevel.checkpoint()

    async def send(
        self,
        data: Any,
        to: Rooms = None,
        room: Rooms = None,
        skip_sid: Rooms = None,
        namespace: str | None = None,
        callback: Callable[..., Any] | None = None,
    ) -> None:
        """Emit the ``message`` event."""
        await self.emit("message", data, to, room, skip_sid, namespace, callback)

    async def call(
        self,
        event: str,
        data: Any = None,
        to: str | None = None,
        sid: str | None = None,
        namespace: str | None = None,
        timeout: float = 60,  # noqa: ASYNC109 - python-socketio's signature
    ) -> Any:
        """Emit to one sid and wait for its ack: returns the client's ack arguments (None for none, the
        value for one, a tuple for several). Raises ``TimeoutError`` when no ack comes within ``timeout``
        or the sid disconnects first (at once, not after the timeout), and ``RuntimeError`` when called
        from an inline handler of the same connection (it would wait for itself)."""
        target = to or sid
        if target is None:
            raise ValueError("call() needs the sid of one client (to=...)")
        nss = self._lookup(target, namespace)
        if nss is None:
            raise TimeoutError(f"{target} is not connected")
        conn = nss.conn
        if inline_connection.get() is conn:
            raise RuntimeError(
                "call() to the connection whose handler is running inline would wait for itself: "
                "use Server(async_handlers=True) or call from another task"
            )
        self.events_sent += 1
        if self._event_observers:
            self._notify_event("event_sent", target, nss.namespace, event, data)
        waiter = AckWaiter()
        ack_id = conn.proto.register_ack(nss.namespace, waiter)
        try:
            messages = codec.encode_event(
                self.packet_class, nss.namespace, event, codec.args_from_data(data), ack_id
            )
            if not self._deliver(nss, messages):
                raise TimeoutError(f"{target} disconnected before acknowledging {event!r}")
            with trio.move_on_after(timeout):
                await waiter.event.wait()
        finally:
            conn.proto.forget_ack(nss.namespace, ack_id)
        if waiter.args is None:
            if waiter.failed:
                raise TimeoutError(f"{target} disconnected before acknowledging {event!r}")
            raise TimeoutError(f"no acknowledgement of {event!r} from {target} within {timeout} s")
        return _ack_result(waiter.args)

    async def wait_writable(self, sid: str) -> None:
        """Return when the sid's connection can take more output (its buffer is below the low-water mark),
        or at once if the sid is gone or still connecting (its connect backlog is bounded instead)."""
        nss = self._lookup(sid, None)
        if nss is None or nss.backlog is not None:
            await trio.lowlevel.checkpoint()
            return
        await nss.conn.sock.wait_writable()

    # -- disconnecting -----------------------------------------------------------------------------------

    async def disconnect(self, sid: str, namespace: str | None = None) -> None:
        """Disconnect the sid from its namespace: the client gets a DISCONNECT (a CONNECT_ERROR if its
        connect handler is still running) and the disconnect handler runs with "server disconnect"."""
        nss = self._lookup(sid, namespace)
        if nss is None:
            await trio.lowlevel.checkpoint()
            return
        self._send_leave(nss)
        await self._end(nss, DisconnectReason.SERVER_DISCONNECT)

    def disconnect_nowait(self, sid: str, namespace: str | None = None) -> None:
        """``disconnect`` without awaiting: the disconnect handler runs in a task of the server."""
        nss = self._lookup(sid, namespace)
        if nss is None:
            return
        self._send_leave(nss)
        was_connected = nss.connected
        if self._begin_end(nss, DisconnectReason.SERVER_DISCONNECT):
            if was_connected and self._nursery is not None:
                self._nursery.start_soon(self._finish_end, nss)
            else:
                self._remove(nss)

    def close_connection(self, sid: str, reason: str = "server disconnect") -> None:
        """Close the sid's whole Engine.IO connection at once (every namespace on it). The client sees a
        transport close and reconnects by itself (unlike after ``disconnect``); disconnect handlers run
        when the engine reports the close."""
        nss = self._sockets.get(sid)
        if nss is not None and not nss.conn.sock.closed:
            nss.conn.sock.close(reason)

    # -- rooms -------------------------------------------------------------------------------------------

    def enter_room(self, sid: str, room: str, namespace: str | None = None) -> _Done:
        """Put the sid in ``room`` (created on first use). Synchronous; ``await`` on it works too."""
        nss = self._lookup(sid, namespace)
        if nss is not None:
            self._rooms.enter(nss.namespace, sid, room)
            if self._instruments:
                self._notify("room_joined", sid, nss.namespace, room)
        return _DONE

    def leave_room(self, sid: str, room: str, namespace: str | None = None) -> _Done:
        nss = self._lookup(sid, namespace)
        if nss is not None:
            self._rooms.leave(nss.namespace, sid, room)
            if self._instruments:
                self._notify("room_left", sid, nss.namespace, room)
        return _DONE

    def close_room(self, room: str, namespace: str | None = None) -> _Done:
        """Every sid leaves ``room``."""
        namespace = namespace or "/"
        if self._instruments:
            for sid in self._rooms.members(namespace, room) - {room}:
                self._notify("room_left", sid, namespace, room)
        self._rooms.close_room(namespace, room)
        return _DONE

    def rooms(self, sid: str, namespace: str | None = None) -> list[str]:
        """The sid's rooms, its own (named by the sid) first."""
        nss = self._sockets.get(sid)
        if nss is None or (namespace is not None and nss.namespace != namespace):
            return []
        return self._rooms.rooms_of(nss.namespace, sid)

    # -- per-sid data ------------------------------------------------------------------------------------

    def recovered(self, sid: str, namespace: str | None = None) -> bool:
        """True if ``sid`` was restored by connection state recovery (Node's ``socket.recovered``)."""
        nss = self._lookup(sid, namespace)
        return nss is not None and nss.recovered

    def connected(self, sid: str, namespace: str | None = None) -> bool:
        """True while the sid is connected (its connect handler has accepted it)."""
        nss = self._lookup(sid, namespace)
        return nss is not None and nss.connected

    def get_environ(self, sid: str, namespace: str | None = None) -> dict[str, Any] | None:
        nss = self._sockets.get(sid)
        return nss.conn.environ if nss is not None else None

    def transport(self, sid: str, namespace: str | None = None) -> str | None:
        """``"polling"`` or ``"websocket"``."""
        nss = self._sockets.get(sid)
        return nss.conn.sock.transport if nss is not None else None

    async def get_session(self, sid: str, namespace: str | None = None) -> dict[str, Any]:
        """The sid's session dict (created empty on first use); gone when the sid disconnects."""
        nss = self._sockets.get(sid)
        if nss is None:
            raise KeyError(f"unknown sid {sid}")
        if nss.session is None:
            nss.session = {}
        return nss.session

    async def save_session(self, sid: str, session: dict[str, Any], namespace: str | None = None) -> None:
        nss = self._sockets.get(sid)
        if nss is None:
            raise KeyError(f"unknown sid {sid}")
        nss.session = session

    @asynccontextmanager
    async def session(self, sid: str, namespace: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """``async with sio.session(sid) as session:`` -- saved on exit."""
        session = await self.get_session(sid, namespace)
        yield session
        await self.save_session(sid, session, namespace)

    # -- serving -----------------------------------------------------------------------------------------

    def engine_server(self, config: EngineConfig | None = None, **options: Any) -> EngineServer:
        """The ``EngineServer`` (an HTTP handler: ``router.mount("/socket.io/", engine.handle)``) whose
        application is this server; ``options`` (and ``Server(**engine_options)``) override ``EngineConfig``
        fields (``ping_interval``, ``ping_timeout``, ``max_payload``, ...). Run ``engine.run`` and
        ``sio.run`` in your nursery, or use ``serve``."""
        changes = {**self.engine_options, **options}
        base = config or EngineConfig()
        return EngineServer(self, base.with_(**changes) if changes else base, on_upgrade=self.engine_upgraded)

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 5000,
        *,
        path: str = serving.DEFAULT_PATH,
        router: serving.Router | None = None,
        http_config: serving.HttpConfig | None = None,
        engine_config: EngineConfig | None = None,
        task_status: trio.TaskStatus[serving.HttpServer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the whole stack (HTTP, Engine.IO, this server) until cancelled: ``trio.run(sio.serve, host,
        port)`` or ``http = await nursery.start(sio.serve, "127.0.0.1", 0)``. Ctrl-C (a KeyboardInterrupt
        and nothing else) ends it: it returns normally, the connections closed."""
        try:
            await serving.serve(
                self.engine_server(engine_config), self.run, host, port, path=path, router=router,
                http_config=http_config, task_status=task_status,
            )
        except KeyboardInterrupt:
            return
        except BaseExceptionGroup as group:
            if group.split(KeyboardInterrupt)[1] is not None:
                raise
