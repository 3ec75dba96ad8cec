"""Fixtures for the Redis store and cluster tests: one real redis-server per test session (flushed before
each test), and a private one per fault test (killed and restarted by the test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from actors.stores.redis import RedisStore
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_server(shared_redis: RedisServer) -> RedisServer:
    """The shared server, emptied (FLUSHALL keeps the function library)."""
    if not shared_redis.running:
        shared_redis.start()
    assert shared_redis.command("FLUSHALL") == b"+OK"
    return shared_redis


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A server of this test alone, which it may SIGKILL, pause and restart."""
    with RedisServer() as server:
        yield server


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_server.url, timeout=2.0)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
