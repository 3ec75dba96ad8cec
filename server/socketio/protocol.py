"""The Socket.IO v5 protocol of one Engine.IO connection, sans-IO, for either end of it.

Owns: everything that decides what the peer's Engine.IO message means and what goes back, for one
connection: which namespaces are joined, binary attachment reassembly, ack ids, the connect timeout rule
and every "close the whole connection" rule. Feed it messages with ``receive``; it returns at most one
``ProtocolEvent`` for the application and never awaits. Outgoing packets are built by its methods as lists
of Engine.IO messages that the caller sends in order.

Knows nothing of trio, engine sockets, handlers, rooms or sids' meaning (the caller picks the sid).

Roles (``role=``, as h11's ``our_role``; the server role is the default and its event path has no role
test): decoding, binary reassembly, EVENT / ACK / DISCONNECT handling and the violation rules are one code
for both ends. What differs is what the protocol makes differ: the client sends CONNECT (``connect``) and
receives the reply (``NamespaceConnected`` / ``NamespaceRefused``), the server receives CONNECT
(``ConnectRequested``) and replies (``accept`` / ``refuse``); the server's core allocates the ids of the
acks it asks for and matches the answers (``event(..., ack_token=)``, ``register_ack``), while a client
picks its own ids (``codec.encode_event(..., ack_id)``) and gets every ACK back (``token`` None) to match;
the server refuses reserved event names from a client, a client takes any name; a client drops packets
for a namespace it has just left (the server may still be sending), the server treats them as violations.

Theory of operation -- each namespace of the connection is in one state, and these are all transitions:

| role   | namespace state | on | goes to | output |
|---|---|---|---|---|
| server | (absent) | client CONNECT, auth an object or absent | CONNECTING | ``ConnectRequested`` |
| server | (absent) | ``refuse`` (application: unknown namespace) | (absent) | CONNECT_ERROR |
| server | CONNECTING | ``accept(sid)`` | CONNECTED | CONNECT ``{"sid": sid}`` |
| server | CONNECTING | ``refuse(message, data)`` | (absent) | CONNECT_ERROR ``{"message", "data"?}`` |
| client | (absent) | ``connect(auth)`` | CONNECTING | CONNECT ``{auth}`` |
| client | CONNECTING | server CONNECT ``{"sid"}`` | CONNECTED | ``NamespaceConnected`` |
| client | CONNECTING | server CONNECT_ERROR | (absent) | ``NamespaceRefused`` |
| both | CONNECTED | peer EVENT / BINARY_EVENT (complete, valid) | CONNECTED | ``EventReceived`` |
| both | CONNECTED | peer ACK / BINARY_ACK (server: for a pending id) | CONNECTED | ``AckReceived`` |
| both | CONNECTED | peer DISCONNECT | (absent; client: left) | ``NamespaceLeft`` |
| both | CONNECTED or CONNECTING | ``leave()`` | (absent; client: left) | DISCONNECT |

and for the connection as a whole, each of these closes it at once (``ProtocolViolation``, then every later
``receive`` returns None): an undecodable message, an unknown packet type, a CONNECT_ERROR from a client or a
CONNECT whose auth is not an object, a CONNECT for a namespace already connecting or connected (server), a
CONNECT reply or CONNECT_ERROR for a namespace that is not connecting (client), any other packet for a
namespace that is not CONNECTED (the client ignores those for a namespace it left), an invalid EVENT
payload (not a non-empty array whose first item is a string or number, or, from a client, a reserved event
name), an ACK without id or array, too many or too large binary attachments, a text message while
attachments are awaited or a binary message when none is. The connect timeout (server): at
``connect_deadline`` the caller asks ``connect_timed_out()``; true when no namespace is connecting or
connected then (the rule of the reference server), and the caller closes the connection.

Connection state recovery is not implemented; its hook is ``accept(..., pid=...)``, which adds the private
id to the CONNECT reply, and the caller's emit path is where offsets would be appended to stored events.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from socketio.packet import Packet

from server.engineio.protocol import Role
from server.socketio import codec
from server.socketio.codec import EngineMessage
from server.socketio.errors import AckLimitError

#: Event names a client may not send (socket.io's ``RESERVED_EVENTS``).
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)


class NamespaceState(enum.Enum):
    CONNECTING = "connecting"  # server: CONNECT received, the application decides; client: CONNECT sent
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    """Server role: the client asks to join ``namespace``; answer with ``accept`` or ``refuse``."""

    namespace: str
    auth: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class NamespaceConnected:
    """Client role: the server accepted ``namespace`` (CONNECT ``{"sid": ...}``)."""

    namespace: str
    sid: str | None


@dataclass(frozen=True, slots=True)
class NamespaceRefused:
    """Client role: CONNECT_ERROR ``44[/nsp,]{"message":..., "data":...}`` (or a bare string)."""

    namespace: str
    message: str
    data: Any


@dataclass(frozen=True, slots=True)
class EventReceived:
    namespace: str
    event: str | int | float
    args: list[Any]
    ack_id: int | None  # the peer wants an ACK with this id


@dataclass(frozen=True, slots=True)
class AckReceived:
    namespace: str
    ack_id: int
    args: list[Any]
    token: object = None  # server: what the caller registered with ``event(..., ack_token=...)``


@dataclass(frozen=True, slots=True)
class NamespaceLeft:
    """The peer sent DISCONNECT for ``namespace``."""

    namespace: str


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer broke the protocol: close the whole connection now."""

    reason: str


