"""open_store: store URLs to backends (pure parsing, no I/O until open)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.stores import MemoryStore, SqliteStore, StoreError, StoreURLError, open_store
from actors.stores.redis import RedisStore


def test_memory_url_gives_a_memory_store() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_sqlite_url_with_three_slashes_is_a_relative_path() -> None:
    store = open_store("sqlite:///data/sessions.db")
    assert isinstance(store, SqliteStore)
    assert store.path == Path("data/sessions.db")
    assert not store.path.is_absolute()
    assert store.synchronous == "normal"


def test_sqlite_url_with_four_slashes_is_an_absolute_path() -> None:
    store = open_store("sqlite:////var/lib/supervisor/sessions.db")
    assert isinstance(store, SqliteStore)
    assert store.path == Path("/var/lib/supervisor/sessions.db")


def test_sqlite_url_options() -> None:
    store = open_store("sqlite:///s.db?synchronous=FULL")
    assert isinstance(store, SqliteStore) and store.synchronous == "full"
    assert isinstance(open_store("sqlite:///s%20x.db?max_pending=10"), SqliteStore)
    assert open_store("sqlite:///s%20x.db").path == Path("s x.db")  # type: ignore[attr-defined]


def test_redis_urls_give_a_redis_store() -> None:
    store = open_store("redis://localhost:6380/2")
    assert isinstance(store, RedisStore)
    assert (store.url.host, store.url.port, store.url.db, store.url.tls) == ("localhost", 6380, 2, False)
    tls = open_store("rediss://localhost")
    assert isinstance(tls, RedisStore) and tls.url.tls and tls.url.port == 6379


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://localhost/x", "database number"),
        ("redis://localhost/0?pool=3", "unknown option"),
        ("postgres://db/x", "unknown store URL"),
        ("sessions.db", "unknown store URL"),
        ("", "unknown store URL"),
        ("sqlite://", "names no database file"),
        ("sqlite:///", "names no database file"),
        ("sqlite:///data/", "names no database file"),
        ("sqlite://host/x.db", "host part"),
        ("sqlite:///:memory:", "memory://"),
        ("sqlite:///x.db?synchronous=off", "synchronous"),
        ("sqlite:///x.db?max_pending=0", "max_pending"),
        ("sqlite:///x.db?journal=delete", "unknown option"),
        ("memory://somewhere", "no path"),
    ],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(StoreURLError, match=message) as info:
        open_store(url)
    assert isinstance(info.value, StoreError) and isinstance(info.value, ValueError)


async def test_an_opened_url_store_works(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/url.db")  # tmp_path is absolute: four slashes in effect
    await store.open()
    try:
        await store.create("s1", None)
        assert await store.count_sessions() == 1
    finally:
        await store.close()
    assert (tmp_path / "url.db").exists()
