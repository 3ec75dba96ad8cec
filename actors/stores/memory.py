"""A store that keeps everything in this process's memory, for tests and throwaway servers.

Owns: ``MemoryStore``. It follows the ``Store`` contract exactly as ``SqliteStore`` does (same errors, same
validation, snapshots and events round-tripped through JSON so a test sees what a durable store would give
back), without any I/O and without durability: everything is gone when the process ends. Knows nothing of
actors or the network.
"""

from __future__ import annotations

import json
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import trio

from actors.events import StoredEvent
from actors.stores._json import dumps
from actors.stores.base import EventIdConflict, SessionRecord, StoreError

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Session:
    owner: str | None
    created_at: float
    snapshot_text: str | None = None
    snapshot_event_id: int = -1
    events: list[StoredEvent] = field(default_factory=list)  # events[i].id == i: logs start at 0

    @property
    def last_event_id(self) -> int:
        return len(self.events) - 1


class MemoryStore:
    """``Store`` in a dict. ``commits`` counts write operations (each is its own "transaction")."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._state = "new"
        self.commits = 0

    def __repr__(self) -> str:
        return f"MemoryStore(sessions={len(self._sessions)}, state={self._state})"

    async def open(self) -> None:
        if self._state != "new":
            raise StoreError(f"{self!r} cannot be opened twice")
        self._state = "open"
        await trio.lowlevel.checkpoint()

    async def close(self) -> None:
        self._state = "closed"
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> MemoryStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def load(self, session_id: str) -> SessionRecord | None:
        await self._enter()
        session = self._sessions.get(session_id)
        return None if session is None else self._record(session_id, session, with_snapshot=True)

    async def load_with_events(
        self, session_id: str, limit: int
    ) -> tuple[SessionRecord | None, list[StoredEvent]]:
        """Rehydration in one call: the record and up to ``limit`` events after its snapshot_event_id."""
        record = await self.load(session_id)
        if record is None:
            return None, []
        return record, await self.events_after(session_id, record.snapshot_event_id, limit)

    async def create(self, session_id: str, owner: str | None) -> SessionRecord:
        await self._enter()
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session(owner, time.time())
            self.commits += 1
        return self._record(session_id, session, with_snapshot=True)

    async def append(
        self, session_id: str, events: list[StoredEvent], *, fence: int | None = None
    ) -> None:
        del fence  # one node: any fence is the current one
        await self._enter()
        if not events:
            return
        first = events[0].id
        for offset, event in enumerate(events):
            if event.id != first + offset:
                raise EventIdConflict(
                    f"session {session_id!r}: appended ids must be consecutive, got "
                    f"{[e.id for e in events][:10]}"
                )
        session = self._sessions.get(session_id)
        if session is None:
            raise StoreError(f"session {session_id!r} does not exist: create it before appending")
        if first != session.last_event_id + 1:
            raise EventIdConflict(
                f"session {session_id!r}: events {first}..{events[-1].id} do not continue the log, "
                f"whose last event id is {session.last_event_id}"
            )
        for event in events:
            text = event.json_text or dumps(event.payload)
            session.events.append(StoredEvent.from_json(event.id, text))
        self.commits += 1

    async def events_after(self, session_id: str, after_id: int, limit: int) -> list[StoredEvent]:
        await self._enter()
        session = self._sessions.get(session_id)
        if session is None or limit <= 0:
            return []
        start = max(after_id + 1, 0)
        return session.events[start : start + limit]

    async def save_snapshot(self, session_id: str, snapshot: dict[str, Any], event_id: int) -> None:
        await self._enter()
        try:
            text = dumps(snapshot)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"session {session_id!r}: snapshot is not JSON-serializable: {exc}") from exc
        session = self._sessions.get(session_id)
        if session is None:
            raise StoreError(f"session {session_id!r} does not exist: cannot save its snapshot")
        if not -1 <= event_id <= session.last_event_id:
            raise StoreError(
                f"session {session_id!r}: a snapshot cannot cover event {event_id}, the log ends at "
                f"{session.last_event_id}"
            )
        session.snapshot_text = text
        session.snapshot_event_id = event_id
        self.commits += 1

    async def list_sessions(self, *, after: str | None = None, limit: int = 100) -> list[SessionRecord]:
        await self._enter()
        if limit <= 0:
            return []
        ids = sorted(self._sessions)
        start = 0 if after is None else bisect_right(ids, after)
        return [
            self._record(sid, self._sessions[sid], with_snapshot=False) for sid in ids[start : start + limit]
        ]

    async def count_sessions(self) -> int:
        await self._enter()
        return len(self._sessions)

    async def delete(self, session_id: str) -> None:
        await self._enter()
        if self._sessions.pop(session_id, None) is not None:
            self.commits += 1

    async def _enter(self) -> None:
        if self._state != "open":
            raise StoreError(f"{self!r} is not open")
        await trio.lowlevel.checkpoint()

    @staticmethod
    def _record(session_id: str, session: _Session, *, with_snapshot: bool) -> SessionRecord:
        snapshot = None
        if with_snapshot and session.snapshot_text is not None:
            snapshot = json.loads(session.snapshot_text)
        return SessionRecord(
            session_id=session_id,
            owner=session.owner,
            created_at=session.created_at,
            last_event_id=session.last_event_id,
            snapshot=snapshot,
            snapshot_event_id=session.snapshot_event_id,
        )
