"""The embedded durable store: one SQLite file in WAL mode, written with group commit.

Owns: ``SqliteStore``. Knows the ``Store`` contract, SQL and trio's worker threads; knows nothing of actors'
states, agents or the network. Schema and migrations live in ``_sqlite_schema``; the batching machinery in
``_group``.

Threads and batching. Every write (create, append, save_snapshot, delete) goes through one writer
connection in one worker thread at a time (``trio.to_thread`` + ``CapacityLimiter(1)``). Writes arriving
while a transaction commits are gathered into the next one (group commit): one ``BEGIN IMMEDIATE ...
COMMIT``, one WAL write (and one fsync with ``synchronous="full"``) serves every session in the batch,
inserted with ``executemany``. Each op is validated inside the batch (an append must continue its session's
log, in batch order), so a bad op fails alone and never the others; if SQLite itself fails a batch, it is
rolled back and its ops retried one transaction each, so only the op at fault reports the error. Reads
(load, events_after, list_sessions, count_sessions) use a separate read-only connection: WAL lets them run
while a commit is in progress, and they are batched the same way (one thread hop, one read transaction).
``load_with_events`` (beyond the protocol, see ``rehydrate``) reads a record and its missed events in one
hop.

Durability (decided: ``synchronous="normal"`` by default). When ``append`` or ``save_snapshot`` returns, its
transaction is committed to the WAL file through the OS: it survives a crash or SIGKILL of this process.
With the default ``normal`` the WAL is not fsynced at each commit, so a power loss or kernel crash may lose
the last transactions (the database stays consistent: it rolls back to an earlier commit). Pass
``synchronous="full"`` (URL ``sqlite:///x.db?synchronous=full``) to fsync the WAL at every commit, which
survives power loss too; group commit keeps its cost to one fsync per batch, not per event.

Bounds: at most ``max_pending`` writes and ``max_pending`` reads are queued or running; callers beyond that
wait (backpressure). ``close()`` waits for every pending write to commit.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
import trio

from actors.events import StoredEvent
from actors.stores._group import GroupRunner, Op
from actors.stores._json import dumps
from actors.stores._sqlite_schema import SCHEMA_VERSION, Synchronous, connect_reader, connect_writer
from actors.stores.base import EventIdConflict, SessionRecord, StoreError

__all__ = ["SqliteStore"]

log = structlog.get_logger(__name__)

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
    """The state of one write transaction: last ids as seen so far in batch order, and buffered rows."""

    __slots__ = ("conn", "last", "last_updates", "rows", "snapshots")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.last: dict[str, int | None] = {}  # None: the session does not exist (at this point of the batch)
        self.rows: list[tuple[str, int, str]] = []
        self.last_updates: dict[str, int] = {}
        self.snapshots: dict[str, tuple[str, int]] = {}

    def last_id(self, session_id: str) -> int | None:
        if session_id not in self.last:
            row = self.conn.execute(_SELECT_LAST, (session_id,)).fetchone()
            self.last[session_id] = None if row is None else row[0]
        return self.last[session_id]

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


class _Create(_WriteOp):
    __slots__ = ("created_at", "owner")

    def __init__(self, session_id: str, owner: str | None, created_at: float) -> None:
        super().__init__(session_id)
        self.owner = owner
        self.created_at = created_at

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


# -------------------------------------------------------------------------------------------------- store


def _batch_error(exc: BaseException | None) -> BaseException:
    if exc is None:
        return StoreError("internal error: a store batch left an operation unanswered")
    return StoreError(f"store batch failed: {exc!r}")


class SqliteStore:
    """``Store`` on one SQLite file. See the module docstring for batching and the durability guarantee.

    ``commits`` counts committed write transactions: with group commit it grows far slower than the
    number of writes under concurrency (tests rely on it). ``stats()`` has more counters.
    """

    def __init__(
        self, path: str | Path, *, synchronous: Synchronous = "normal", max_pending: int = 4096
    ) -> None:
        if synchronous not in ("normal", "full"):
            raise ValueError(f"synchronous must be 'normal' or 'full', not {synchronous!r}")
        self.path = Path(path)
        self.synchronous: Synchronous = synchronous
        self.commits = 0
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._state = "new"  # new -> open -> closed
        self._writes: GroupRunner[_WriteOp] = GroupRunner(
            self._write_batch, max_pending=max_pending, make_error=_batch_error
        )
        self._reads: GroupRunner[_ReadOp] = GroupRunner(
            self._read_batch, max_pending=max_pending, make_error=_batch_error
        )

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r}, synchronous={self.synchronous!r}, state={self._state})"

    # lifecycle

    async def open(self) -> None:
        if self._state != "new":
            raise StoreError(f"{self!r} cannot be opened twice")

        def connect() -> tuple[sqlite3.Connection, sqlite3.Connection]:
            writer = connect_writer(self.path, self.synchronous)
            try:
                return writer, connect_reader(self.path)
            except BaseException:
                writer.close()
                raise

        try:
            self._writer, self._reader = await trio.to_thread.run_sync(connect)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {str(self.path)!r}: {exc}") from exc
        self._state = "open"
        log.info(
            "sqlite store opened",
            path=str(self.path),
            schema_version=SCHEMA_VERSION,
            synchronous=self.synchronous,
        )

    async def close(self) -> None:
        if self._state != "open":
            self._state = "closed"
            return
        self._state = "closed"  # new calls fail from here; pending ones still complete
        with trio.CancelScope(shield=True):
            await self._writes.drain()
            await self._reads.drain()
            reader, writer = self._reader, self._writer
            self._reader = self._writer = None
            if reader is not None:
                await self._reads.run_alone(reader.close)
            if writer is not None:
                await self._writes.run_alone(writer.close)
        log.info("sqlite store closed", path=str(self.path), commits=self.commits)

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def stats(self) -> dict[str, int]:
        return {
            "commits": self.commits,
            "write_batches": self._writes.batches,
            "write_ops": self._writes.ops,
            "read_batches": self._reads.batches,
            "read_ops": self._reads.ops,
        }

    # writes

    async def create(self, session_id: str, owner: str | None) -> SessionRecord:
        result: SessionRecord = await self._write(_Create(session_id, owner, time.time()))
        return result

    async def append(
        self, session_id: str, events: list[StoredEvent], *, fence: int | None = None
    ) -> None:
        del fence  # one node: any fence is the current one
        if not events:
            self._check_open()
            await trio.lowlevel.checkpoint()
            return
        first = events[0].id
        for offset, event in enumerate(events):
            if event.id != first + offset:
                raise EventIdConflict(
                    f"session {session_id!r}: appended ids must be consecutive, got "
                    f"{[e.id for e in events][:10]}"
                )
        rows = [(session_id, event.id, event.json_text or dumps(event.payload)) for event in events]
        await self._write(_Append(session_id, rows))

    async def save_snapshot(self, session_id: str, snapshot: dict[str, Any], event_id: int) -> None:
        try:
            text = dumps(snapshot)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"session {session_id!r}: snapshot is not JSON-serializable: {exc}") from exc
        await self._write(_SaveSnapshot(session_id, text, event_id))

    async def delete(self, session_id: str) -> None:
        await self._write(_Delete(session_id))

    # reads

    async def load(self, session_id: str) -> SessionRecord | None:
        result: SessionRecord | None = await self._read(_Load(session_id))
        return result

    async def load_with_events(
        self, session_id: str, limit: int
    ) -> tuple[SessionRecord | None, list[StoredEvent]]:
        """Rehydration in one read: the record and up to ``limit`` events after its snapshot_event_id."""
        result: tuple[SessionRecord | None, list[StoredEvent]] = await self._read(
            _LoadWithEvents(session_id, limit)
        )
        return result

    async def events_after(self, session_id: str, after_id: int, limit: int) -> list[StoredEvent]:
        if limit <= 0:
            self._check_open()
            await trio.lowlevel.checkpoint()
            return []
        result: list[StoredEvent] = await self._read(_EventsAfter(session_id, after_id, limit))
        return result

    async def list_sessions(self, *, after: str | None = None, limit: int = 100) -> list[SessionRecord]:
        if limit <= 0:
            self._check_open()
            await trio.lowlevel.checkpoint()
            return []
        result: list[SessionRecord] = await self._read(_List(after, limit))
        return result

    async def count_sessions(self) -> int:
        result: int = await self._read(_Count())
        return result

    # machinery

    def _check_open(self) -> None:
        if self._state != "open":
            raise StoreError(f"{self!r} is not open")

    async def _write(self, op: _WriteOp) -> Any:
        self._check_open()
        await self._writes.submit(op)
        if op.error is not None:
            raise op.error
        return op.result

    async def _read(self, op: _ReadOp) -> Any:
        self._check_open()
        await self._reads.submit(op)
        if op.error is not None:
            raise op.error
        return op.result

    def _write_batch(self, ops: Sequence[_WriteOp]) -> None:
        """Worker thread: one transaction for ``ops``; falls back to one transaction per op on failure."""
        conn = self._writer
        if conn is None:
            for op in ops:
                op.fail(StoreError(f"{self!r} is closed"))
            return
        try:
            outcomes = self._transaction(conn, ops)
        except (sqlite3.Error, StoreError, ValueError) as exc:
            if len(ops) > 1:
                log.warning("write batch failed, retrying its ops one by one", ops=len(ops), error=repr(exc))
                for op in ops:
                    self._write_batch([op])
            else:
                log.warning("write failed", session_id=ops[0].session_id, error=repr(exc))
                ops[0].fail(StoreError(f"session {ops[0].session_id!r}: write failed: {exc}"))
            return
        for op, (result, error) in zip(ops, outcomes, strict=True):
            if error is None:
                op.complete(result)
            else:
                op.fail(error)

    def _transaction(
        self, conn: sqlite3.Connection, ops: Sequence[_WriteOp]
    ) -> list[tuple[Any, BaseException | None]]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            batch = _Batch(conn)
            outcomes = [op.apply(batch) for op in ops]
            batch.flush()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.commits += 1
        return outcomes

    def _read_batch(self, ops: Sequence[_ReadOp]) -> None:
        """Worker thread: every read of the batch in one read transaction (one consistent snapshot)."""
        conn = self._reader
        if conn is None:
            for op in ops:
                op.fail(StoreError(f"{self!r} is closed"))
            return
        conn.execute("BEGIN")
        try:
            for op in ops:
                try:
                    op.complete(op.run(conn))
                except (sqlite3.Error, ValueError) as exc:
                    op.fail(StoreError(f"read failed: {exc!r}"))
        finally:
            conn.execute("COMMIT")
