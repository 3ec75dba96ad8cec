"""The SQLite schema of the session store, its migrations and connection setup.

Owns: ``MIGRATIONS`` (the schema history; ``PRAGMA user_version`` is the number applied), ``connect_writer``
and ``connect_reader``. Knows nothing of trio, batching or the ``Store`` API: these are plain blocking calls
run in a worker thread.

To change the schema, append a migration (never edit a released one). A database whose ``user_version`` is
higher than ``len(MIGRATIONS)`` was written by a newer server: it is refused, not guessed at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from actors.stores.base import StoreError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "NotOurDatabase",
    "SchemaTooNew",
    "Synchronous",
    "connect_reader",
    "connect_writer",
    "schema_version",
]

Synchronous = Literal["normal", "full"]


class SchemaTooNew(StoreError):
    """The database was written by a newer server (its ``user_version`` is above ``SCHEMA_VERSION``)."""


class NotOurDatabase(StoreError):
    """The file is not a SQLite database, is corrupt, or is another program's database."""


def _v1(conn: sqlite3.Connection) -> None:
    # sessions keeps a rowid: its rows hold snapshots, which may be large (WITHOUT ROWID suits small rows).
    conn.execute(
        """
        CREATE TABLE sessions (
            session_id        TEXT PRIMARY KEY NOT NULL,
            owner             TEXT,
            created_at        REAL NOT NULL,
            last_event_id     INTEGER NOT NULL DEFAULT -1,
            snapshot          TEXT,
            snapshot_event_id INTEGER NOT NULL DEFAULT -1
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE events (
            session_id TEXT NOT NULL,
            id         INTEGER NOT NULL,
            json       TEXT NOT NULL,
            PRIMARY KEY (session_id, id)
        ) WITHOUT ROWID
        """
    )


# MIGRATIONS[i] upgrades a database from user_version i to i + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; the store says BEGIN/COMMIT itself, and a reader never
    # keeps a read transaction open between batches (which would pin an old WAL snapshot).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def connect_writer(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    """Open (creating if needed) the database, switch it to WAL and bring its schema up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = _connect(path)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open SQLite database {str(path)!r}: {exc}") from exc
    try:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, unwritable...: not about the content
                raise
            raise NotOurDatabase(
                f"{str(path)!r} is not a Session Supervisor database (SQLite says: {exc}); "
                "it may be corrupt or another kind of file: choose another --store"
            ) from exc
        if str(mode).lower() != "wal":
            raise StoreError(f"SQLite database {str(path)!r} refused WAL mode (journal_mode={mode})")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_checkpointer(path: Path) -> sqlite3.Connection:
    """A connection that only runs ``PRAGMA wal_checkpoint`` (the writer's autocheckpoint is off)."""
    return _connect(path)


def connect_reader(path: Path) -> sqlite3.Connection:
    conn = _connect(path)
    conn.execute("PRAGMA query_only = 1")
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = schema_version(conn)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"SQLite database {str(path)!r} has schema version {version}, newer than the "
                f"{SCHEMA_VERSION} this server knows: it was written by a newer release; upgrade the server "
                "to open it"
            )
        if version == 0:
            foreign = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]
            if foreign:
                raise NotOurDatabase(
                    f"{str(path)!r} is another program's SQLite database (it has tables but no Session "
                    "Supervisor schema version): refusing to add tables to it; choose another --store"
                )
        for number in range(version, SCHEMA_VERSION):
            MIGRATIONS[number](conn)
        if version != SCHEMA_VERSION:
            # PRAGMA takes no bound parameters; SCHEMA_VERSION is our own int.
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
