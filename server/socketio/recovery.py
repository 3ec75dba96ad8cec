"""Connection state recovery (Node's ``connectionStateRecovery``), in memory, bounded.

Owns: ``RecoveryConfig`` (the options), ``RecoveryStore`` (the log of recent event packets with their
offsets, and the sessions of sids that went away without a clean disconnect) and ``Restored`` (what a
reconnecting client gets back). The behaviour follows socket.io-adapter's in-memory ``SessionAwareAdapter``:

- With recovery on, every event the server emits without an ack and not volatile (to a sid, a room, several
  rooms or a whole namespace) gets an offset, sent as its last argument, and is kept in the log with its
  target rooms and exclusions (binary events with their attachments). Acks and events that ask for an ack
  are never kept: an ack callback cannot outlive the connection.
- A sid that ends for a recoverable reason (transport close, transport error, ping timeout) is persisted:
  its sid, pid (the private id of the CONNECT reply), rooms and ``data`` (the python-socketio session dict).
- A CONNECT whose auth carries ``{"pid", "offset"}`` of a persisted session, within
  ``max_disconnection_duration`` and with the offset still in the log, restores it: the same sid, rooms and
  data, and every packet after the offset that the sid would have received (by rooms), once and in order.

Bounds: the log holds at most ``max_packets`` packets in all (the oldest go first; a session whose offset
fell out of it can no longer recover) and nothing older than ``max_disconnection_duration``; at most
``max_sessions`` persisted sessions (the oldest go first); a restore that would replay more than
``max_missed_packets`` packets fails (the client starts a new session) rather than flooding it.

Knows nothing of sockets, transports, handlers or trio: the caller passes ``now`` and the encoded
messages. Recovery lives in this process's memory only: a server restart forgets it (the session
protocol's ``latest_event_id`` replay from the durable log is what survives restarts; docs/protocol.md).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RECOVERABLE_REASONS = frozenset({"transport close", "transport error", "ping timeout"})


@dataclass(frozen=True, slots=True)
class RecoveryConfig:
    """``Server(connection_state_recovery={...})``; the keys are these fields (Node's names in snake case)."""

    max_disconnection_duration: float = 120.0
    """Seconds after the disconnect within which a client may recover its session (Node's default)."""
    skip_middlewares: bool = True
    """A recovered sid is connected (CONNECT reply, missed packets) before its connect handler runs, and a
    refusal by that handler then arrives as a DISCONNECT; False: the handler runs first, as for a new sid."""
    max_packets: int = 10_000
    """Event packets kept in the log, all sids and namespaces together."""
    max_missed_packets: int = 1_000
    """The most packets one restore replays; a session that missed more starts afresh."""
    max_sessions: int = 10_000
    """Disconnected sessions kept for recovery."""

    @classmethod
    def of(cls, value: RecoveryConfig | Mapping[str, Any] | bool | None) -> RecoveryConfig | None:
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, RecoveryConfig):
            return value
        return cls(**dict(value))


@dataclass(frozen=True, slots=True)
class Restored:
    sid: str
    pid: str
    rooms: tuple[str, ...]
    data: dict[str, Any] | None
    missed: tuple[Any, ...]  # the encoded messages of the missed packets, in order


@dataclass(frozen=True, slots=True)
class _Packet:
    seq: int
    namespace: str
    rooms: frozenset[str]  # empty: the whole namespace
    skip: frozenset[str]
    messages: Sequence[Any]
    at: float


@dataclass(frozen=True, slots=True)
class _Session:
    sid: str
    namespace: str
    rooms: tuple[str, ...]
    data: dict[str, Any] | None
    at: float


class RecoveryStore:
    """The packet log and the persisted sessions of one server; see the module docstring."""

    def __init__(self, config: RecoveryConfig) -> None:
        self.config = config
        self._epoch = secrets.token_hex(4)  # offsets of another server instance never match
        self._seq = 0
        self._log: deque[_Packet] = deque()
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._log)

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    @staticmethod
    def new_pid() -> str:
        return secrets.token_urlsafe(15)

    def next_offset(self) -> str:
        """The offset of the packet about to be recorded (``record`` must follow)."""
        return f"{self._epoch}-{self._seq + 1:x}"

    def record(self, namespace: str, rooms: Iterable[str], skip: Iterable[str], messages: Sequence[Any],
               now: float) -> None:
        """Keep the packet whose offset ``next_offset()`` returned, with who it was for."""
        self._seq += 1
        log = self._log
        log.append(_Packet(self._seq, namespace, frozenset(rooms), frozenset(skip), messages, now))
        while len(log) > self.config.max_packets:
            log.popleft()
        self._expire(now)

    def persist(self, pid: str, sid: str, namespace: str, rooms: Iterable[str], data: dict[str, Any] | None,
                now: float) -> None:
        sessions = self._sessions
        sessions[pid] = _Session(sid, namespace, tuple(rooms), data, now)
        sessions.move_to_end(pid)
        while len(sessions) > self.config.max_sessions:
            sessions.popitem(last=False)
        self._expire(now)

    def restore(self, namespace: str, pid: object, offset: object, now: float) -> Restored | None:
        """The persisted session ``pid`` with the packets after ``offset``, or None (unknown or expired
        session, another namespace, an offset no longer in the log, too many missed packets). A session
        is restored at most once."""
        if not isinstance(pid, str) or not isinstance(offset, str):
            return None
        self._expire(now)
        session = self._sessions.pop(pid, None)
        if session is None or session.namespace != namespace:
            return None
        seq = self._seq_of(offset)
        log = self._log
        if seq is None or not log or not log[0].seq <= seq <= log[-1].seq:
            return None
        rooms = set(session.rooms)
        missed: list[Any] = []
        for index in range(seq - log[0].seq + 1, len(log)):
            packet = log[index]
            if packet.namespace != namespace or not _included(rooms, packet):
                continue
            missed.extend(packet.messages)
            if len(missed) > self.config.max_missed_packets:
                return None
        return Restored(session.sid, pid, session.rooms, session.data, tuple(missed))

    def _seq_of(self, offset: str) -> int | None:
        epoch, _, number = offset.partition("-")
        if epoch != self._epoch:
            return None
        try:
            return int(number, 16)
        except ValueError:
            return None

    def _expire(self, now: float) -> None:
        threshold = now - self.config.max_disconnection_duration
        log = self._log
        while log and log[0].at < threshold:
            log.popleft()
        sessions = self._sessions
        while sessions:
            pid, oldest = next(iter(sessions.items()))
            if oldest.at >= threshold:
                break
            del sessions[pid]


def room_set(rooms: str | Iterable[str] | None) -> frozenset[str]:
    """A ``to=`` / ``skip_sid=`` value as a set of rooms (None: none, i.e. the whole namespace)."""
    if rooms is None:
        return frozenset()
    return frozenset((rooms,)) if isinstance(rooms, str) else frozenset(rooms)


def _included(rooms: set[str], packet: _Packet) -> bool:
    # socket.io-adapter's shouldIncludePacket: for the sid's rooms, and none of them excluded.
    return (not packet.rooms or not rooms.isdisjoint(packet.rooms)) and rooms.isdisjoint(packet.skip)
