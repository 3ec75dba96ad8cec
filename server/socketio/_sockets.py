"""Per-connection records of the Socket.IO server (private).

Owns: ``Connection`` (one Engine.IO socket: its protocol core, environ, namespace sockets, handler slots),
``NamespaceSocket`` (one Socket.IO sid: a connection's membership of one namespace, its connect backlog and
session) and the ack tokens (``AckWaiter`` for ``call``, ``AckCallback`` for ``emit(callback=...)``).
Plain state with ``__slots__``; the behaviour lives in ``server.socketio.server``.

Knows nothing of handlers or rooms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from actors.timers import Timer
from server.engineio import OutgoingMessage
from server.socketio.codec import EngineMessage
from server.socketio.protocol import SocketIOProtocol
from server.socketio.transport import Transport

Outgoing = EngineMessage | OutgoingMessage


class Connection:
    """One Engine.IO connection as the Socket.IO server sees it."""

    __slots__ = ("environ", "inflight", "proto", "slot_free", "sock", "sockets", "timer")

    def __init__(self, sock: Transport, proto: SocketIOProtocol, environ: dict[str, Any]) -> None:
        self.sock = sock
        self.proto = proto
        self.environ = environ
        self.sockets: dict[str, NamespaceSocket] = {}  # namespace -> socket
        self.inflight = 0  # handler tasks running (async_handlers=True)
        self.slot_free: trio.Event | None = None  # set when a handler task ends while at the limit
        self.timer: Timer | None = None  # the connect timeout


class NamespaceSocket:
    """One Socket.IO sid: the connection's membership of one namespace."""

    __slots__ = ("backlog", "conn", "connected", "end_reason", "ended", "namespace", "pid", "recovered",
                 "session", "sid")

    def __init__(self, sid: str, namespace: str, conn: Connection) -> None:
        self.sid = sid
        self.namespace = namespace
        self.conn = conn
        # While the connect handler runs, what is emitted to this sid waits here, and goes out right after
        # the CONNECT reply (never before it). None once connected.
        self.backlog: list[Outgoing] | None = []
        self.connected = False
        self.ended = False
        self.end_reason: str | None = None
        self.session: dict[str, Any] | None = None
        self.pid: str | None = None  # connection state recovery: the private id of the CONNECT reply
        self.recovered = False  # connection state recovery: this sid was restored


class AckWaiter:
    """Token of a ``call``: the task waiting in ``call`` wakes on ``event``."""

    __slots__ = ("args", "event", "failed")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.args: list[Any] | None = None
        self.failed = False

    def resolve(self, args: list[Any]) -> None:
        self.args = args
        self.event.set()

    def fail(self) -> None:
        self.failed = True
        self.event.set()


class AckCallback:
    """Token of ``emit(..., callback=f)``: ``f(*args)`` runs when the client acknowledges."""

    __slots__ = ("callback", "timer")

    def __init__(self, callback: Callable[..., Any]) -> None:
        self.callback = callback
        self.timer: Timer | None = None  # max_ack_wait expiry
