"""What the Socket.IO Admin UI is told, learned from the server's instrumentation hooks.

Owns: ``AdminObserver``, an observer with the hook names of ``server.socketio.instrument``
(``socket_connected``, ``socket_disconnected``, ``event_received``, ``event_sent``, ``room_joined``,
``room_left``, ``engine_connected``, ``engine_disconnected``, ``transport_upgraded``). It keeps the
sockets table the UI needs (``all_sockets``: SerializedSocket dicts with the fields without which the UI's
views crash), Engine.IO client counts, and the aggregated-events buffer drained by each ``server_stats``;
in development mode it forwards each hook as the UI's event (ISO timestamps) to ``sink``. Bounded: the
aggregated buffer has one slot per (second, type) and is capped; forwarded events have a per-second
budget (the excess is dropped and counted) and a broadcast reports at most ``max_recipients`` sockets. The
admin namespace's own events are never forwarded as user events. Every hook is O(1) (a broadcast's
expansion is capped); while no admin is watching, the hooks only keep the sockets table (connect,
disconnect, rooms, transports) and count (a broadcast as one packet). Knows nothing of trio,
sockets or HTTP: ``sink`` and ``clock`` are plain callables.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Sink = Callable[[str, tuple[Any, ...]], None]

MAX_AGGREGATE_SLOTS = 4096
DEFAULT_EVENT_BUDGET = 1000  # forwarded events per second, all admins together (one emit reaches all)
DEFAULT_MAX_RECIPIENTS = 100


def iso(ts: float) -> str:
    """``2026-11-25T15:25:22.588Z``, as Node serialises a Date."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


@dataclass(slots=True)
class SocketRecord:
    sid: str
    nsp: str
    eio_sid: str
    handshake: dict[str, Any]
    rooms: list[str]
    data: dict[str, Any] = field(default_factory=dict)

    def serialize(self, transport: str) -> dict[str, Any]:
        return {
            "id": self.sid, "clientId": self.eio_sid, "transport": transport, "nsp": self.nsp,
            "data": self.data, "handshake": self.handshake, "rooms": list(self.rooms),
        }


def serialize_handshake(handshake: Any) -> dict[str, Any]:
    """The UI's handshake object from the hook's ``Handshake`` (headers and query as objects, ``issued``
    in ms: the UI's views crash without them)."""
    headers: dict[str, str] = {}
    for key, value in dict(getattr(handshake, "headers", {}) or {}).items():
        name = key[5:] if key.startswith("HTTP_") else key
        headers[name.lower().replace("_", "-")] = str(value)
    query: dict[str, str] = {}
    for pair in str(getattr(handshake, "query", "") or "").split("&"):
        if pair:
            k, _, v = pair.partition("=")
            query.setdefault(k, v)
    issued = float(getattr(handshake, "time", 0.0) or time.time())
    address = headers.get("cf-connecting-ip") or (headers.get("x-forwarded-for") or "").split(",")[0].strip()
    return {
        "address": address or str(getattr(handshake, "address", "")),
        "headers": headers,
        "query": query,
        "issued": int(issued * 1000),
        "secure": headers.get("x-forwarded-proto", "") == "https",
        "time": datetime.fromtimestamp(issued, UTC).strftime("%a %b %d %Y %H:%M:%S GMT+0000"),
        "url": str(getattr(handshake, "url", "")),
        "xdomain": "origin" in headers,
    }


