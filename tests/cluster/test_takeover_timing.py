"""A routed action whose owner died after the route counted it as a receiver: the sending node takes the
session over as the dead owner's lease expires (it looks again at the expiry the lease's PTTL reports),
not up to a quarter TTL later on a fixed poll (the kill -9 failover test once measured 2.40 s for TTL 2 s).

In process, one node (n2) on a real redis-server; the dead owner n1 is a lease set with a PX and a
subscriber on n1's ring (what a node that just died looks like to ROUTE). Real time, bounded waits.
"""

from __future__ import annotations

import time

import trio

from actors.cluster.node import ClusterNode, cluster_placement
from actors.config import SupervisorConfig
from actors.messages import ActResult
from actors.stores._redis_keys import SessionKeys, node_ring
from actors.stores.redis import RedisStore
from actors.supervisor import Supervisor
from tests.actors.conftest import act
from tests.support.redis_server import RedisServer

TTL = 2.0
LEFT_MS = 1200  # the dead owner's lease: checks every TTL/4 from the route would come 300 ms after it


async def test_a_dead_owners_session_is_taken_over_as_its_lease_expires(redis_server: RedisServer) -> None:
    sid = "orphan"
    keys = SessionKeys(sid)
    store = RedisStore(redis_server.url, timeout=1.0)
    placement = cluster_placement(store, node_id="n2", lease_ttl=TTL)
    assert placement is not None
    async with store, trio.open_nursery() as nursery:
        sup = Supervisor(store, None, SupervisorConfig(close_delay=None), placement=placement)
        await nursery.start(sup.run)
        node = ClusterNode(store, placement, sup)
        await nursery.start(node.run)
        results: list[ActResult] = []

        async def send() -> None:
            results.append(await act(sup, sid, "after the crash"))

        async with node.doorbells.listen(node_ring("n1")) as ring:  # n1 "listens": ROUTE counts it
            redis_server.command("SET", keys.fence, "1")
            redis_server.command("SET", keys.lease, "n1:1", "PX", str(LEFT_MS))
            expires = time.monotonic() + LEFT_MS / 1000  # no earlier than Redis expires it
            nursery.start_soon(send)
            with trio.fail_after(5):
                await ring.receive()  # routed while n1 held the lease: n2 waits for n1's answer
            with trio.fail_after(TTL * 2):
                while not results:  # noqa: ASYNC110 - send fills it
                    await trio.sleep(0.01)
        assert results == [ActResult(0)]  # answered once, by n2 from the inbox
        assert redis_server.command("GET", keys.lease) == b"n2:2"
        left_ms = int(redis_server.command("PTTL", keys.lease).lstrip(b":"))
        acquired = time.monotonic() - (TTL - left_ms / 1000)  # no earlier than n2 really took it
        assert acquired - expires <= 0.15, acquired - expires
        nursery.cancel_scope.cancel()
