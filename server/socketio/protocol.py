"""The Socket.IO v5 protocol of one Engine.IO connection, sans-IO.

Owns: everything that decides what a client's Engine.IO message means and what goes back, for one
connection: which namespaces are joined, binary attachment reassembly, the server-initiated ack ids, the
connect timeout rule and every "close the whole connection" rule. Feed it messages with ``receive``; it
returns at most one ``ProtocolEvent`` for the application and never awaits. Outgoing packets are built by
its methods (``accept``, ``refuse``, ``event``, ``ack``, ``leave``) as lists of Engine.IO messages that the
caller sends in order.

Knows nothing of trio, engine sockets, handlers, rooms or sids' meaning (the caller picks the sid).

Theory of operation -- each namespace of the connection is in one state, and these are all transitions:

| namespace state | on | goes to | output |
|---|---|---|---|
| (absent) | client CONNECT, auth an object or absent | CONNECTING | ``ConnectRequested`` |
| (absent) | ``refuse`` (application: unknown namespace) | (absent) | CONNECT_ERROR |
| CONNECTING | ``accept(sid)`` | CONNECTED | CONNECT ``{"sid": sid}`` |
| CONNECTING | ``refuse(message, data)`` | (absent) | CONNECT_ERROR ``{"message", "data"?}`` |
| CONNECTED | client EVENT / BINARY_EVENT (complete, valid) | CONNECTED | ``EventReceived`` |
| CONNECTED | client ACK / BINARY_ACK for a pending id | CONNECTED | ``AckReceived`` |
| CONNECTED | client DISCONNECT | (absent) | ``NamespaceLeft`` |
| CONNECTED or CONNECTING | ``leave()`` (server disconnect) | (absent) | DISCONNECT |

and for the connection as a whole, each of these closes it at once (``ProtocolViolation``, then every later
``receive`` returns None): an undecodable message, an unknown packet type, a client CONNECT_ERROR, a CONNECT
whose auth is not an object, a CONNECT for a namespace already connecting or connected, any other packet
for a namespace that is not CONNECTED, an invalid EVENT payload (not a non-empty array whose first item is a
string or number, or a reserved event name), an ACK without id or array, too many or too large binary
attachments, a text message while attachments are awaited or a binary message when none is. The connect
timeout: at ``connect_deadline`` the caller asks ``connect_timed_out()``; true when no namespace is
connecting or connected then (the rule of the reference server), and the caller closes the connection.

Connection state recovery is not implemented; its hook is ``accept(..., pid=...)``, which adds the private
id to the CONNECT reply, and the caller's emit path is where offsets would be appended to stored events.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from socketio.packet import Packet

from server.socketio import codec
from server.socketio.codec import EngineMessage
from server.socketio.errors import AckLimitError

#: Event names a client may not send (socket.io's ``RESERVED_EVENTS``).
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)


class NamespaceState(enum.Enum):
    CONNECTING = "connecting"  # CONNECT received; the application's connect handler decides
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    namespace: str
    auth: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class EventReceived:
    namespace: str
    event: str | int | float
    args: list[Any]
    ack_id: int | None  # the client wants an ACK with this id


@dataclass(frozen=True, slots=True)
class AckReceived:
    namespace: str
    ack_id: int
    args: list[Any]
    token: object  # what the caller registered with ``event(..., ack_token=...)``


@dataclass(frozen=True, slots=True)
class NamespaceLeft:
    namespace: str


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The client broke the protocol: close the whole connection now."""

    reason: str


ProtocolEvent = ConnectRequested | EventReceived | AckReceived | NamespaceLeft | ProtocolViolation


