"""The Store contract (tests/actors/stores/test_contract.py, unchanged) run against RedisStore on a real
redis-server: this module imports the contract's tests and provides their ``store`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from actors.stores import Store
from actors.stores.redis import RedisStore
from tests.actors.stores.test_contract import *  # noqa: F403  (the contract's tests, collected here too)
from tests.support.redis_server import RedisServer


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[Store]:
    backend = RedisStore(redis_server.url, timeout=2.0)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


# Not part of Redis's contract: a single-node store accepts any fence, RedisStore refuses a stale one
# (tests/cluster/test_redis_fencing.py pins that).
del test_single_node_stores_accept_any_fence  # noqa: F821
