"""A routed action in steady state costs no Stream read on either side: the owner takes the action from
its ring (which carries the entry and the inbox id before it) and the sending node takes the answering
event from the session's doorbell. Counted by the test's own redis-server (``INFO commandstats``): while
30 actions are routed one after another, ``XRANGE`` is never called (the inbox and the log are only
written). A ring that does not follow what was handed over (here: an entry added behind the ring's back)
makes the owner read the inbox instead, and nothing is handed over twice.

In process, two nodes on a real redis-server of this test alone, real time.
"""

from __future__ import annotations

import trio

from actors.cluster.inbox import InboxEntry, Ring
from actors.cluster.node import ClusterNode, cluster_placement
from actors.config import SupervisorConfig
from actors.stores._redis_keys import SessionKeys
from actors.stores.redis import RedisStore
from actors.supervisor import Supervisor
from tests.actors.conftest import act, join
from tests.support.redis_server import RedisServer

SID = "fast"


def calls(redis: RedisServer, command: str) -> int:
    stat = redis.info("commandstats").get(f"cmdstat_{command}")
    return 0 if stat is None else int(stat.split(",")[0].removeprefix("calls="))


async def test_routed_actions_are_taken_from_the_ring_and_answered_from_the_doorbell(
    private_redis: RedisServer,
) -> None:
    stores = [RedisStore(private_redis.url, timeout=2.0) for _ in range(2)]
    async with stores[0], stores[1], trio.open_nursery() as nursery:
        nodes = []
        for name, store in zip(("n1", "n2"), stores, strict=True):
            placement = cluster_placement(store, node_id=name, lease_ttl=10.0)
            assert placement is not None
            sup = Supervisor(store, None, SupervisorConfig(close_delay=None), placement=placement)
            await nursery.start(sup.run)
            node = ClusterNode(store, placement, sup)
            await nursery.start(node.run)
            nodes.append(node)
        n1, n2 = nodes
        assert (await act(n1.supervisor, SID, "own")).event_id == 0
        conn = await join(n2.supervisor, SID, "on-n2", latest=0)
        assert (await act(n2.supervisor, SID, "warm up", conn_id="on-n2")).event_id == 1  # first read

        taken = n1.inbox.taken_from_ring
        before = calls(private_redis, "xrange")
        for k in range(30):
            assert (await act(n2.supervisor, SID, f"routed {k}", conn_id="on-n2")).event_id == 2 + k
        assert calls(private_redis, "xrange") == before
        assert n1.inbox.taken_from_ring == taken + 30

        # An entry the ring never announced: the next ring does not follow the last one handed over.
        inbox = SessionKeys(SID).inbox
        private_redis.query("XADD", inbox, "*", "a", '{"action":"message","args":{"content":"sneaked"}}')
        assert (await act(n2.supervisor, SID, "after the gap", conn_id="on-n2")).event_id == 33
        assert calls(private_redis, "xrange") > before  # the owner read its inbox
        with trio.fail_after(10):
            while conn.event_ids[-1:] != [33]:  # noqa: ASYNC110 - the tail moves it
                await trio.sleep(0.01)
        texts = [e.payload.get("message") for e in conn.sent if e.event_id is not None]
        assert texts[-2:] == ["sneaked", "after the gap"]  # each once, in inbox order
        assert conn.event_ids == list(range(1, 34))
        nursery.cancel_scope.cancel()


async def test_a_ring_is_taken_only_after_what_was_handed_over_under_the_lease_held_now(
    redis_server: RedisServer,
) -> None:
    """Positions are per lease: one handed over under an earlier lease of this node (whose act the actor
    then dropped, ``Act.inbox_fence``) says nothing of what the current lease has done; taking a ring that
    follows it would skip the entry the new lease must redo."""
    store = RedisStore(redis_server.url, timeout=2.0)
    async with store, trio.open_nursery() as nursery:
        placement = cluster_placement(store, node_id="n1", lease_ttl=10.0)
        assert placement is not None
        sup = Supervisor(store, None, SupervisorConfig(close_delay=None), placement=placement)
        await nursery.start(sup.run)
        node = ClusterNode(store, placement, sup)
        assert (await act(sup, SID, "own")).event_id == 0
        fence = placement.states[SID].lease.fence
        action = '{"action":"message","args":{"content":"x"}}'
        ring = Ring(SID, InboxEntry("6-0", action), "5-0")
        node.inbox.positions[SID] = (fence - 1, "5-0")  # 5-0 was handed over under the earlier lease
        assert await node.inbox.take(ring) is False  # read the inbox instead
        node.inbox.positions[SID] = (fence, "7-0")  # under this lease, already past 6-0
        assert await node.inbox.take(ring) is None
        assert node.inbox.handed_over == 0 and node.inbox.taken_from_ring == 0
        assert await node.inbox.take(Ring("elsewhere", InboxEntry("6-0", action), "5-0")) is None  # not held
        nursery.cancel_scope.cancel()