class AdminObserver:
    """Register with ``sio.add_instrumentation(observer)``; ``sink(event, args)`` reaches the admins."""

    def __init__(
        self,
        *,
        admin_namespace: str = "/admin",
        development: bool = True,
        sink: Sink | None = None,
        clock: Callable[[], float] = time.time,
        event_budget: int = DEFAULT_EVENT_BUDGET,
        max_recipients: int = DEFAULT_MAX_RECIPIENTS,
    ) -> None:
        self.admin_namespace = admin_namespace
        self.development = development
        self.sink = sink
        self.watching = False  # set while at least one admin is connected
        self._clock = clock
        self._budget = event_budget
        self._max_recipients = max_recipients
        self.sockets: dict[str, SocketRecord] = {}
        self._by_eio: dict[str, set[str]] = {}
        self.transports: dict[str, str] = {}  # eio sid -> "polling" | "websocket"
        self._aggregate: dict[tuple[int, str, str | None], int] = {}
        self._window = 0
        self._window_used = 0
        self.dropped = 0

    # ---- reading (the namespace) ----------------------------------------------------------------------

    def all_sockets(self) -> list[dict[str, Any]]:
        return [r.serialize(self.transports.get(r.eio_sid, "polling")) for r in self.sockets.values()]

    def namespaces(self) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        for record in self.sockets.values():
            counts[record.nsp] = counts.get(record.nsp, 0) + 1
        return [{"name": name, "socketsCount": n} for name, n in sorted(counts.items())]

    @property
    def clients_count(self) -> int:
        return len(self.transports)

    @property
    def polling_clients_count(self) -> int:
        return sum(1 for t in self.transports.values() if t == "polling")

    def drain_aggregated(self) -> list[dict[str, Any]]:
        out = []
        for (second, kind, sub), count in sorted(self._aggregate.items(), key=lambda kv: kv[0][0]):
            item: dict[str, Any] = {"timestamp": second * 1000, "type": kind, "count": count}
            if sub is not None:
                item["subType"] = sub
            out.append(item)
        self._aggregate.clear()
        return out

    def sids_matching(self, nsp: str, target: str | None) -> list[str]:
        """Sockets of ``nsp``; with ``target``, the one with that id or those in that room."""
        return [r.sid for r in self.sockets.values()
                if r.nsp == nsp and (target is None or r.sid == target or target in r.rooms)]

    def set_data(self, sid: str, data: dict[str, Any]) -> None:
        """New ``socket.data`` for a sid; the UI gets a ``socket_updated`` if it changed."""
        record = self.sockets.get(sid)
        if record is None or record.data == data:
            return
        if self._forward("socket_updated", ({"id": sid, "nsp": record.nsp, "data": data},)):
            record.data = data  # else over the budget: not told, so the next refresh tries again

    # ---- hooks ----------------------------------------------------------------------------------------

    def socket_connected(self, sid: str, namespace: str, handshake: Any) -> None:
        eio_sid = str(getattr(handshake, "eio_sid", ""))
        record = SocketRecord(sid, namespace, eio_sid, serialize_handshake(handshake), [sid])
        self.sockets[sid] = record
        self._by_eio.setdefault(eio_sid, set()).add(sid)
        transport = self.transports.get(eio_sid, "polling")
        if self._telling:
            now = self._clock()
            self._forward("socket_connected", (record.serialize(transport), iso(now)), now)

    def socket_disconnected(self, sid: str, namespace: str, reason: str) -> None:
        record = self.sockets.pop(sid, None)
        if record is None:
            return
        sids = self._by_eio.get(record.eio_sid)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._by_eio[record.eio_sid]
        if self._telling:
            now = self._clock()
            self._forward("socket_disconnected", (namespace, sid, reason, iso(now)), now)

    def room_joined(self, sid: str, namespace: str, room: str) -> None:
        record = self.sockets.get(sid)
        if record is not None and room not in record.rooms:
            record.rooms.append(room)
        if self._telling:
            now = self._clock()
            self._forward("room_joined", (namespace, room, sid, iso(now)), now)

    def room_left(self, sid: str, namespace: str, room: str) -> None:
        record = self.sockets.get(sid)
        if record is not None and room in record.rooms:
            record.rooms.remove(room)
        if self._telling:
            now = self._clock()
            self._forward("room_left", (namespace, room, sid, iso(now)), now)

    def event_received(self, sid: str, namespace: str, event: Any, args: list[Any]) -> None:
        self._count("packetsIn")
        if namespace == self.admin_namespace:
            return  # the admins' own commands are not user events
        if self._telling:
            now = self._clock()
            self._forward("event_received", (namespace, sid, [event, *_no_callbacks(args)], iso(now)), now)

    def event_sent(self, target: Any, namespace: str, event: Any, args: Any) -> None:
        if namespace == self.admin_namespace:
            return  # what we tell the admins
        if not self.watching:  # counted, but a broadcast is not expanded to its sockets (nobody looks)
            self._count("packetsOut")
            return
        recipients = self._recipients(namespace, target)
        self._count("packetsOut", n=max(1, len(recipients)))
        if not (self.development and self.watching) or not recipients:
            return
        payload = [event, *_args_list(args)]
        clock = self._clock()
        now = iso(clock)
        for sid in recipients[: self._max_recipients]:
            self._forward("event_sent", (namespace, sid, payload, now), clock)

    def engine_connected(self, eio_sid: str, transport: str) -> None:
        self.transports[eio_sid] = transport
        self._count("rawConnection")

    def engine_disconnected(self, eio_sid: str, reason: str) -> None:
        self.transports.pop(eio_sid, None)
        self._count("rawDisconnection", sub=reason)

    def transport_upgraded(self, eio_sid: str, transport: str) -> None:
        self.transports[eio_sid] = transport
        for sid in self._by_eio.get(eio_sid, ()):
            record = self.sockets.get(sid)
            if record is not None:
                self._forward("socket_updated", ({"id": sid, "nsp": record.nsp, "transport": transport},))

    # ---- internals ------------------------------------------------------------------------------------

    def _recipients(self, namespace: str, target: Any) -> list[str]:
        if target is None:
            rooms: Iterable[str] | None = None
        elif isinstance(target, str):
            if target in self.sockets:
                return [target]
            rooms = (target,)
        else:
            rooms = tuple(target)
        out: list[str] = []
        for record in self.sockets.values():
            if record.nsp == namespace and (rooms is None or any(r in record.rooms for r in rooms)):
                out.append(record.sid)
                if len(out) > self._max_recipients:
                    break
        return out

    def _count(self, kind: str, *, sub: str | None = None, n: int = 1) -> None:
        key = (math.floor(self._clock()), kind, sub)
        if key not in self._aggregate and len(self._aggregate) >= MAX_AGGREGATE_SLOTS:
            return
        self._aggregate[key] = self._aggregate.get(key, 0) + n

    @property
    def _telling(self) -> bool:
        """Whether notices go out at all (development mode, an admin watching)."""
        return self.development and self.watching and self.sink is not None

    def _forward(self, event: str, args: tuple[Any, ...], now: float | None = None) -> bool:
        """To the admins, within the budget of the second ``now`` (the notice's own timestamp) is in.
        False only when dropped for the budget (nobody to tell counts as done)."""
        if self.sink is None or not (self.development and self.watching):
            return True
        second = math.floor(self._clock() if now is None else now)
        if second != self._window:
            self._window, self._window_used = second, 0
        if self._window_used >= self._budget:
            self.dropped += 1
            return False
        self._window_used += 1
        self.sink(event, args)
        return True


def _args_list(args: Any) -> list[Any]:
    # python-socketio's convention: a tuple is several arguments, anything else (a list too) is one.
    if isinstance(args, tuple):
        return list(args)
    return [] if args is None else [args]


def _no_callbacks(args: list[Any]) -> list[Any]:
    return [a for a in args if not callable(a)]
