"""Requests to a session's owner node through the inbox, and the batched idle poll, in process on a real
redis-server: a passivation request is obeyed only under the lease it names (one read again after a
failover names an earlier lease and is ignored); the idle poll checks its Streams ``keys_per_call`` at a
time and wakes only the readers whose Stream has moved past their position.
"""

from __future__ import annotations

from contextlib import ExitStack

import trio

from actors.cluster.inbox import request
from actors.cluster.node import ClusterNode, cluster_placement
from actors.cluster.polling import IdlePolls, stream_position
from actors.config import SupervisorConfig
from actors.eviction import TOO_MANY_CONVERSATIONS
from actors.messages import Join
from actors.stores._redis_keys import SessionKeys
from actors.stores.redis import RedisStore
from actors.supervisor import Supervisor
from tests.actors.conftest import FakeConn, act
from tests.support.redis_server import RedisServer


async def test_a_passivation_request_is_obeyed_only_under_the_lease_it_names(
    redis_server: RedisServer,
) -> None:
    store = RedisStore(redis_server.url, timeout=2.0)
    placement = cluster_placement(store, node_id="n1", lease_ttl=6.0)
    assert placement is not None
    async with store, trio.open_nursery() as nursery:
        sup = Supervisor(store, None, SupervisorConfig(close_delay=None), placement=placement)
        await nursery.start(sup.run)
        cluster = ClusterNode(store, placement, sup, idle_poll_interval=0.2)
        await nursery.start(cluster.run)
        assert (await act(sup, "r1", "own")).event_id == 0
        conn = FakeConn("c1")
        await sup.deliver("r1", Join(conn, 0))
        fence = placement.states["r1"].lease.fence
        routed = await request(store, "r1", f"passivate {fence - 1} user_cap")  # an earlier lease's
        assert routed.owner == "n1" and routed.receivers == 1
        with trio.fail_after(5):
            while cluster.inbox.positions.get("r1", (0, ""))[1] != routed.inbox_id:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert conn.closed is None and sup.info("r1") is not None and cluster.users.obeyed == 0
        routed = await request(store, "r1", f"passivate {fence} user_cap")
        with trio.fail_after(5):
            while conn.closed is None:  # noqa: ASYNC110 - the owner's inbox reader obeys
                await trio.sleep(0.01)
        assert conn.statuses[-1] == TOO_MANY_CONVERSATIONS
        assert cluster.users.obeyed == 1
        with trio.fail_after(5):
            while redis_server.query("EXISTS", SessionKeys("r1").lease) != 0:  # noqa: ASYNC110
                await trio.sleep(0.01)  # passivated: the lease went with the snapshot
        # Requests are not actions: the log holds the one event, and the next owner skips both requests.
        assert redis_server.query("XLEN", SessionKeys("r1").log) == 1
        assert (await act(sup, "r1", "back")).event_id == 1
        await trio.sleep(0.5)
        assert sup.info("r1") is not None and cluster.users.obeyed == 1
        nursery.cancel_scope.cancel()


def watcher(polls: IdlePolls, stack: ExitStack, name: str, sid: str, seen: int, woken: list[str]) -> None:
    """A reader called ``name`` of ``sid``'s log that has seen up to event ``seen``."""
    stack.enter_context(polls.watch(
        SessionKeys(sid).log, lambda: stream_position(seen), lambda: woken.append(name)
    ))


async def test_the_idle_poll_reads_in_chunks_and_wakes_only_the_streams_that_moved(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    polls = IdlePolls(redis_store, interval=60, keys_per_call=3)
    for sid in ("p1", "p5", "p6"):
        redis_server.query("XADD", SessionKeys(sid).log, "0-1", "e", "{}")  # event 0
    woken: list[str] = []
    with ExitStack() as stack:
        for k in range(7):
            watcher(polls, stack, f"p{k}", f"p{k}", 0 if k == 6 else -1, woken)  # p6 has seen event 0
        watcher(polls, stack, "p5-again", "p5", 0, woken)  # a second reader of p5, caught up
        assert polls.watched == 8
        await polls.poll_once()
    assert polls.calls == 3  # 7 Streams, at most 3 per call
    # Readers of a Stream that has moved past the lowest position among them are all woken (each one
    # reads from its own position: a needless wake-up costs a read, never a duplicate).
    assert sorted(woken) == ["p1", "p5", "p5-again"]
    assert polls.watched == 0
