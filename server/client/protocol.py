"""Sans-IO client side of Engine.IO v4 + Socket.IO v5 for one websocket connection.

Owns: decoding what the server sends (one websocket message at a time) into typed events, encoding what the
client sends into websocket messages, the namespace handshake state of one connection, binary attachment
reassembly, and the heartbeat deadline (pingInterval + pingTimeout after the handshake and after each ping).

Must not know about: sockets, trio, tasks, time sources (``now`` is passed in), reconnection, user handlers
or queues. Packet text is produced and parsed by ``engineio.packet`` and ``socketio.packet`` only.

Theory of operation (the h11 style): ``receive(message, now)`` returns the events the message carries and
queues any automatic reply (the pong) in an outbox drained by ``data_to_send()``. Encoding methods return the
list of websocket messages to send (one text message, then one binary message per attachment). Anything the
server sends that the protocol does not allow raises ``ProtocolError``; the caller closes the connection.

Connection states:

| state   | on                                   | goes to                                   |
|---------|--------------------------------------|-------------------------------------------|
| OPENING | Engine.IO OPEN ``0{...}``            | OPEN (heartbeat deadline armed)           |
| OPENING | anything else                        | error                                     |
| OPEN    | PING ``2``                           | OPEN (pong queued, deadline pushed back)  |
| OPEN    | MESSAGE ``4...`` / binary attachment | OPEN (Socket.IO events)                   |
| OPEN    | CLOSE ``1``                          | CLOSED (``Closed`` event)                 |
| OPEN    | OPEN again, UPGRADE                  | error                                     |
| CLOSED  | anything                             | error                                     |
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engineio import packet as eio
from socketio import packet as sio

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


class ProtocolError(Exception):
    """The server sent something Engine.IO v4 / Socket.IO v5 does not allow; the connection must close."""


@dataclass(frozen=True, slots=True)
class Opened:
    """The Engine.IO handshake ``0{...}``. Intervals are in seconds."""

    sid: str
    ping_interval: float
    ping_timeout: float
    max_payload: int


@dataclass(frozen=True, slots=True)
class NamespaceConnected:
    namespace: str
    sid: str | None


@dataclass(frozen=True, slots=True)
class NamespaceRefused:
    """CONNECT_ERROR ``44[/nsp,]{"message":..., "data":...}``."""

    namespace: str
    message: str
    data: Any


@dataclass(frozen=True, slots=True)
class NamespaceDisconnected:
    """The server sent DISCONNECT ``41[/nsp,]``: it left this namespace for us."""

    namespace: str


@dataclass(frozen=True, slots=True)
class EventReceived:
    namespace: str
    name: str
    args: list[Any]
    ack_id: int | None


@dataclass(frozen=True, slots=True)
class AckReceived:
    namespace: str
    ack_id: int
    args: list[Any]


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


class _State(enum.Enum):
    OPENING = "opening"
    OPEN = "open"
    CLOSED = "closed"


class Heartbeat:
    """The Engine.IO v4 heartbeat as seen by a client: the server pings, we must hear one in time.

    The deadline is ``pingInterval + pingTimeout`` after the handshake and after each ping; a connection
    that reaches it without a ping is dead ("ping timeout"). One deadline per connection, no sweeps.
    """

    __slots__ = ("deadline", "interval", "timeout")

    def __init__(self) -> None:
        self.interval = 0.0
        self.timeout = 0.0
        self.deadline = math.inf

    def start(self, now: float, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self.deadline = now + interval + timeout

    def pinged(self, now: float) -> None:
        self.deadline = now + self.interval + self.timeout

    def expired(self, now: float) -> bool:
        return now >= self.deadline


def encode_args(data: Any) -> list[Any]:
    """python-socketio's convention: a tuple is several arguments, ``None`` none, anything else one."""
    if data is None:
        return []
    if isinstance(data, tuple):
        return list(data)
    return [data]


def _engine_message(packet: sio.Packet) -> list[Message]:
    """Wrap an encoded Socket.IO packet: text as Engine.IO MESSAGE, attachments as raw binary messages."""
    encoded = packet.encode()
    if isinstance(encoded, list):
        head, *attachments = encoded
        return [eio.Packet(eio.MESSAGE, data=head).encode(), *(bytes(a) for a in attachments)]
    return [eio.Packet(eio.MESSAGE, data=encoded).encode()]


