"""Connections on another node count for a session's owner (``actors.cluster.watchers``).

In process, two nodes on one real redis-server: n1 hosts the session, n2 serves a connection of it from
a tail. n1's idle deadline (``close_delay``) is moved with a ``MockClock`` (``rate=1``: Redis I/O runs in
real time, ``jump`` moves trio's clock past deadlines); the watcher entries live in Redis's own time.
- n1 does not passivate the session while n2 serves a connection; it does once that connection left;
- n1 closing the session with a status (operator passivation) closes n2's connection with it too;
- n1 releasing the session while n2 has a connection (a shutdown) makes n2 host it at once, and a Leave
  of a connection fed from the log then ends n2's tail although n2 hosts the session;
- n2 trying to host a session n1 (alive) holds gives up at once instead of waiting for n1's lease to
  expire (two connections to a new session on two nodes at the same moment);
- only an idle passivation and a shutdown tell watchers to host the session: a capacity eviction on a node
  that serves the session's connections from a tail does not bring it back at once (which would evict the
  next one, and so on), a kill (an operator's delete) closes the other nodes' connections instead of
  re-creating the session there, and a session that fails where it was re-hosted is not loaded again and
  again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from actors.cluster.node import ClusterNode, cluster_placement
from actors.config import SupervisorConfig
from actors.errors import SessionNotFound
from actors.lifecycle import ActorState
from actors.messages import Leave
from actors.restart import RestartConfig, RestartPolicy
from actors.stores._redis_keys import SessionKeys
from actors.stores.redis import RedisStore
from actors.supervisor import Supervisor
from tests.actors.conftest import FakeConn, act, join
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


def config(close_delay: float | None, **kw: Any) -> SupervisorConfig:
    return SupervisorConfig(close_delay=close_delay, close_delay_jitter=0.0, **kw)


@asynccontextmanager
async def two_nodes(
    redis: RedisServer, first: SupervisorConfig | None = None, second: SupervisorConfig | None = None,
    second_agents: Any = None,
) -> AsyncIterator[tuple[ClusterNode, ClusterNode]]:
    """n1 (``close_delay`` 5 s by default) and n2 (0 s: its watcher entries end with its connections)."""
    nodes = []
    setups = (("n1", first or config(CLOSE_DELAY), None), ("n2", second or config(0.0), second_agents))
    async with trio.open_nursery() as nursery:
        for name, cfg, agents in setups:
            store = RedisStore(redis.url, timeout=2.0)
            placement = cluster_placement(store, node_id=name, lease_ttl=TTL)
            assert placement is not None
            await store.open()
            sup = Supervisor(store, agents, cfg, placement=placement)
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


async def hosted_on_n1_watched_from_n2(n1: ClusterNode, n2: ClusterNode, redis: RedisServer) -> FakeConn:
    """n1 hosts ``SID`` (event 0, no connection there); n2 serves a connection of it and is its watcher."""
    assert (await act(n1.supervisor, SID, "own")).event_id == 0
    conn = await join(n2.supervisor, SID, "on-n2", latest=0)
    await until(lambda: watchers(redis) == [b"n2"], "n2 watches")
    return conn


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
        conn = await hosted_on_n1_watched_from_n2(n1, n2, redis_server)
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


async def until_still(condition: Callable[[], bool], what: str, settle: float = 1.0) -> None:
    """``condition`` holds, and still holds ``settle`` seconds later (nothing keeps churning)."""
    await until(condition, what)
    await trio.sleep(settle)
    assert condition(), f"{what}: no longer after {settle} s"


async def test_a_capacity_eviction_does_not_bring_a_watched_session_back(
    redis_server: RedisServer, clock: trio.testing.MockClock
) -> None:
    async with two_nodes(redis_server, second=config(0.0, max_live_sessions=1)) as (n1, n2):
        for sid in ("s1", "s2"):
            assert (await act(n1.supervisor, sid, "own")).event_id == 0
            await join(n2.supervisor, sid, f"on-n2-{sid}", latest=0)
        await n1.supervisor.passivate("s1", "shutdown")
        await until(lambda: n2.supervisor.registry.get("s1") is not None, "n2 hosts s1")
        await n1.supervisor.passivate("s2", "shutdown")  # n2 hosts s2 and, at its cap, evicts s1
        counters = n2.supervisor.counters
        await until_still(lambda: counters.get("evictions.capacity") == 1, "one eviction, no churn")
        assert n2.supervisor.registry.get("s1") is None and n2.supervisor.registry.get("s2") is not None
        assert n2.remote.tailed_sessions == 2  # both connections still served from the log


async def test_a_kill_closes_the_connections_on_other_nodes_and_a_delete_stays_deleted(
    redis_server: RedisServer, clock: trio.testing.MockClock
) -> None:
    async with two_nodes(redis_server) as (n1, n2):
        conn = await hosted_on_n1_watched_from_n2(n1, n2, redis_server)
        assert await n1.supervisor.kill(SID)
        await n1.store.delete(SID)  # what an operator's delete does after the kill
        await until(lambda: conn.closed is not None, "n2's connection closed")
        assert [e.payload.get("id") for e in conn.sent if e.event_id is None][-1] == "STATUS$STOPPED"
        await until_still(lambda: redis_server.query("EXISTS", SessionKeys(SID).meta) == 0, "still deleted")
        assert n2.supervisor.registry.get(SID) is None and n2.remote.tailed_sessions == 0


async def test_a_session_that_fails_where_it_was_rehosted_is_not_loaded_again(
    redis_server: RedisServer, clock: trio.testing.MockClock
) -> None:
    loads: list[str] = []

    def failing_agent() -> Any:
        loads.append(SID)
        raise RuntimeError("this node cannot start the session's agent")

    temporary = config(0.0, restart=RestartConfig(policy=RestartPolicy.TEMPORARY))
    async with two_nodes(redis_server, second=temporary, second_agents=failing_agent) as (n1, n2):
        conn = await hosted_on_n1_watched_from_n2(n1, n2, redis_server)
        await n1.supervisor.passivate(SID, "shutdown")  # released: n2 hosts it, and it fails there
        await until(lambda: conn.closed is not None, "the failure closed n2's connection")
        assert [e.payload.get("id") for e in conn.sent if e.event_id is None][-1] == "STATUS$ERROR"
        await until_still(lambda: loads == [SID], "loaded once")


async def test_a_close_announced_under_an_old_lease_closes_nothing(
    redis_server: RedisServer, clock: trio.testing.MockClock
) -> None:
    """An owner that lost its lease may announce late: the tails check the fence against the lease."""
    async with two_nodes(redis_server) as (n1, n2):
        local = await join(n1.supervisor, SID, "on-n1")
        assert (await act(n1.supervisor, SID, "own", conn_id="on-n1")).event_id == 0
        remote = await join(n2.supervisor, SID, "on-n2", latest=0)
        await until(lambda: watchers(redis_server) == [b"n2"], "n2 watches")
        stale = '{"status_update":true,"type":"info","id":"STATUS$STOPPED","message":"late"}'
        assert redis_server.query("PUBLISH", SessionKeys(SID).channel, f"closed 0 {stale}") == 1
        # The tail handles the notice before the doorbells behind it: had it closed the connection, it
        # would have ended there, and event 2 could not reach it.
        assert (await act(n1.supervisor, SID, "still here", conn_id="on-n1")).event_id == 1
        assert (await act(n1.supervisor, SID, "and here", conn_id="on-n1")).event_id == 2
        await until(lambda: remote.event_ids == [1, 2], "n2's connection still fed")
        assert remote.closed is None and local.closed is None and n2.remote.tailed_sessions == 1
