"""Store URLs: the one string an operator writes to choose and configure a backend.

Owns: ``open_store`` and ``StoreURLError``. Knows which backends exist and their URL options, nothing of
what they store. A new backend adds one branch here and its module; nothing else changes.

Forms:
    memory://                          MemoryStore (nothing survives the process)
    sqlite:///relative/path.db         SqliteStore, path relative to the working directory
    sqlite:////absolute/path.db        SqliteStore, absolute path
    sqlite:///x.db?synchronous=full    options: synchronous=normal|full, max_pending=<int>
    redis://HOST:PORT/DB               RedisStore (one node, or a cluster: see ``actors.stores.redis_url``)
    rediss://HOST:PORT/DB              RedisStore over TLS
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from actors.stores.base import Store, StoreError
from actors.stores.memory import MemoryStore
from actors.stores.redis import RedisStore
from actors.stores.redis_url import RedisURLError, parse_redis_url
from actors.stores.sqlite import SqliteStore

__all__ = ["StoreURLError", "open_store"]

class StoreURLError(StoreError, ValueError):
    """The store URL is malformed, names an unknown backend, or has an unknown option."""


def open_store(url: str) -> Store:
    """The store a URL names, not yet opened: the caller runs ``await store.open()`` (and ``close()``)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise StoreURLError(f"malformed store URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path.strip("/") or parts.query:
            raise StoreURLError(f"memory store URL takes no path or options: use 'memory://', not {url!r}")
        return MemoryStore()
    if scheme == "sqlite":
        return _sqlite(url, parts.netloc, parts.path, parts.query)
    if scheme in ("redis", "rediss"):
        try:
            return RedisStore(parse_redis_url(url))
        except RedisURLError as exc:
            raise StoreURLError(f"store URL: {exc}") from exc
    raise StoreURLError(
        f"unknown store URL {url!r}: expected sqlite:///relative.db, sqlite:////absolute.db, memory:// "
        "or redis://host:port/db"
    )


def _sqlite(url: str, netloc: str, path: str, query: str) -> SqliteStore:
    if netloc:
        raise StoreURLError(
            f"sqlite URL {url!r} has a host part {netloc!r}: write sqlite:///relative.db or sqlite:////abs.db"
        )
    file_path = unquote(path[1:]) if path.startswith("/") else ""
    if not file_path or file_path.endswith("/"):
        raise StoreURLError(f"sqlite URL {url!r} names no database file: write sqlite:///path/to/file.db")
    if file_path == ":memory:":
        raise StoreURLError(
            "sqlite :memory: cannot be shared by the writer and reader connections; use memory://"
        )
    synchronous = "normal"
    max_pending = 4096
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key == "synchronous":
            if value.lower() not in ("normal", "full"):
                raise StoreURLError(
                    f"sqlite URL {url!r}: synchronous must be 'normal' or 'full', not {value!r}"
                )
            synchronous = value.lower()
        elif key == "max_pending":
            if not value.isdigit() or int(value) < 1:
                raise StoreURLError(
                    f"sqlite URL {url!r}: max_pending must be a positive integer, not {value!r}"
                )
            max_pending = int(value)
        else:
            raise StoreURLError(
                f"sqlite URL {url!r}: unknown option {key!r} (known: synchronous, max_pending)"
            )
    return SqliteStore(
        file_path, synchronous="full" if synchronous == "full" else "normal", max_pending=max_pending
    )
