"""How the SQLite store reads SQLite's errors: which are an op's own fault and which are nobody's.

Owns: ``write_error`` (a failed write as the store's error), ``TRANSIENT`` (the primary result codes that
fail a whole batch: locked, full, I/O error), ``Busy`` (an inline batch found the database locked),
``is_locked`` and ``batch_error``. Plain Python; knows nothing of trio, batching or the SQL.
"""

from __future__ import annotations

from actors.stores.base import StoreError, StoreFull, StoreUnavailable


def batch_error(exc: BaseException | None) -> BaseException:
    if exc is None:
        return StoreError("internal error: a store batch left an operation unanswered")
    return StoreError(f"store batch failed: {exc!r}")


SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_IOERR = 5, 6, 13, 10
TRANSIENT = (SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_IOERR)  # not any one op's fault


class Busy(Exception):
    """An inline batch found the database locked by another connection: nothing ran, use the thread."""


def primary_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_locked(exc: BaseException) -> bool:
    """Another connection holds the lock (``SQLITE_BUSY`` / ``SQLITE_LOCKED``)."""
    return primary_code(exc) in (SQLITE_BUSY, SQLITE_LOCKED)


def write_error(session_id: str, exc: BaseException) -> StoreError:
    """A failed write as the store's error: a full disk or an I/O fault is transient (``StoreFull``,
    ``StoreUnavailable``: nothing was written, retry later), anything else is the op's own fault."""
    primary = primary_code(exc)
    if primary == SQLITE_FULL:
        return StoreFull(f"session {session_id!r}: the disk is full: {exc}")
    if primary == SQLITE_IOERR:
        return StoreUnavailable(f"session {session_id!r}: disk I/O error: {exc}")
    if is_locked(exc):
        return StoreUnavailable(f"session {session_id!r}: the database is locked by another program: {exc}")
    return StoreError(f"session {session_id!r}: write failed: {exc}")
