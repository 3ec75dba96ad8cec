"""The embedded durable store: one SQLite file in WAL mode, written with group commit.

Owns: ``SqliteStore``. Knows the ``Store`` contract, SQL and trio's worker threads; knows nothing of actors'
states, agents or the network. Schema and migrations live in ``_sqlite_schema``, the SQL operations run in
the worker threads in ``_sqlite_ops``, the batching machinery in ``_group``.

Threads and batching. Every write (create, append, save_snapshot, delete) goes through one writer
connection, one batch at a time. Writes arriving while a transaction commits are gathered into the next one
(group commit): one ``BEGIN IMMEDIATE ... COMMIT``, one WAL write (and one fsync with ``synchronous="full"``)
serves every session in the batch, inserted with ``executemany``. Where a batch runs: with the default
``synchronous="normal"`` a commit does not fsync (a ``write()`` to the WAL, 20-60 us for a few rows), far
less than a thread hop (~120 us even for a no-op), so a small batch (at most ``INLINE_MAX_OPS`` ops and
``INLINE_MAX_BYTES``, no delete) commits on the trio thread, gathered per scheduler pass; the rest, and
every batch with ``synchronous="full"``, runs in a worker thread (``trio.to_thread`` +
``CapacityLimiter(1)``). Checkpoints (which fsync and copy the WAL into the database: milliseconds) then
never run inside a commit: the writer's ``wal_autocheckpoint`` is off, and every ``CHECKPOINT_EVERY``
commits the writer whose commit crossed the mark runs a PASSIVE checkpoint on a connection of its own in a
worker thread while the other writes go on (a PASSIVE checkpoint takes no write lock), then a short second
pass with writes held off for the frames committed meanwhile, so the WAL restarts. An inline commit never
waits for a lock another program holds (``busy_timeout`` 0): the batch goes to the worker thread, which
waits up to ``BUSY_TIMEOUT_MS``.

Each op is validated inside the batch (an append must continue its session's log, in batch order), so a
bad op fails alone and never the others; if SQLite itself fails a batch, it is rolled back and its ops
retried one transaction each, so only the op at fault reports the error, unless the failure is nobody's
own (locked, disk full, I/O error: ``_sqlite_errors.TRANSIENT``), which fails them all at once. Reads
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

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
import trio

from actors.events import StoredEvent
from actors.stores._group import GroupRunner
from actors.stores._json import dumps
from actors.stores._sqlite_errors import TRANSIENT, Busy, batch_error, is_locked, primary_code, write_error
from actors.stores._sqlite_lock import StoreLock, StoreLocked, network_filesystem
from actors.stores._sqlite_ops import (
    _Append,
    _Batch,
    _Count,
    _Create,
    _Delete,
    _EventsAfter,
    _List,
    _Load,
    _LoadWithEvents,
    _ReadOp,
    _SaveSnapshot,
    _WriteOp,
)
from actors.stores._sqlite_schema import (
    SCHEMA_VERSION,
    NotOurDatabase,
    SchemaTooNew,
    Synchronous,
    connect_checkpointer,
    connect_reader,
    connect_writer,
)
from actors.stores.base import EventIdConflict, SessionRecord, StoreError

__all__ = ["NotOurDatabase", "SchemaTooNew", "SqliteStore", "StoreLocked"]

log = structlog.get_logger(__name__)

INLINE_MAX_OPS = 256  # a batch of more ops goes to the worker thread
INLINE_MAX_BYTES = 256 * 1024  # so does one that writes more (a commit of 256 KiB takes ~1 ms)
# A small commit adds ~10 WAL pages: a few times the 1,000 pages of SQLite's own autocheckpoint, for a
# fifth less checkpoint work per commit (a page rewritten between checkpoints is copied once).
CHECKPOINT_EVERY = 250
KNOWN_LAST_IDS = 65_536  # last ids remembered by the writer (one SELECT saved per session and batch)
BUSY_TIMEOUT_MS = 10_000  # how long a worker-thread batch waits for a lock another program holds


class SqliteStore:
    """``Store`` on one SQLite file. See the module docstring for batching and the durability guarantee.

    ``commits`` counts committed write transactions: with group commit it grows far slower than the
    number of writes under concurrency (tests rely on it). ``stats()`` has more counters.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "normal",
        max_pending: int = 4096,
        inline_commits: bool = True,
    ) -> None:
        if synchronous not in ("normal", "full"):
            raise ValueError(f"synchronous must be 'normal' or 'full', not {synchronous!r}")
        self.path = Path(path)
        self.synchronous: Synchronous = synchronous
        self.inline_commits = inline_commits and synchronous == "normal"
        self.commits = 0
        self.checkpoints = 0
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpointed_at = 0  # self.commits when the last checkpoint began
        self._checkpointing: trio.Event | None = None  # set when the running checkpoint ends
        self._known_last: dict[str, int | None] = {}  # committed last ids (see _Batch); writer only
        self._lock = StoreLock(self.path)
        self._state = "new"  # new -> open -> closed
        self._writes: GroupRunner[_WriteOp] = GroupRunner(
            self._write_batch_in_thread if self.inline_commits else self._write_batch,
            max_pending=max_pending,
            make_error=batch_error,
            run_inline=self._write_inline if self.inline_commits else None,
        )
        self._reads: GroupRunner[_ReadOp] = GroupRunner(
            self._read_batch, max_pending=max_pending, make_error=batch_error
        )

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r}, synchronous={self.synchronous!r}, state={self._state})"

    # lifecycle

    async def open(self) -> None:
        if self._state != "new":
            raise StoreError(f"{self!r} cannot be opened twice")

        def connect() -> tuple[sqlite3.Connection, sqlite3.Connection, sqlite3.Connection | None]:
            # One server per store (see _sqlite_lock): the lock comes before any connection.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
            opened: list[sqlite3.Connection] = []
            try:
                opened.append(connect_writer(self.path, self.synchronous))
                opened.append(connect_reader(self.path))
                if not self.inline_commits:
                    return opened[0], opened[1], None
                opened[0].execute("PRAGMA wal_autocheckpoint = 0")  # see the module docstring
                opened[0].execute("PRAGMA busy_timeout = 0")  # never wait for a lock on the trio thread
                opened.append(connect_checkpointer(self.path))
                return opened[0], opened[1], opened[2]
            except BaseException:
                for conn in opened:
                    conn.close()
                self._lock.release()
                raise

        try:
            self._writer, self._reader, self._checkpointer = await trio.to_thread.run_sync(connect)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {str(self.path)!r}: {exc}") from exc
        except OSError as exc:
            raise StoreError(
                f"cannot open SQLite database {str(self.path)!r}: {exc.strerror or exc}"
                + (f": {exc.filename!r}" if exc.filename else "")
            ) from exc
        self._state = "open"
        fs_type = network_filesystem(self.path)
        if fs_type is not None:
            log.warning(
                "store.network_filesystem", path=str(self.path), fs_type=fs_type,
                hint="SQLite's locking and WAL are unreliable on network filesystems; use a local disk",
            )
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
            if self._checkpointing is not None:
                await self._checkpointing.wait()
            reader, writer, checkpointer = self._reader, self._writer, self._checkpointer
            self._reader = self._writer = self._checkpointer = None
            if checkpointer is not None:
                await trio.to_thread.run_sync(checkpointer.close)
            if reader is not None:
                await self._reads.run_alone(reader.close)
            if writer is not None:
                await self._writes.run_alone(writer.close)
            self._lock.release()
        log.info("sqlite store closed", path=str(self.path), commits=self.commits)

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def stats(self) -> dict[str, int]:
        return {
            "commits": self.commits,
            "checkpoints": self.checkpoints,
            "write_batches": self._writes.batches,
            "inline_write_batches": self._writes.inline_batches,
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
        if (
            self._checkpointer is not None  # (thread commits: SQLite's autocheckpoint does it in a commit)
            and self._checkpointing is None
            and self.commits - self._checkpointed_at >= CHECKPOINT_EVERY
        ):
            await self._checkpoint()
        if op.error is not None:
            raise op.error
        return op.result

    def _write_inline(self, ops: Sequence[_WriteOp]) -> bool:
        """Trio thread: commit ``ops`` here if the batch is small (see the module docstring), else False."""
        if len(ops) > INLINE_MAX_OPS:
            return False
        total = 0
        for op in ops:
            size = op.inline_bytes()
            if size is None:
                return False
            total += size
        if total > INLINE_MAX_BYTES:
            return False
        try:
            self._write_batch(ops, inline=True)
        except Busy:  # another program holds the write lock: wait for it in a thread, not here
            return False
        except BaseException:  # (KeyboardInterrupt between COMMIT and the report): forget, look up again
            self._known_last.clear()
            raise
        return True

    def _write_batch_in_thread(self, ops: Sequence[_WriteOp]) -> None:
        """Worker thread, inline mode: the writer waits for locks here only (see ``BUSY_TIMEOUT_MS``)."""
        conn = self._writer
        if conn is not None:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            self._write_batch(ops)
        finally:
            if conn is not None:
                conn.execute("PRAGMA busy_timeout = 0")

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database, in a thread (PASSIVE: waits for no reader, blocks no writer)."""
        self._checkpointed_at = self.commits
        done = self._checkpointing = trio.Event()
        try:
            before = self.commits
            await trio.to_thread.run_sync(self._run_checkpoint, abandon_on_cancel=False)
            if self.commits != before:  # frames committed meanwhile: copy them with writes held off (short)
                await self._writes.run_exclusive(self._run_checkpoint)
        finally:
            self._checkpointing = None
            done.set()

    def _run_checkpoint(self) -> None:
        """Worker thread. (Its result's frame counts say nothing of frames committed during it.)"""
        conn = self._checkpointer
        if conn is None:
            return
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the WAL keeps the data; the next checkpoint tries again
            log.warning("sqlite checkpoint failed", path=str(self.path), error=repr(exc))
            return
        self.checkpoints += 1

    async def _read(self, op: _ReadOp) -> Any:
        self._check_open()
        await self._reads.submit(op)
        if op.error is not None:
            raise op.error
        return op.result

    def _write_batch(self, ops: Sequence[_WriteOp], *, inline: bool = False) -> None:
        """One transaction for ``ops``; falls back to one transaction per op on failure, unless the failure
        is nobody's own (locked, full, I/O error): then they all fail with it. ``inline``: on the trio thread,
        where a locked database raises ``_Busy`` before anything ran."""
        conn = self._writer
        if conn is None:
            for op in ops:
                op.fail(StoreError(f"{self!r} is closed"))
            return
        try:
            outcomes = self._transaction(conn, ops, inline=inline)
        except (sqlite3.Error, StoreError, ValueError) as exc:
            if primary_code(exc) in TRANSIENT:
                log.warning("write batch failed", ops=len(ops), error=repr(exc))
                for op in ops:
                    op.fail(write_error(op.session_id, exc))
            elif len(ops) > 1:
                log.warning("write batch failed, retrying its ops one by one", ops=len(ops), error=repr(exc))
                for op in ops:
                    self._write_batch([op])
            else:
                log.warning("write failed", session_id=ops[0].session_id, error=repr(exc))
                ops[0].fail(write_error(ops[0].session_id, exc))
            return
        for op, (result, error) in zip(ops, outcomes, strict=True):
            if error is None:
                op.complete(result)
            else:
                op.fail(error)

    def _transaction(
        self, conn: sqlite3.Connection, ops: Sequence[_WriteOp], *, inline: bool = False
    ) -> list[tuple[Any, BaseException | None]]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if inline and is_locked(exc):
                raise Busy from exc
            raise
        try:
            batch = _Batch(conn, self._known_last)
            outcomes = [op.apply(batch) for op in ops]
            batch.flush()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.commits += 1
        known = self._known_last
        if len(known) + len(batch.last) > KNOWN_LAST_IDS:
            known.clear()  # bounded: the sessions written since are looked up again, once each
        known.update(batch.last)
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
