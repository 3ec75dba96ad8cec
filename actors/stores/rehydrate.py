"""Reading what a session needs to come back to life, in as few store round trips as the backend allows.

Owns: ``load_with_events`` and the optional ``SupportsLoadWithEvents`` capability. Not part of the ``Store``
protocol, so a store (or a test fake) without the capability still works: the helper falls back to
``load`` + ``events_after``. MemoryStore and SqliteStore have it; on SQLite it is one worker-thread hop and
one read transaction instead of two, which is what bounds the rehydrations per second of a single caller.
Knows nothing of actors.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from actors.events import StoredEvent
from actors.stores.base import SessionRecord, Store

__all__ = ["SupportsLoadWithEvents", "load_with_events"]


@runtime_checkable
class SupportsLoadWithEvents(Protocol):
    async def load_with_events(
        self, session_id: str, limit: int
    ) -> tuple[SessionRecord | None, list[StoredEvent]]: ...


async def load_with_events(
    store: Store, session_id: str, limit: int
) -> tuple[SessionRecord | None, list[StoredEvent]]:
    """The session's record (None if absent) and up to ``limit`` events after its snapshot_event_id."""
    if isinstance(store, SupportsLoadWithEvents):
        return await store.load_with_events(session_id, limit)
    record = await store.load(session_id)
    if record is None:
        return None, []
    return record, await store.events_after(session_id, record.snapshot_event_id, limit)
