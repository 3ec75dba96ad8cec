"""The SQLite store's operations: what runs in the writer and reader threads, one batch at a time.

Owns: the SQL statements, ``_Batch`` (one write transaction's view of the sessions' last ids) and the ops
(``_Create``, ``_Append``, ``_SaveSnapshot``, ``_Delete``; ``_Load``, ``_LoadWithEvents``, ``_EventsAfter``,
``_List``, ``_Count``), each validated inside its batch so a bad op fails alone. Their names stay private to
the store package (``actors.stores.sqlite`` is their only user; it batches and schedules them on worker
threads). Plain ``sqlite3`` code with no trio; knows nothing of actors or the network.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from actors.events import StoredEvent
from actors.stores._group import Op
from actors.stores.base import EventIdConflict, SessionRecord, StoreError

_INSERT_EVENT = "INSERT INTO events (session_id, id, json) VALUES (?, ?, ?)"
_SET_LAST = "UPDATE sessions SET last_event_id = ? WHERE session_id = ?"
_SET_SNAPSHOT = "UPDATE sessions SET snapshot = ?, snapshot_event_id = ? WHERE session_id = ?"
_SELECT_LAST = "SELECT last_event_id FROM sessions WHERE session_id = ?"
_SELECT_SESSION = (
    "SELECT session_id, owner, created_at, last_event_id, snapshot, snapshot_event_id FROM sessions "
    "WHERE session_id = ?"
)
_INSERT_SESSION = (
    "INSERT OR IGNORE INTO sessions (session_id, owner, created_at, last_event_id, snapshot_event_id) "
    "VALUES (?, ?, ?, -1, -1)"
)
_LIST_COLUMNS = "SELECT session_id, owner, created_at, last_event_id, snapshot_event_id FROM sessions"


def _record(row: tuple[Any, ...]) -> SessionRecord:
    session_id, owner, created_at, last_event_id, snapshot, snapshot_event_id = row
    return SessionRecord(
        session_id=session_id,
        owner=owner,
        created_at=created_at,
        last_event_id=last_event_id,
        snapshot=None if snapshot is None else json.loads(snapshot),
        snapshot_event_id=snapshot_event_id,
    )


# ---------------------------------------------------------------------------------------------- write ops


class _Batch:
    """The state of one write transaction: last ids as seen so far in batch order, and buffered rows.

    ``known`` holds the last ids of earlier committed batches (the store's single writer keeps it), so a
    session seen before costs no SELECT; the store merges ``last`` into it only once the batch committed."""

    __slots__ = ("conn", "known", "last", "last_updates", "rows", "snapshots")

    def __init__(self, conn: sqlite3.Connection, known: dict[str, int | None]) -> None:
        self.conn = conn
        self.known = known
        self.last: dict[str, int | None] = {}  # None: the session does not exist (at this point of the batch)
        self.rows: list[tuple[str, int, str]] = []
        self.last_updates: dict[str, int] = {}
        self.snapshots: dict[str, tuple[str, int]] = {}

    def last_id(self, session_id: str) -> int | None:
        last = self.last
        if session_id in last:
            return last[session_id]
        known = self.known
        if session_id in known:
            value = last[session_id] = known[session_id]
            return value
        row = self.conn.execute(_SELECT_LAST, (session_id,)).fetchone()
        value = last[session_id] = None if row is None else row[0]
        return value

    def flush(self) -> None:
        """Write the buffered rows; called before an op whose effect depends on them, and at the end."""
        if self.rows:
            self.conn.executemany(_INSERT_EVENT, self.rows)
            self.rows = []
        if self.last_updates:
            self.conn.executemany(_SET_LAST, [(last, sid) for sid, last in self.last_updates.items()])
            self.last_updates = {}
        if self.snapshots:
            self.conn.executemany(
                _SET_SNAPSHOT, [(text, event_id, sid) for sid, (text, event_id) in self.snapshots.items()]
            )
            self.snapshots = {}


class _WriteOp(Op):
    __slots__ = ("session_id",)

    def __init__(self, session_id: str) -> None:
        super().__init__()
        self.session_id = session_id

    def apply(self, batch: _Batch) -> tuple[Any, BaseException | None]:
        """Stage this op in the batch; return (result, error) to report once the batch committed."""
        raise NotImplementedError

    def inline_bytes(self) -> int | None:
        """About how many bytes this op writes, or None if it may take long (never run on the trio thread)."""
        return None


class _Create(_WriteOp):
    __slots__ = ("created_at", "owner")

    def __init__(self, session_id: str, owner: str | None, created_at: float) -> None:
        super().__init__(session_id)
        self.owner = owner
        self.created_at = created_at

    def inline_bytes(self) -> int | None:
        return 128

    def apply(self, batch: _Batch) -> tuple[Any, BaseException | None]:
        batch.flush()
        cursor = batch.conn.execute(_INSERT_SESSION, (self.session_id, self.owner, self.created_at))
        if cursor.rowcount == 1:
            batch.last[self.session_id] = -1
            return SessionRecord(self.session_id, self.owner, self.created_at, -1, None, -1), None
        row = batch.conn.execute(_SELECT_SESSION, (self.session_id,)).fetchone()
        record = _record(row)
        batch.last[self.session_id] = record.last_event_id
        return record, None


class _Append(_WriteOp):
    __slots__ = ("first_id", "last_id", "rows")

    def __init__(self, session_id: str, rows: list[tuple[str, int, str]]) -> None:
        super().__init__(session_id)
        self.rows = rows
        self.first_id = rows[0][1]
        self.last_id = rows[-1][1]

    def inline_bytes(self) -> int | None:
        return sum(len(row[2]) for row in self.rows) + 64 * len(self.rows)

    def apply(self, batch: _Batch) -> tuple[Any, BaseException | None]:
        current = batch.last_id(self.session_id)
        if current is None:
            return None, StoreError(f"session {self.session_id!r} does not exist: create it before appending")
        if self.first_id != current + 1:
            return None, EventIdConflict(
                f"session {self.session_id!r}: events {self.first_id}..{self.last_id} do not continue the "
                f"log, whose last event id is {current}"
            )
        batch.rows.extend(self.rows)
        batch.last[self.session_id] = self.last_id
        batch.last_updates[self.session_id] = self.last_id
        return None, None


class _SaveSnapshot(_WriteOp):
    __slots__ = ("event_id", "text")

    def __init__(self, session_id: str, text: str, event_id: int) -> None:
        super().__init__(session_id)
        self.text = text
        self.event_id = event_id

    def inline_bytes(self) -> int | None:
        return len(self.text) + 64

    def apply(self, batch: _Batch) -> tuple[Any, BaseException | None]:
        current = batch.last_id(self.session_id)
        if current is None:
            return None, StoreError(f"session {self.session_id!r} does not exist: cannot save its snapshot")
        if not -1 <= self.event_id <= current:
            return None, StoreError(
                f"session {self.session_id!r}: a snapshot cannot cover event {self.event_id}, the log ends "
                f"at {current}"
            )
        batch.snapshots[self.session_id] = (self.text, self.event_id)
        return None, None


class _Delete(_WriteOp):
    __slots__ = ()

    def apply(self, batch: _Batch) -> tuple[Any, BaseException | None]:
        batch.flush()
        batch.conn.execute("DELETE FROM events WHERE session_id = ?", (self.session_id,))
        batch.conn.execute("DELETE FROM sessions WHERE session_id = ?", (self.session_id,))
        batch.last[self.session_id] = None
        return None, None


# ----------------------------------------------------------------------------------------------- read ops


class _ReadOp(Op):
    __slots__ = ()

    def run(self, conn: sqlite3.Connection) -> Any:
        raise NotImplementedError


def _select_record(conn: sqlite3.Connection, session_id: str) -> SessionRecord | None:
    row = conn.execute(_SELECT_SESSION, (session_id,)).fetchone()
    return None if row is None else _record(row)


def _select_events(conn: sqlite3.Connection, session_id: str, after_id: int, limit: int) -> list[StoredEvent]:
    rows = conn.execute(
        "SELECT id, json FROM events WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?",
        (session_id, after_id, limit),
    ).fetchall()
    return [StoredEvent.from_json(event_id, text) for event_id, text in rows]


class _Load(_ReadOp):
    __slots__ = ("session_id",)

    def __init__(self, session_id: str) -> None:
        super().__init__()
        self.session_id = session_id

    def run(self, conn: sqlite3.Connection) -> SessionRecord | None:
        return _select_record(conn, self.session_id)


class _LoadWithEvents(_ReadOp):
    __slots__ = ("limit", "session_id")

    def __init__(self, session_id: str, limit: int) -> None:
        super().__init__()
        self.session_id = session_id
        self.limit = limit

    def run(self, conn: sqlite3.Connection) -> tuple[SessionRecord | None, list[StoredEvent]]:
        record = _select_record(conn, self.session_id)
        if record is None or self.limit <= 0:
            return record, []
        return record, _select_events(conn, self.session_id, record.snapshot_event_id, self.limit)


class _EventsAfter(_ReadOp):
    __slots__ = ("after_id", "limit", "session_id")

    def __init__(self, session_id: str, after_id: int, limit: int) -> None:
        super().__init__()
        self.session_id = session_id
        self.after_id = after_id
        self.limit = limit

    def run(self, conn: sqlite3.Connection) -> list[StoredEvent]:
        return _select_events(conn, self.session_id, self.after_id, self.limit)


class _List(_ReadOp):
    __slots__ = ("after", "limit")

    def __init__(self, after: str | None, limit: int) -> None:
        super().__init__()
        self.after = after
        self.limit = limit

    def run(self, conn: sqlite3.Connection) -> list[SessionRecord]:
        if self.after is None:
            rows = conn.execute(f"{_LIST_COLUMNS} ORDER BY session_id LIMIT ?", (self.limit,))
        else:
            rows = conn.execute(
                f"{_LIST_COLUMNS} WHERE session_id > ? ORDER BY session_id LIMIT ?", (self.after, self.limit)
            )
        return [
            SessionRecord(sid, owner, created, last, None, snap) for sid, owner, created, last, snap in rows
        ]


class _Count(_ReadOp):
    __slots__ = ()

    def run(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])