def _ms(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ProtocolError(f"handshake field {name!r} must be a non-negative number, got {value!r}")
    return float(value) / 1000.0


class ClientProtocol:
    """One connection's protocol state. See the module docstring for the state table."""

    def __init__(self) -> None:
        self.state = _State.OPENING
        self.sid: str | None = None
        self.heartbeat = Heartbeat()
        self.max_payload = 0
        self.connecting: set[str] = set()
        self.connected: dict[str, str | None] = {}
        self._left: set[str] = set()
        self._outbox: list[Message] = []
        self._binary: sio.Packet | None = None

    # -- what the server sent -------------------------------------------------------------------------------

    def receive(self, message: Message, now: float) -> list[ProtocolEvent]:
        """Decode one websocket message. Raises ``ProtocolError`` on anything the protocol forbids."""
        if self.state is _State.CLOSED:
            raise ProtocolError("message received after the Engine.IO CLOSE packet")
        if isinstance(message, bytes | bytearray):
            return self._receive_attachment(bytes(message))
        if not message:
            raise ProtocolError("empty Engine.IO packet")
        if self._binary is not None:
            raise ProtocolError("text packet received while binary attachments were still expected")
        try:
            pkt = eio.Packet(encoded_packet=message)
        except (ValueError, TypeError, IndexError) as exc:
            raise ProtocolError(f"undecodable Engine.IO packet {message[:80]!r}") from exc
        if self.state is _State.OPENING:
            if pkt.packet_type != eio.OPEN:
                raise ProtocolError(f"expected the Engine.IO OPEN packet first, got {message[:80]!r}")
            return [self._open(pkt.data, now)]
        kind = pkt.packet_type
        if kind == eio.PING:
            self.heartbeat.pinged(now)
            self._outbox.append(eio.Packet(eio.PONG, data=pkt.data or None).encode())
            return []
        if kind == eio.MESSAGE:
            return self._receive_socketio(message[1:])
        if kind == eio.CLOSE:
            self.state = _State.CLOSED
            return [Closed("transport close")]
        if kind in (eio.NOOP, eio.PONG):
            return []
        raise ProtocolError(f"unexpected Engine.IO packet type {kind} on a websocket: {message[:80]!r}")

    def data_to_send(self) -> list[Message]:
        """Automatic replies (pongs) queued by ``receive``; the caller sends them in order."""
        out, self._outbox = self._outbox, []
        return out

    def _open(self, data: Any, now: float) -> Opened:
        if not isinstance(data, Mapping):
            raise ProtocolError(f"Engine.IO OPEN packet without a JSON object: {data!r}")
        sid = data.get("sid")
        if not isinstance(sid, str) or not sid:
            raise ProtocolError(f"Engine.IO OPEN packet without a sid: {data!r}")
        interval = _ms(data.get("pingInterval"), "pingInterval")
        timeout = _ms(data.get("pingTimeout"), "pingTimeout")
        max_payload = data.get("maxPayload", 0)
        self.state = _State.OPEN
        self.sid = sid
        self.max_payload = int(max_payload) if isinstance(max_payload, int) else 0
        self.heartbeat.start(now, interval, timeout)
        return Opened(sid, interval, timeout, self.max_payload)

    def _receive_socketio(self, text: str) -> list[ProtocolEvent]:
        if not text:
            raise ProtocolError("empty Socket.IO packet")
        try:
            pkt = sio.Packet(encoded_packet=text)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise ProtocolError(f"undecodable Socket.IO packet {text[:80]!r}") from exc
        if pkt.packet_type in (sio.BINARY_EVENT, sio.BINARY_ACK):
            if pkt.attachment_count <= 0:
                raise ProtocolError(f"binary packet without attachments: {text[:80]!r}")
            self._binary = pkt
            return []
        return self._socketio_event(pkt)

    def _receive_attachment(self, data: bytes) -> list[ProtocolEvent]:
        pkt = self._binary
        if pkt is None:
            raise ProtocolError("binary message received with no binary packet waiting for attachments")
        try:
            complete = pkt.add_attachment(data)
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise ProtocolError("invalid binary attachment") from exc
        if not complete:
            return []
        self._binary = None
        return self._socketio_event(pkt)

    def _socketio_event(self, pkt: sio.Packet) -> list[ProtocolEvent]:
        namespace = pkt.namespace or "/"
        kind = pkt.packet_type
        if kind == sio.CONNECT:
            if namespace not in self.connecting:
                raise ProtocolError(f"CONNECT for namespace {namespace!r} that was not requested")
            self.connecting.discard(namespace)
            sid = pkt.data.get("sid") if isinstance(pkt.data, Mapping) else None
            self.connected[namespace] = sid if isinstance(sid, str) else None
            return [NamespaceConnected(namespace, self.connected[namespace])]
        if kind == sio.CONNECT_ERROR:
            if namespace not in self.connecting:
                raise ProtocolError(f"CONNECT_ERROR for namespace {namespace!r} that was not requested")
            self.connecting.discard(namespace)
            if isinstance(pkt.data, Mapping):
                return [NamespaceRefused(namespace, str(pkt.data.get("message", "")), pkt.data.get("data"))]
            # python-socketio refuses unknown namespaces with a bare string
            return [NamespaceRefused(namespace, str(pkt.data or "Connection refused"), None)]
        if namespace in self._left:
            return []  # the server may still be sending to a namespace we have just left
        if namespace not in self.connected:
            raise ProtocolError(f"packet type {kind} for namespace {namespace!r} that is not connected")
        if kind == sio.DISCONNECT:
            del self.connected[namespace]
            self._left.add(namespace)
            return [NamespaceDisconnected(namespace)]
        if kind in (sio.EVENT, sio.BINARY_EVENT):
            data = pkt.data
            if not isinstance(data, list) or not data or isinstance(data[0], bool):
                raise ProtocolError(f"EVENT payload must be a non-empty array, got {data!r}")
            name = data[0]
            if not isinstance(name, str | int | float):
                raise ProtocolError(f"EVENT name must be a string or number, got {name!r}")
            return [EventReceived(namespace, str(name), list(data[1:]), pkt.id)]
        if kind in (sio.ACK, sio.BINARY_ACK):
            if pkt.id is None:
                raise ProtocolError("ACK packet without an id")
            args = pkt.data if pkt.data is not None else []
            if not isinstance(args, list):
                raise ProtocolError(f"ACK payload must be an array, got {args!r}")
            return [AckReceived(namespace, pkt.id, list(args))]
        raise ProtocolError(f"unknown Socket.IO packet type {kind!r}")

    # -- what the client sends ------------------------------------------------------------------------------

    def connect(self, namespace: str = "/", auth: Mapping[str, Any] | None = None) -> list[Message]:
        """CONNECT ``40[/nsp,][{auth}]``."""
        self._require_open()
        if auth is not None and not isinstance(auth, Mapping):
            raise TypeError(f"auth must be a mapping, got {type(auth).__name__}")
        self.connecting.add(namespace)
        self._left.discard(namespace)
        data = dict(auth) if auth else None
        return _engine_message(sio.Packet(sio.CONNECT, data=data, namespace=namespace))

    def disconnect(self, namespace: str = "/") -> list[Message]:
        """DISCONNECT ``41[/nsp,]``: leave one namespace."""
        self._require_open()
        self.connected.pop(namespace, None)
        self._left.add(namespace)
        return _engine_message(sio.Packet(sio.DISCONNECT, namespace=namespace))

    def emit(self, namespace: str, name: str, args: list[Any], ack_id: int | None = None) -> list[Message]:
        """EVENT (or BINARY_EVENT when an argument holds bytes), asking for an ack when ``ack_id`` is set."""
        self._require_open()
        if namespace not in self.connected:
            raise ProtocolError(f"namespace {namespace!r} is not connected")
        return _engine_message(sio.Packet(sio.EVENT, data=[name, *args], namespace=namespace, id=ack_id))

    def ack(self, namespace: str, ack_id: int, args: list[Any]) -> list[Message]:
        """ACK (or BINARY_ACK) answering a server call."""
        self._require_open()
        return _engine_message(sio.Packet(sio.ACK, data=list(args), namespace=namespace, id=ack_id))

    def _require_open(self) -> None:
        if self.state is not _State.OPEN:
            raise ProtocolError(f"connection is {self.state.value}, not open")
