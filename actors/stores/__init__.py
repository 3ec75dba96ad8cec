"""Durable stores of session records, event logs and snapshots.

Owns the public surface of ``actors.stores``: the ``Store`` protocol and its records and errors (``base``),
the backends (``MemoryStore``, ``SqliteStore``), ``open_store(url)`` and the rehydration read
``load_with_events(store, session_id, limit)``. Knows nothing of actors' states or
of the network; never imports ``server``.
"""

from actors.stores.base import EventIdConflict, FencedOut, SessionRecord, Store, StoreError
from actors.stores.memory import MemoryStore
from actors.stores.rehydrate import SupportsLoadWithEvents, load_with_events
from actors.stores.sqlite import SqliteStore
from actors.stores.url import StoreURLError, open_store

__all__ = [
    "EventIdConflict",
    "FencedOut",
    "MemoryStore",
    "SessionRecord",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreURLError",
    "SupportsLoadWithEvents",
    "load_with_events",
    "open_store",
]
