"""The supervisor on a real redis-server with ``RedisPlacement``: fenced appends, snapshot-and-release on
passivation, and an owner that stops by itself when it cannot renew by TTL minus the safety margin.

Real time (the store talks to a real process); the lease TTL is short and every wait is bounded.
"""

from __future__ import annotations

import pytest
import trio

from actors.cluster.node import cluster_placement
from actors.cluster.placement import RedisPlacement
from actors.config import SupervisorConfig
from actors.events import StoredEvent
from actors.stores._redis_keys import SessionKeys
from actors.stores.base import FencedOut
from actors.stores.redis import RedisStore
from actors.supervisor import Supervisor
from tests.support.redis_server import RedisServer


def action(text: str) -> dict[str, str]:
    return {"action": "message", "message": text}


async def test_appends_carry_the_fence_and_passivation_releases_at_once(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    placement = cluster_placement(store, node_id="n1", lease_ttl=3.0)
    assert isinstance(placement, RedisPlacement) and store.require_fence
    async with store, trio.open_nursery() as nursery:
        sup = Supervisor(store, None, SupervisorConfig(), placement=placement)
        await nursery.start(sup.run)
        ref = sup.ref("f1")
        assert (await ref.ask_act(action("one"))).event_id == 0
        assert redis_server.command("GET", SessionKeys("f1").lease) == b"n1:1"
        with trio.fail_after(5):
            assert await sup.shutdown(5) == 0
        assert redis_server.command("GET", SessionKeys("f1").lease) == b"$-1"  # released with the snapshot
        record = await store.load("f1")
        assert record is not None and record.snapshot_event_id == 0
        # Without the lease nothing may append: the store requires a fence, and an old one is refused.
        other = RedisPlacement(store, "n2", lease_ttl=3.0)
        lease = await other.acquire("f1")
        assert lease is not None and lease.fence == 2
        with pytest.raises(FencedOut):
            await store.append("f1", [StoredEvent.create(1, action("late"))], fence=1)


async def test_an_owner_that_cannot_renew_stops_before_its_lease_expires(private_redis: RedisServer) -> None:
    store = RedisStore(private_redis.url, timeout=0.5)
    placement = cluster_placement(store, node_id="n1", lease_ttl=1.5)
    assert placement is not None
    async with store, trio.open_nursery() as nursery:
        sup = Supervisor(store, None, SupervisorConfig(close_delay=None), placement=placement)
        await nursery.start(sup.run)
        assert (await sup.ref("p1").ask_act(action("one"))).event_id == 0
        assert sup.info("p1") is not None
        private_redis.pause()  # renewals now time out
        try:
            paused_at = trio.current_time()
            with trio.fail_after(3):
                while sup.info("p1") is not None:  # noqa: ASYNC110 - the supervisor's own tasks end it
                    await trio.sleep(0.02)
            stopped_after = trio.current_time() - paused_at
        finally:
            private_redis.resume()
        # The last renewal was sent at most TTL/3 before the pause; the owner must stop before TTL.
        assert stopped_after < 1.5
        assert sup.counters.get("leases_lost", 0) >= 1
        nursery.cancel_scope.cancel()
