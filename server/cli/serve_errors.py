"""``supervisor serve``'s setup failures: one ``error: ...`` line each, and a distinct exit code.

Owns: the exit codes of ``serve`` (documented in docs/cli.md) and ``setup_failure`` (an exception raised
while the server starts -> its exit code and one-line message, or None for a real bug that deserves its
traceback). Knows the exception types of the store and the listener; nothing of how they are raised.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from actors.stores.base import StoreError
from actors.stores.sqlite import SchemaTooNew, StoreLocked

__all__ = [
    "EXIT_CANNOT_LISTEN",
    "EXIT_DATA_DIR",
    "EXIT_INTERRUPTED",
    "EXIT_STORE",
    "EXIT_STORE_LOCKED",
    "EXIT_STORE_NEWER",
    "EXIT_USAGE",
    "data_dir_failure",
    "setup_failure",
]

EXIT_USAGE = 2  # bad command line or configuration (also cyclopts' own parse errors)
EXIT_STORE_LOCKED = 2  # the store is held by another live server (issue 14: "exit 2")
EXIT_CANNOT_LISTEN = 3  # the address is in use, not available, or not permitted
EXIT_STORE = 4  # the store cannot be opened: unwritable path, corrupt or foreign file, unreachable server
EXIT_STORE_NEWER = 5  # the database was written by a newer release
EXIT_DATA_DIR = 6  # the data directory cannot be created or written
EXIT_INTERRUPTED = 130  # Ctrl-C before the server was up

_LISTEN_REASONS = {
    errno.EADDRINUSE: "the address is already in use (another server on this port?); pick another --port",
    errno.EADDRNOTAVAIL: "this machine has no such address; check --host",
    errno.EACCES: "permission denied (ports below 1024 need privileges); pick another --port",
}


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def setup_failure(exc: BaseException, host: str, port: int) -> tuple[int, str] | None:
    """The exit code and message for a failure to start, or None when ``exc`` is not one we know."""
    for leaf in _leaves(exc):
        if isinstance(leaf, StoreLocked):
            return EXIT_STORE_LOCKED, str(leaf)
        if isinstance(leaf, SchemaTooNew):
            return EXIT_STORE_NEWER, str(leaf)
        if isinstance(leaf, StoreError):
            return EXIT_STORE, str(leaf)
        if isinstance(leaf, socket.gaierror):
            return EXIT_CANNOT_LISTEN, f"cannot listen on {host}:{port}: unknown host ({leaf.strerror})"
        if isinstance(leaf, OSError) and leaf.errno in _LISTEN_REASONS:
            return EXIT_CANNOT_LISTEN, f"cannot listen on {host}:{port}: {_LISTEN_REASONS[leaf.errno]}"
        if isinstance(leaf, OSError) and leaf.errno == errno.EINVAL:
            return EXIT_CANNOT_LISTEN, f"cannot listen on {host}:{port}: {leaf.strerror}"
    if all(isinstance(leaf, KeyboardInterrupt) for leaf in _leaves(exc)):
        return EXIT_INTERRUPTED, "interrupted before the server was up"
    return None


def data_dir_failure(data_dir: Path, exc: OSError) -> tuple[int, str]:
    reason = exc.strerror or str(exc)
    return EXIT_DATA_DIR, (
        f"cannot use the data directory {str(data_dir)!r}: {reason}; pass a writable --data-dir"
    )
