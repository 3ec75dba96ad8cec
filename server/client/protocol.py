"""The client end of one websocket connection, on the shared sans-IO Engine.IO v4 and Socket.IO v5 cores.

Owns: ``ClientProtocol``, which runs the server's own cores in the client role (``SocketProtocol.client()``
from ``server.engineio.protocol``, ``SocketIOProtocol(role=Role.CLIENT)`` from ``server.socketio.protocol``)
and gives the trio client the shape it uses: ``receive`` returns a list of events and raises
``ProtocolError`` where the cores close the connection; the sids of the joined namespaces (``connected``);
the two Engine.IO events (``Opened``, ``Closed``). Every packet is decoded and encoded by the cores' codecs
(``server.engineio.codec``, ``server.socketio.codec``); nothing of the protocol is decided here.

Must not know about: sockets, trio, tasks, time sources (``now`` is passed in), reconnection, user handlers
or queues.

Theory of operation (the h11 style): ``receive(message, now)`` returns the events the message carries and
queues any automatic reply (the pong) in the Engine.IO outbox drained by ``data_to_send()``. Encoding
methods return the list of websocket messages to send (one text message, then one binary message per
attachment). The states and their transitions are the cores' tables: the client role of
``server/engineio/_state.py`` (OPENING -> WEBSOCKET -> CLOSED) and the client rows of the namespace table
in ``server/socketio/protocol.py``; after the Engine.IO CLOSE packet any message is a ``ProtocolError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.engineio.codec import DecodeError, Handshake, OutgoingMessage, decode_packet, encode_message
from server.engineio.protocol import TRANSPORT_CLOSE, Heartbeat, Phase, Role, SocketProtocol
from server.socketio import codec
from server.socketio.protocol import (
    AckReceived,
    ConnectRequested,
    EventReceived,
    NamespaceConnected,
    NamespaceLeft,
    NamespaceRefused,
    NamespaceState,
    ProtocolViolation,
    SocketIOProtocol,
)

__all__ = [
    "AckReceived",
    "ClientProtocol",
    "Closed",
    "EventReceived",
    "Heartbeat",
    "NamespaceConnected",
    "NamespaceDisconnected",
    "NamespaceRefused",
    "Opened",
    "ProtocolError",
    "ProtocolEvent",
    "encode_args",
]

Message = str | bytes

Opened = Handshake
"""The Engine.IO handshake ``0{...}`` (sid, ping interval and timeout in seconds, max payload)."""

NamespaceDisconnected = NamespaceLeft
"""The server sent DISCONNECT ``41[/nsp,]``: it left this namespace for us."""

encode_args = codec.args_from_data
"""python-socketio's convention: a tuple is several arguments, ``None`` none, anything else one."""


class ProtocolError(Exception):
    """The server sent something Engine.IO v4 / Socket.IO v5 does not allow; the connection must close."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The server sent the Engine.IO CLOSE packet ``1``."""

    reason: str


ProtocolEvent = (
    Opened
    | NamespaceConnected
    | NamespaceRefused
    | NamespaceDisconnected
    | EventReceived
    | AckReceived
    | Closed
)


class ClientProtocol:
    """One connection's protocol state: the client role of the shared cores. See the module docstring."""

    __slots__ = ("connected", "engine", "socketio")

    def __init__(self) -> None:
        self.engine = SocketProtocol.client()
        self.socketio = SocketIOProtocol(role=Role.CLIENT)
        self.connected: dict[str, str | None] = {}  # joined namespace -> the sid the server gave it

    @property
    def sid(self) -> str | None:
        """The Engine.IO sid, once the handshake arrived."""
        return self.engine.sid or None

    @property
    def heartbeat(self) -> Heartbeat:
        heartbeat = self.engine.heartbeat
        assert heartbeat is not None  # always set in the client role
        return heartbeat

    @property
    def max_payload(self) -> int:
        handshake = self.engine.handshake
        return handshake.max_payload if handshake is not None else 0

    @property
    def connecting(self) -> set[str]:
        """The namespaces whose CONNECT is still unanswered."""
        return {ns for ns, state in self.socketio.namespaces.items() if state is NamespaceState.CONNECTING}

    # -- what the server sent -------------------------------------------------------------------------------

    def receive(self, message: Message, now: float) -> list[ProtocolEvent]:
        """Decode one websocket message. Raises ``ProtocolError`` on anything the protocol forbids."""
        engine = self.engine
        if engine.phase is Phase.CLOSED:
            raise ProtocolError("message received after the Engine.IO CLOSE packet")
        try:
            packet = decode_packet(message)
        except DecodeError as exc:
            raise ProtocolError(f"undecodable Engine.IO packet {message[:80]!r}: {exc}") from exc
        opening = engine.phase is Phase.OPENING
        data = engine.receive(packet, now)
        if engine.error is not None:
            raise ProtocolError(engine.error)
        if opening:
            assert engine.handshake is not None
            return [engine.handshake]
        if not engine.open:
            return [Closed(engine.close_reason or TRANSPORT_CLOSE)]
        if data is None:
            return []
        event = self.socketio.receive(data)
        if event is None:
            return []
        if isinstance(event, ProtocolViolation):
            raise ProtocolError(event.reason)
        assert not isinstance(event, ConnectRequested)  # the client role reads CONNECT as the reply
        if isinstance(event, NamespaceConnected):
            self.connected[event.namespace] = event.sid
        elif isinstance(event, NamespaceLeft):
            self.connected.pop(event.namespace, None)
        return [event]

    def data_to_send(self) -> list[Message]:
        """Automatic replies (pongs) queued by ``receive``; the caller sends them in order."""
        return [p.packet if isinstance(p, OutgoingMessage) else p for p in self.engine.take_outbox()]

    # -- what the client sends ------------------------------------------------------------------------------

    def connect(self, namespace: str = "/", auth: Mapping[str, Any] | None = None) -> list[Message]:
        """CONNECT ``40[/nsp,][{auth}]``."""
        self._require_open()
        return _engine_messages(self.socketio.connect(namespace, auth))

    def disconnect(self, namespace: str = "/") -> list[Message]:
        """DISCONNECT ``41[/nsp,]``: leave one namespace."""
        self._require_open()
        self.connected.pop(namespace, None)
        return _engine_messages(self.socketio.leave(namespace))

    def emit(self, namespace: str, name: str, args: list[Any], ack_id: int | None = None) -> list[Message]:
        """EVENT (or BINARY_EVENT when an argument holds bytes), asking for an ack when ``ack_id`` is set
        (the client picks its ack ids and matches the ``AckReceived`` itself)."""
        self._require_open()
        if self.socketio.state(namespace) is not NamespaceState.CONNECTED:
            raise ProtocolError(f"namespace {namespace!r} is not connected")
        packet_class = self.socketio.packet_class
        return _engine_messages(codec.encode_event(packet_class, namespace, name, args, ack_id))

    def ack(self, namespace: str, ack_id: int, args: list[Any]) -> list[Message]:
        """ACK (or BINARY_ACK) answering a server call."""
        self._require_open()
        return _engine_messages(self.socketio.ack(namespace, ack_id, list(args)))

    def _require_open(self) -> None:
        if not self.engine.open:
            raise ProtocolError(f"connection is {self.engine.phase.value}, not open")


def _engine_messages(messages: list[codec.EngineMessage]) -> list[Message]:
    """Socket.IO packets as websocket messages: text as an Engine.IO MESSAGE ``4...``, attachments as they
    are."""
    return [encode_message(m) for m in messages]
