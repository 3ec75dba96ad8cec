"""Instrumentation hooks of the Socket.IO server: what an observer (``/metrics``, the Admin UI) is told.

Owns: ``Instrumentation``, the interface of an observer, with a no-op default for every hook (implement
only the ones you need), and ``Handshake``, what a ``socket_connected`` hook learns of the connection.
Register an observer with ``Server.add_instrumentation(obj)``. With none registered the server pays one
falsy check per place, nothing else: no call, no allocation.

``event_received`` and ``event_sent`` run on the per-event hot path, so the server calls them only on
observers whose class overrides them; an observer that just counts events reads the server's own plain
counters instead (``EventCounts``: an observer with an ``attached(counts)`` method is handed them once,
when it is registered).

Hooks are called synchronously in the task that did the work (a reader, a handler, an emitter): they must
not block and should be O(1). An exception in a hook is logged and never reaches the server.
``event_sent`` fires once per emit call (``target`` is the sid, room or rooms emitted to, None for the
whole namespace), and once per ``send_packet_nowait`` to a sid. Knows nothing of trio, HTTP or packets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

Target = str | Iterable[str] | None


@dataclass(frozen=True, slots=True)
class Handshake:
    """The connection a namespace sid arrived on (the Admin UI's ``handshake``)."""

    eio_sid: str  # the Engine.IO connection's sid
    address: str  # the peer's address
    headers: Mapping[str, str]  # ``HTTP_*`` keys of the environ, as python-socketio gives them
    query: str  # the raw query string
    url: str  # the request target
    auth: Any  # the CONNECT packet's auth payload
    time: float  # wall clock (``time.time()``) of the namespace connect


class EventCounts(Protocol):
    """The server's own event counters: plain ints, incremented whether or not anyone observes."""

    events_received: int  # events from connected sids, before their handlers ran
    events_sent: int  # emit calls that reached someone, plus ``send_packet_nowait`` calls to a sid


class Instrumentation(Protocol):
    """An observer of the server. Every hook has a no-op default: subclass and override what you need."""

    def socket_connected(self, sid: str, namespace: str, handshake: Handshake) -> None:
        """A sid connected to a namespace (its CONNECT reply went out)."""
        return None

    def socket_disconnected(self, sid: str, namespace: str, reason: str) -> None:
        """A connected sid left its namespace (``reason``: a ``DisconnectReason`` value)."""
        return None

    def event_received(self, sid: str, namespace: str, event: Any, args: list[Any]) -> None:
        """An event from a connected sid, before its handler runs."""
        return None

    def event_sent(self, target: Target, namespace: str, event: Any, args: Any) -> None:
        """An event emitted (``args``: the emitted data as given, also for a pre-encoded one; its JSON text
        only when it was given without its data)."""
        return None

    def room_joined(self, sid: str, namespace: str, room: str) -> None:
        return None

    def room_left(self, sid: str, namespace: str, room: str) -> None:
        return None

    def engine_connected(self, eio_sid: str, transport: str) -> None:
        """An Engine.IO connection opened (``transport``: "polling" or "websocket")."""
        return None

    def engine_disconnected(self, eio_sid: str, reason: str) -> None:
        """An Engine.IO connection closed (``reason``: the Engine.IO close reason)."""
        return None

    def transport_upgraded(self, eio_sid: str, transport: str) -> None:
        """A polling connection upgraded (``transport``: the new one, "websocket")."""
        return None