class SocketIOProtocol:
    """Socket.IO state of one Engine.IO connection. See the module docstring for the rules."""

    __slots__ = (
        "_acks",
        "_binary_size",
        "_closed",
        "_namespaces",
        "_next_ack_id",
        "_partial",
        "connect_deadline",
        "max_attachments",
        "max_binary_size",
        "max_pending_acks",
        "packet_class",
    )

    def __init__(
        self,
        packet_class: type[Packet] = Packet,
        *,
        connect_deadline: float = float("inf"),
        max_attachments: int = 10,
        max_binary_size: int = 16 * 1024 * 1024,
        max_pending_acks: int = 256,
    ) -> None:
        self.packet_class = packet_class
        self.connect_deadline = connect_deadline
        self.max_attachments = max_attachments
        self.max_binary_size = max_binary_size
        self.max_pending_acks = max_pending_acks
        self._namespaces: dict[str, NamespaceState] = {}
        self._partial: Packet | None = None  # a binary packet waiting for its attachments
        self._binary_size = 0
        self._acks: dict[tuple[str, int], object] | None = None  # created on first server-initiated ack
        self._next_ack_id = 0
        self._closed = False

    # -- state -------------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True after a protocol violation (or ``close()``): nothing more is accepted."""
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._partial = None

    def state(self, namespace: str) -> NamespaceState | None:
        return self._namespaces.get(namespace)

    @property
    def namespaces(self) -> dict[str, NamespaceState]:
        return dict(self._namespaces)

    def connect_timed_out(self) -> bool:
        """Ask at ``connect_deadline``: True means close the connection (no namespace joined or joining)."""
        return not self._closed and not self._namespaces

    @property
    def pending_acks(self) -> int:
        return len(self._acks) if self._acks else 0

    # -- input -------------------------------------------------------------------------------------------

    def receive(self, message: EngineMessage) -> ProtocolEvent | None:
        """One Engine.IO message from the client in; at most one event for the application out."""
        if self._closed:
            return None
        if self._partial is not None:
            return self._receive_attachment(message)
        try:
            pkt = codec.decode(self.packet_class, message)
        except ValueError as exc:
            return self._violation(str(exc))
        return self._dispatch(pkt)

    def _receive_attachment(self, message: EngineMessage) -> ProtocolEvent | None:
        pkt = self._partial
        assert pkt is not None
        if not isinstance(message, bytes):
            return self._violation("text packet while binary attachments were expected")
        self._binary_size += len(message)
        if self._binary_size > self.max_binary_size:
            return self._violation("binary attachments too large")
        try:
            complete = pkt.add_attachment(message)
        except Exception as exc:  # placeholders that do not match the attachments
            return self._violation(f"bad binary attachment: {exc}")
        if not complete:
            return None
        self._partial = None
        self._binary_size = 0
        if pkt.packet_type == codec.BINARY_EVENT:
            return self._event(pkt)
        return self._ack(pkt)

    def _dispatch(self, pkt: Packet) -> ProtocolEvent | None:
        ptype = pkt.packet_type
        namespace: str = pkt.namespace
        count = pkt.attachment_count
        if count and ptype not in (codec.BINARY_EVENT, codec.BINARY_ACK):
            return self._violation("attachments on a packet that cannot carry them")
        if ptype == codec.CONNECT:
            return self._connect(namespace, pkt.data)
        if ptype == codec.CONNECT_ERROR:
            return self._violation("CONNECT_ERROR from the client")
        if ptype not in (codec.DISCONNECT, codec.EVENT, codec.ACK, codec.BINARY_EVENT, codec.BINARY_ACK):
            return self._violation(f"unknown packet type {ptype}")
        if self._namespaces.get(namespace) is not NamespaceState.CONNECTED:
            return self._violation(f"packet for namespace {namespace!r} which is not connected")
        if ptype == codec.DISCONNECT:
            del self._namespaces[namespace]
            return NamespaceLeft(namespace)
        if ptype == codec.EVENT:
            return self._event(pkt)
        if ptype == codec.ACK:
            return self._ack(pkt)
        # BINARY_EVENT / BINARY_ACK header: attachments follow as binary messages.
        if count > self.max_attachments:
            return self._violation(f"too many binary attachments ({count})")
        if count == 0:
            pkt.data = pkt.reconstruct_binary(pkt.data, [])
            return self._event(pkt) if ptype == codec.BINARY_EVENT else self._ack(pkt)
        self._partial = pkt
        self._binary_size = 0
        return None

    def _connect(self, namespace: str, auth: Any) -> ProtocolEvent:
        if auth is not None and not isinstance(auth, dict):
            return self._violation("CONNECT auth payload is not an object")
        if namespace in self._namespaces:
            return self._violation(f"duplicate CONNECT for namespace {namespace!r}")
        self._namespaces[namespace] = NamespaceState.CONNECTING
        return ConnectRequested(namespace, auth)

    def _event(self, pkt: Packet) -> ProtocolEvent:
        data = pkt.data
        if not isinstance(data, list) or not data:
            return self._violation("EVENT payload is not a non-empty array")
        name = data[0]
        if isinstance(name, bool) or not isinstance(name, str | int | float):
            return self._violation("EVENT name is not a string or number")
        if name in RESERVED_EVENTS:
            return self._violation(f"reserved event name {name!r}")
        return EventReceived(pkt.namespace, name, data[1:], pkt.id)

    def _ack(self, pkt: Packet) -> ProtocolEvent | None:
        if pkt.id is None or not isinstance(pkt.data, list):
            return self._violation("ACK without id or array payload")
        token = self._acks.pop((pkt.namespace, pkt.id), None) if self._acks else None
        if token is None:
            return None  # unknown, expired or already answered: ignored, as the reference server does
        return AckReceived(pkt.namespace, pkt.id, pkt.data, token)

    def _violation(self, reason: str) -> ProtocolViolation:
        self.close()
        return ProtocolViolation(reason)

    # -- output ------------------------------------------------------------------------------------------

    def accept(self, namespace: str, sid: str, *, pid: str | None = None) -> list[EngineMessage]:
        """CONNECTING -> CONNECTED; the CONNECT reply. ``pid`` is for connection state recovery (unused)."""
        if self._namespaces.get(namespace) is not NamespaceState.CONNECTING:
            raise ValueError(f"namespace {namespace!r} is not connecting")
        self._namespaces[namespace] = NamespaceState.CONNECTED
        payload: dict[str, Any] = {"sid": sid}
        if pid is not None:
            payload["pid"] = pid
        return codec.encode_connect(self.packet_class, namespace, payload)

    def refuse(self, namespace: str, message: str, data: Any = None) -> list[EngineMessage]:
        """The connection to ``namespace`` is refused: CONNECT_ERROR ``{"message"[, "data"]}``."""
        if self._namespaces.get(namespace) is NamespaceState.CONNECTING:
            del self._namespaces[namespace]
        payload: dict[str, Any] = {"message": message}
        if data is not None:
            payload["data"] = data
        return codec.encode_connect_error(self.packet_class, namespace, payload)

    def leave(self, namespace: str, data: Any = None) -> list[EngineMessage]:
        """The server disconnects the client from ``namespace``: DISCONNECT (empty if it was not there)."""
        if self._namespaces.pop(namespace, None) is None:
            return []
        return codec.encode_disconnect(self.packet_class, namespace, data)

    def event(
        self, namespace: str, event: str | int, args: list[Any], *, ack_token: object = None
    ) -> list[EngineMessage]:
        """An EVENT for this connection; with ``ack_token`` it asks for an ACK (raises ``AckLimitError``
        when ``max_pending_acks`` are outstanding) and a later ``AckReceived`` carries the token back."""
        if ack_token is None:
            return codec.encode_event(self.packet_class, namespace, event, args)
        ack_id = self.register_ack(namespace, ack_token)
        return codec.encode_event(self.packet_class, namespace, event, args, ack_id)

    def register_ack(self, namespace: str, token: object) -> int:
        if self._acks is None:
            self._acks = {}
        elif len(self._acks) >= self.max_pending_acks:
            raise AckLimitError(f"{self.max_pending_acks} acknowledgements already pending")
        ack_id = self._next_ack_id
        self._next_ack_id += 1
        self._acks[(namespace, ack_id)] = token
        return ack_id

    def forget_ack(self, namespace: str, ack_id: int) -> object | None:
        """Stop waiting for ``ack_id`` (timed out); returns its token if it was still pending."""
        return self._acks.pop((namespace, ack_id), None) if self._acks else None

    def drain_acks(self, namespace: str | None = None) -> list[object]:
        """Remove and return the pending ack tokens (of one namespace, or all). The caller does this when
        a namespace ends (``NamespaceLeft``, ``leave``) or the connection closes, and fails their waiters."""
        if not self._acks:
            return []
        keys = [k for k in self._acks if namespace is None or k[0] == namespace]
        return [self._acks.pop(k) for k in keys]

    def ack(self, namespace: str, ack_id: int, args: list[Any]) -> list[EngineMessage]:
        """The ACK for the client's packet ``ack_id``."""
        return codec.encode_ack(self.packet_class, namespace, ack_id, args)
