"""Routed actions are acked by (session, inbox id): inbox ids are Stream ids of each session's own inbox,
so two sessions' actions routed in the same millisecond get the same id (``scripts/bench-cluster``'s
routed phase lost one ack in two runs that way: the second waiter replaced the first).

In process, two nodes on one real redis-server: n1 owns both sessions, n2 has a connection on each (a
tail) and routes one action to each. Both inboxes are set to the same last id first, which makes the
collision certain instead of a matter of timing, and n1 reads its inbox only once both are routed, so
both of n2's waiters exist before either answer comes back.
"""

from __future__ import annotations

import trio

from actors.cluster.inbox import parse_ring
from actors.cluster.node import ClusterNode, cluster_placement
from actors.config import SupervisorConfig
from actors.messages import ActResult, Join
from actors.stores._redis_keys import SessionKeys, node_ring
from actors.stores.redis import RedisStore
from actors.supervisor import Supervisor
from tests.actors.conftest import FakeConn, act
from tests.support.redis_server import RedisServer

SIDS = ("same-a", "same-b")
LAST = "9999999999999-0"  # both inboxes' last id: the next routed action gets 9999999999999-1 in each


async def test_routed_actions_of_two_sessions_with_one_inbox_id_are_both_acked(
    redis_server: RedisServer,
) -> None:
    store1, store2 = RedisStore(redis_server.url, timeout=2.0), RedisStore(redis_server.url, timeout=2.0)
    p1 = cluster_placement(store1, node_id="n1", lease_ttl=3.0)
    p2 = cluster_placement(store2, node_id="n2", lease_ttl=3.0)
    assert p1 is not None and p2 is not None
    async with store1, store2, trio.open_nursery() as nursery:
        sup1 = Supervisor(store1, None, SupervisorConfig(close_delay=None), placement=p1)
        sup2 = Supervisor(store2, None, SupervisorConfig(close_delay=None), placement=p2)
        await nursery.start(sup1.run)
        await nursery.start(sup2.run)
        node1, node2 = ClusterNode(store1, p1, sup1), ClusterNode(store2, p2, sup2)
        await nursery.start(node2.run)
        for sid in SIDS:
            assert (await act(sup1, sid, "own")).event_id == 0  # n1 hosts both sessions
            inbox = SessionKeys(sid).inbox
            redis_server.command("XADD", inbox, LAST, "a", "x")
            redis_server.command("XDEL", inbox, LAST)  # empty, but ids continue after LAST
        conns = {sid: FakeConn(f"conn-{sid}") for sid in SIDS}
        for sid in SIDS:
            await sup2.deliver(sid, Join(conns[sid], 0))  # n2 tails the session's log
        assert node2.remote.tailed_sessions == 2
        await nursery.start(node1.doorbells.run)
        results: dict[str, ActResult] = {}

        async def route_one(sid: str) -> None:
            results[sid] = await act(sup2, sid, f"routed to {sid}")

        # n1 listens on its ring (the routes see a live owner) but does not read its inbox yet.
        async with node1.doorbells.listen(node_ring("n1")) as ring:
            for sid in SIDS:
                nursery.start_soon(route_one, sid)
            with trio.fail_after(5):
                rings = [parse_ring(await ring.receive()) for _ in SIDS]
        rang = {(r.entry.inbox_id, r.session_id) for r in rings}
        assert rang == {("9999999999999-1", sid) for sid in SIDS}  # one inbox id, two sessions
        assert node2.answers.routed == 2 and not results
        await nursery.start(node1.inbox.run)  # n1 now answers both (its poll reads every held session)
        with trio.fail_after(10):
            while len(results) < 2:  # noqa: ASYNC110 - the routing tasks fill it
                await trio.sleep(0.01)
        assert results == {sid: ActResult(1) for sid in SIDS}
        for sid in SIDS:
            assert conns[sid].event_ids == [1]  # joined after 0: the routed event, once
            assert [e.payload["message"] for e in conns[sid].sent if e.event_id == 1] == [f"routed to {sid}"]
        nursery.cancel_scope.cancel()
