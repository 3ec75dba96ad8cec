"""Connections on another node count for a session's owner (``actors.cluster.watchers``).

In process, two nodes on one real redis-server: n1 hosts the session, n2 serves a connection of it from
a tail. n1's idle deadline (``close_delay``) is moved with a ``MockClock`` (``rate=1``: Redis I/O runs in
real time, ``jump`` moves trio's clock past deadlines); the watcher entries live in Redis's own time.
- n1 does not passivate the session while n2 serves a connection; it does once that connection left;
- n1 closing the session with a status (operator passivation) closes n2's connection with it too;
- n1 releasing the session while n2 has a connection (a shutdown) makes n2 host it at once, and a Leave
  of a connection fed from the log then ends n2's tail although n2 hosts the session;
- n2 trying to host a session n1 (alive) holds gives up at once instead of waiting for n1's lease to
  expire (two connections to a new session on two nodes at the same moment).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from actors.cluster.node import ClusterNode, cluster_placement
from actors.config import SupervisorConfig
from actors.errors import SessionNotFound
from actors.lifecycle import ActorState
from actors.messages import Leave
from actors.stores._redis_keys import SessionKeys
from actors.stores.redis import RedisStore
from actors.supervisor import Supervisor
from tests.actors.conftest import act, join
from tests.support.redis_server import RedisServer

TTL = 30.0  # lease TTL (renewed every 10 s of trio time; every jump below stays under TTL - margin)
CLOSE_DELAY = 5.0
SID = "watched"


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(rate=1.0)


async def until(condition: Callable[[], bool], what: str) -> None:
    with trio.fail_after(10):
        while not condition():  # noqa: ASYNC110 - the nodes' tasks and Redis move it
            await trio.sleep(0.01)
    assert condition(), what


@asynccontextmanager
async def two_nodes(redis: RedisServer) -> AsyncIterator[tuple[ClusterNode, ClusterNode]]:
    nodes = []
    async with trio.open_nursery() as nursery:
        for name, close_delay in (("n1", CLOSE_DELAY), ("n2", 0.0)):
            store = RedisStore(redis.url, timeout=2.0)
            placement = cluster_placement(store, node_id=name, lease_ttl=TTL)
            assert placement is not None
            await store.open()
            config = SupervisorConfig(close_delay=close_delay, close_delay_jitter=0.0)
            sup = Supervisor(store, None, config, placement=placement)
            await nursery.start(sup.run)
            node = ClusterNode(store, placement, sup)
            await nursery.start(node.run)
            nodes.append(node)
        try:
            yield nodes[0], nodes[1]
        finally:
            nursery.cancel_scope.cancel()
            for node in nodes:
                with trio.CancelScope(shield=True):
                    await node.store.close()


def watchers(redis: RedisServer) -> list[bytes]:
    reply = redis.query("HKEYS", SessionKeys(SID).watchers)
    assert isinstance(reply, list)
    return reply


async def test_a_connection_on_another_node_keeps_the_owner_awake_until_it_leaves(
    redis_server: RedisServer, clock: trio.testing.MockClock
) -> None:
    async with two_nodes(redis_server) as (n1, n2):
        assert (await act(n1.supervisor, SID, "own")).event_id == 0  # n1 hosts it, no connection there
        actor = n1.supervisor.registry.get(SID)
        assert actor is not None
        await until(lambda: actor.state is ActorState.IDLE, "idle on n1")
        conn = await join(n2.supervisor, SID, "on-n2", latest=0)
        await until(lambda: watchers(redis_server) == [b"n2"], "n2 watches")

        clock.jump(CLOSE_DELAY + 1)  # n1's idle deadline passes: n2 is there
        await until(lambda: n1.watchers.kept_awake == 1, "deadline deferred")
        assert n1.supervisor.registry.get(SID) is actor and actor.state is ActorState.IDLE
        assert n1.supervisor.counters.get("passivations.idle", 0) == 0

        # Still served on n2 while n1 sleeps on: n2's action is routed to n1 and answered.
        assert (await act(n2.supervisor, SID, "from n2", conn_id="on-n2")).event_id == 1
        await until(lambda: conn.event_ids == [1], "n2's connection got the event")

        await n2.supervisor.deliver(SID, Leave("on-n2"), live_only=True)
        await until(lambda: watchers(redis_server) == [], "n2 no longer watches (close_delay 0)")
        await until(lambda: actor.state is ActorState.IDLE, "idle again on n1")
        clock.jump(TTL / 3 + 1)  # the next look: nobody is there now
        await until(lambda: n1.supervisor.registry.get(SID) is None, "passivated")
        assert n1.supervisor.counters.get("passivations.idle") == 1
        assert redis_server.query("GET", SessionKeys(SID).lease) is None


async def test_an_owner_closing_the_session_closes_the_connections_on_other_nodes(
    redis_server: RedisServer, clock: trio.testing.MockClock
) -> None:
    async with two_nodes(redis_server) as (n1, n2):
        local = await join(n1.supervisor, SID, "on-n1")
        remote = await join(n2.supervisor, SID, "on-n2")
        await until(lambda: watchers(redis_server) == [b"n2"], "n2 watches")
        assert await n1.supervisor.passivate(SID, "operator") is not None
        for conn in (local, remote):
            await until(lambda conn=conn: conn.closed is not None, f"{conn.id} closed")  # type: ignore[misc]
            statuses = [e.payload.get("id") for e in conn.sent if e.event_id is None]
            assert statuses[-1] == "STATUS$STOPPED", (conn.id, statuses)
        await until(lambda: n2.remote.tailed_sessions == 0 and watchers(redis_server) == [], "n2 done")
        assert n2.supervisor.registry.get(SID) is None  # closed, not taken over


async def test_a_released_session_with_a_connection_elsewhere_is_hosted_there(
    redis_server: RedisServer, clock: trio.testing.MockClock
) -> None:
    async with two_nodes(redis_server) as (n1, n2):
        assert (await act(n1.supervisor, SID, "own")).event_id == 0
        conn = await join(n2.supervisor, SID, "on-n2", latest=0)
        await until(lambda: watchers(redis_server) == [b"n2"], "n2 watches")
        assert await n1.supervisor.passivate(SID, "shutdown") is not None  # hands over, closes nothing here
        await until(lambda: n2.supervisor.registry.get(SID) is not None, "n2 hosts it")
        lease = redis_server.query("GET", SessionKeys(SID).lease)
        assert isinstance(lease, bytes) and lease.startswith(b"n2:"), lease
        assert conn.closed is None
        assert (await act(n2.supervisor, SID, "on n2 now", conn_id="on-n2")).event_id == 1
        await until(lambda: conn.event_ids == [1], "the connection got it once")
        # The connection is fed from the log although n2 hosts the session: its Leave ends the tail.
        await n2.supervisor.deliver(SID, Leave("on-n2"), live_only=True)
        await until(lambda: n2.remote.tailed_sessions == 0 and watchers(redis_server) == [], "tail ended")


async def test_a_node_that_loses_the_race_for_a_new_session_does_not_wait_for_the_lease(
    redis_server: RedisServer, clock: trio.testing.MockClock
) -> None:
    async with two_nodes(redis_server) as (n1, n2):
        assert (await act(n1.supervisor, SID, "own")).event_id == 0
        with trio.fail_after(TTL / 2):  # waiting for n1's lease would take TTL (n1 renews it anyway)
            with pytest.raises(SessionNotFound):
                await n2.supervisor.ensure(SID)
        assert n2.supervisor.registry.get(SID) is None
        conn = await join(n2.supervisor, SID, "on-n2", latest=-1)
        await until(lambda: conn.event_ids == [0], "served from the log")
        assert n2.remote.tailed_sessions == 1
