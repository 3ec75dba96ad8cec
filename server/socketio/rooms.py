"""Rooms: which sids an emit reaches.

Owns: per namespace, the set of sids connected (or connecting) to it and the named rooms they entered; per
sid, the rooms it is in. Every sid is implicitly in the room named by itself: that room costs nothing (no
set is created for it), and the per-sid room set exists only once the sid enters another room. An emit
costs O(recipients).

Knows nothing of packets, sockets or trio: sids and room names are plain strings.
"""

from __future__ import annotations

from collections.abc import Iterable

Rooms = str | Iterable[str] | None


def _as_set(value: Rooms) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    return set(value)


class RoomIndex:
    __slots__ = ("_members", "_rooms", "_sid_rooms")

    def __init__(self) -> None:
        self._members: dict[str, set[str]] = {}  # namespace -> sids
        self._rooms: dict[str, dict[str, set[str]]] = {}  # namespace -> room -> sids (named rooms only)
        self._sid_rooms: dict[str, set[str]] = {}  # sid -> named rooms (only once it entered one)

    def add_socket(self, namespace: str, sid: str) -> None:
        self._members.setdefault(namespace, set()).add(sid)

    def remove_socket(self, namespace: str, sid: str) -> None:
        """The sid leaves the namespace and every room it was in."""
        for room in self._sid_rooms.pop(sid, ()):
            self._discard(namespace, room, sid)
        members = self._members.get(namespace)
        if members is not None:
            members.discard(sid)
            if not members:
                del self._members[namespace]

    def has_socket(self, namespace: str, sid: str) -> bool:
        return sid in self._members.get(namespace, ())

    def enter(self, namespace: str, sid: str, room: str) -> None:
        if room == sid:
            return  # implicit
        self._rooms.setdefault(namespace, {}).setdefault(room, set()).add(sid)
        self._sid_rooms.setdefault(sid, set()).add(room)

    def leave(self, namespace: str, sid: str, room: str) -> None:
        rooms = self._sid_rooms.get(sid)
        if rooms is None or room not in rooms:
            return
        rooms.discard(room)
        if not rooms:
            del self._sid_rooms[sid]
        self._discard(namespace, room, sid)

    def close_room(self, namespace: str, room: str) -> None:
        """Every sid leaves ``room``."""
        for sid in list(self._rooms.get(namespace, {}).get(room, ())):
            self.leave(namespace, sid, room)

    def rooms_of(self, namespace: str, sid: str) -> list[str]:
        """The rooms of ``sid``, its own first; empty if it is not in the namespace."""
        if not self.has_socket(namespace, sid):
            return []
        return [sid, *sorted(self._sid_rooms.get(sid, ()))]

    def members(self, namespace: str, room: str) -> set[str]:
        named = self._rooms.get(namespace, {}).get(room)
        own = room in self._members.get(namespace, ())
        if named is None:
            return {room} if own else set()
        return (named | {room}) if own else set(named)

    def recipients(self, namespace: str, to: Rooms = None, skip: Rooms = None) -> list[str]:
        """The sids an emit to ``to`` (None: the whole namespace; a room; several rooms) reaches, minus
        ``skip`` (a sid or several)."""
        if to is None:
            found = self._members.get(namespace, set())
        elif isinstance(to, str):
            found = self.members(namespace, to)
        else:
            found = set()
            for room in to:
                found |= self.members(namespace, room)
        skipped = _as_set(skip)
        if skipped:
            return [sid for sid in found if sid not in skipped]
        return list(found)

    def _discard(self, namespace: str, room: str, sid: str) -> None:
        rooms = self._rooms.get(namespace)
        if rooms is None:
            return
        members = rooms.get(room)
        if members is None:
            return
        members.discard(sid)
        if not members:
            del rooms[room]
            if not rooms:
                del self._rooms[namespace]
