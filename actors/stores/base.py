"""The store interface every backend implements (memory, SQLite, later Redis).

Owns: ``Store`` (the protocol), ``SessionRecord`` and the store errors. Knows nothing of actors' states or of
the network. Appends are durable when ``append`` returns (the actor publishes an event only after that), and
fenced by the writer's placement lease (``FencedOut``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from actors.events import StoredEvent


class StoreError(Exception):
    """A store could not do what was asked (I/O error, corrupt data, closed store)."""


class StoreUnavailable(StoreError):
    """A transient fault of the storage (an I/O error, the store's server unreachable or timing out): the
    same operation may succeed later. A local store (SQLite) stored nothing of a failed write; a remote
    one (Redis) may not know whether a write that timed out was applied, so its writer reads the log
    before writing again (``RedisStore.append_applied``) and never retries blindly."""

    may_have_applied = False
    """True when a failed write may nevertheless have been applied (a remote store's timeout): its writer
    must not carry on as if nothing happened, it reloads the truth from the store first."""


class StoreFull(StoreUnavailable):
    """The disk (or the store's memory) is full: nothing of the operation was stored; retry once space
    returns."""


class FencedOut(StoreError):
    """An append carried a fencing token that is not the current lease's: another node owns the session now.
    The writer must stop at once (it never emits again for that session)."""


class EventIdConflict(StoreError):
    """An append reused or skipped an event id: ids must continue ``last_event_id + 1, + 2, ...``."""


@dataclass(slots=True, frozen=True)
class SessionRecord:
    session_id: str
    owner: str | None  # user id that created the session; None when the server runs without auth
    created_at: float  # unix time
    last_event_id: int  # -1 when the log is empty
    snapshot: dict[str, Any] | None  # the agent's state at the last passivation, None if never saved
    snapshot_event_id: int  # the last event id the snapshot covers (-1 if none)


class Store(Protocol):
    async def open(self) -> None:
        """Prepare the backend (create or migrate schema). Called once before any other method."""

    async def close(self) -> None:
        """Flush pending writes and release resources. Idempotent."""

    async def load(self, session_id: str) -> SessionRecord | None:
        """The session's record, or None if it does not exist."""

    async def create(self, session_id: str, owner: str | None) -> SessionRecord:
        """Create an empty session (last_event_id -1). Returns the existing record if it already exists."""

    async def append(self, session_id: str, events: list[StoredEvent], *, fence: int | None = None) -> None:
        """Durably append events whose ids continue the log. Concurrent appends of many sessions share one
        commit (group commit). Raises ``EventIdConflict`` on a gap or a reused id.

        ``fence``: the writer's lease token (``actors.placement.Lease.fence``). A store that can check it
        (several nodes) raises ``FencedOut`` when it is not the current lease's; single-node stores (memory,
        SQLite) accept any fence."""

    async def events_after(self, session_id: str, after_id: int, limit: int) -> list[StoredEvent]:
        """Up to ``limit`` events with id > after_id, in id order."""

    async def save_snapshot(self, session_id: str, snapshot: dict[str, Any], event_id: int) -> None:
        """Durably store the agent snapshot covering events up to ``event_id``."""

    async def list_sessions(self, *, after: str | None = None, limit: int = 100) -> list[SessionRecord]:
        """Sessions ordered by id, after ``after`` (pagination). Snapshots may be None."""

    async def count_sessions(self) -> int:
        """How many sessions exist."""

    async def delete(self, session_id: str) -> None:
        """Remove the session, its log and snapshot. No error if absent."""
