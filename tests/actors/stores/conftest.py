"""Fixtures: the contract suite runs on every backend (MemoryStore, SqliteStore on a real file)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from actors.stores import MemoryStore, SqliteStore, Store

BACKENDS = ["memory", "sqlite"]


def make_backend(kind: str, directory: Path) -> MemoryStore | SqliteStore:
    if kind == "memory":
        return MemoryStore()
    return SqliteStore(directory / "sessions.db")


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend = make_backend(request.param, tmp_path)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


OpenSqlite = Callable[..., Awaitable[SqliteStore]]


@pytest.fixture
async def open_sqlite(tmp_path: Path) -> AsyncIterator[OpenSqlite]:
    """Open SqliteStores on the same file (reopen = close one, open the next); all closed at teardown."""
    opened: list[SqliteStore] = []

    async def open_one(**options: object) -> SqliteStore:
        store = SqliteStore(tmp_path / "sessions.db", **options)  # type: ignore[arg-type]
        await store.open()
        opened.append(store)
        return store

    try:
        yield open_one
    finally:
        for store in opened:
            await store.close()