ProtocolEvent = (
    ConnectRequested
    | NamespaceConnected
    | NamespaceRefused
    | EventReceived
    | AckReceived
    | NamespaceLeft
    | ProtocolViolation
)


class SocketIOProtocol:
    """Socket.IO state of one Engine.IO connection. See the module docstring for the rules."""

    __slots__ = (
        "_acks",
        "_binary_size",
        "_closed",
        "_left",
        "_namespaces",
        "_next_ack_id",
        "_partial",
        "connect_deadline",
        "max_attachments",
        "max_binary_size",
        "max_pending_acks",
        "packet_class",
        "role",
    )

    def __init__(
        self,
        packet_class: type[Packet] = Packet,
        *,
        connect_deadline: float = float("inf"),
        max_attachments: int = 10,
        max_binary_size: int = 16 * 1024 * 1024,
        max_pending_acks: int = 256,
        role: Role = Role.SERVER,
    ) -> None:
        self.packet_class = packet_class
        self.role = role
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
        self._left: set[str] | None = None  # client role: namespaces left, whose late packets are dropped

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
        """Server role: ask at ``connect_deadline``: True means close the connection (no namespace joined
        or joining)."""
        return not self._closed and not self._namespaces

    @property
    def pending_acks(self) -> int:
        return len(self._acks) if self._acks else 0

    # -- input -------------------------------------------------------------------------------------------

    def receive(self, message: EngineMessage) -> ProtocolEvent | None:
        """One Engine.IO message from the peer in; at most one event for the application out."""
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
            if self.role is Role.SERVER:
                return self._connect(namespace, pkt.data)
            return self._connect_reply(namespace, pkt.data)
        if ptype == codec.CONNECT_ERROR:
            if self.role is Role.SERVER:
                return self._violation("CONNECT_ERROR from the client")
            return self._connect_error(namespace, pkt.data)
        if ptype not in (codec.DISCONNECT, codec.EVENT, codec.ACK, codec.BINARY_EVENT, codec.BINARY_ACK):
            return self._violation(f"unknown packet type {ptype}")
        if self._namespaces.get(namespace) is not NamespaceState.CONNECTED:
            if self._left is not None and namespace in self._left:
                return None  # client role: the server may still be sending to a namespace we have left
            return self._violation(f"packet for namespace {namespace!r} which is not connected")
        if ptype == codec.DISCONNECT:
            self._remove(namespace)
            return NamespaceLeft(namespace)
        if ptype == codec.EVENT:
            return self._event(pkt)
        if ptype == codec.ACK:
            return self._ack(pkt)
        # BINARY_EVENT / BINARY_ACK header: attachments follow as binary messages.
        if count > self.max_attachments:
            return self._violation(f"too many binary attachments ({count})")
        if count == 0:
            try:
                pkt.data = pkt.reconstruct_binary(pkt.data, [])
            except Exception as exc:  # a placeholder with no attachment to stand for
                return self._violation(f"bad binary attachment: {exc}")
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

    def _connect_reply(self, namespace: str, data: Any) -> ProtocolEvent:
        # Client role: the server's answer to our CONNECT.
        if self._namespaces.get(namespace) is not NamespaceState.CONNECTING:
            return self._violation(f"CONNECT for namespace {namespace!r} that was not requested")
        self._namespaces[namespace] = NamespaceState.CONNECTED
        sid = data.get("sid") if isinstance(data, dict) else None
        return NamespaceConnected(namespace, sid if isinstance(sid, str) else None)

    def _connect_error(self, namespace: str, data: Any) -> ProtocolEvent:
        # Client role: the server refused our CONNECT.
        if self._namespaces.get(namespace) is not NamespaceState.CONNECTING:
            return self._violation(f"CONNECT_ERROR for namespace {namespace!r} that was not requested")
        del self._namespaces[namespace]
        if isinstance(data, dict):
            return NamespaceRefused(namespace, str(data.get("message", "")), data.get("data"))
        # python-socketio refuses unknown namespaces with a bare string
        return NamespaceRefused(namespace, str(data or "Connection refused"), None)

    def _event(self, pkt: Packet) -> ProtocolEvent:
        data = pkt.data
        if not isinstance(data, list) or not data:
            return self._violation("EVENT payload is not a non-empty array")
        name = data[0]
        if isinstance(name, bool) or not isinstance(name, str | int | float):
            return self._violation("EVENT name is not a string or number")
        if name in RESERVED_EVENTS and self.role is Role.SERVER:
            return self._violation(f"reserved event name {name!r}")
        return EventReceived(pkt.namespace, name, data[1:], pkt.id)

    def _ack(self, pkt: Packet) -> ProtocolEvent | None:
        if pkt.id is None or not isinstance(pkt.data, list):
            return self._violation("ACK without id or array payload")
        token = self._acks.pop((pkt.namespace, pkt.id), None) if self._acks else None
        if token is None and self.role is Role.SERVER:
            return None  # unknown, expired or already answered: ignored, as the reference server does
        # (a client picked the id itself and matches the answer)
        return AckReceived(pkt.namespace, pkt.id, pkt.data, token)

    def _remove(self, namespace: str) -> None:
        del self._namespaces[namespace]
        if self.role is Role.CLIENT:
            if self._left is None:
                self._left = set()
            self._left.add(namespace)

    def _violation(self, reason: str) -> ProtocolViolation:
        self.close()
        return ProtocolViolation(reason)

    # -- output ------------------------------------------------------------------------------------------

    def connect(self, namespace: str = "/", auth: Mapping[str, Any] | None = None) -> list[EngineMessage]:
        """Client role: (absent) -> CONNECTING; CONNECT ``0[/nsp,][{auth}]``."""
        self._require_role(Role.CLIENT)
        if auth is not None and not isinstance(auth, Mapping):
            raise TypeError(f"auth must be a mapping, got {type(auth).__name__}")
        if namespace in self._namespaces:
            raise ValueError(f"namespace {namespace!r} is already {self._namespaces[namespace].value}")
        self._namespaces[namespace] = NamespaceState.CONNECTING
        if self._left is not None:
            self._left.discard(namespace)
        return codec.encode_connect(self.packet_class, namespace, dict(auth) if auth else None)

    def accept(self, namespace: str, sid: str, *, pid: str | None = None) -> list[EngineMessage]:
        """Server role: CONNECTING -> CONNECTED; the CONNECT reply. ``pid`` is for connection state
        recovery (unused)."""
        self._require_role(Role.SERVER)
        if self._namespaces.get(namespace) is not NamespaceState.CONNECTING:
            raise ValueError(f"namespace {namespace!r} is not connecting")
        self._namespaces[namespace] = NamespaceState.CONNECTED
        payload: dict[str, Any] = {"sid": sid}
        if pid is not None:
            payload["pid"] = pid
        return codec.encode_connect(self.packet_class, namespace, payload)

    def refuse(self, namespace: str, message: str, data: Any = None) -> list[EngineMessage]:
        """Server role: the connection to ``namespace`` is refused: CONNECT_ERROR
        ``{"message"[, "data"]}``."""
        self._require_role(Role.SERVER)
        if self._namespaces.get(namespace) is NamespaceState.CONNECTING:
            del self._namespaces[namespace]
        payload: dict[str, Any] = {"message": message}
        if data is not None:
            payload["data"] = data
        return codec.encode_connect_error(self.packet_class, namespace, payload)

    def leave(self, namespace: str, data: Any = None) -> list[EngineMessage]:
        """We leave ``namespace`` (the server disconnects the client, or the client disconnects):
        DISCONNECT (empty if it was not there)."""
        if namespace not in self._namespaces:
            return []
        self._remove(namespace)
        return codec.encode_disconnect(self.packet_class, namespace, data)

    def event(
        self, namespace: str, event: str | int, args: list[Any], *, ack_token: object = None
    ) -> list[EngineMessage]:
        """An EVENT for the peer; with ``ack_token`` it asks for an ACK (raises ``AckLimitError`` when
        ``max_pending_acks`` are outstanding) and a later ``AckReceived`` carries the token back."""
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
        """The ACK for the peer's packet ``ack_id``."""
        return codec.encode_ack(self.packet_class, namespace, ack_id, args)

    def _require_role(self, role: Role) -> None:
        if self.role is not role:
            raise ValueError(f"only the {role.value} role sends this packet; this is the {self.role.value}")
