"""Idle polls are batched per node: N idle tailed sessions (or N idle held inboxes) cost O(1) Redis commands
per interval, not O(N), counted by the test's own redis-server (``INFO commandstats``). And the guarantee
the polls exist for still holds: an event or a routed action whose doorbell is lost (written to the
Stream behind Redis's pub/sub) is delivered within about one interval, exactly once.

In process, one node (``ClusterNode`` on a real redis-server of this test alone) and real time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from actors.cluster.node import ClusterNode, cluster_placement
from actors.config import SupervisorConfig
from actors.events import StoredEvent
from actors.messages import Join
from actors.stores._redis_keys import SessionKeys
from actors.stores.redis import RedisStore
from actors.supervisor import Supervisor
from tests.actors.conftest import FakeConn, act
from tests.support.redis_server import RedisServer

N = 200
INTERVAL = 0.5
WINDOW = 3.0  # seconds measured: six intervals


@asynccontextmanager
async def node(redis: RedisServer) -> AsyncIterator[tuple[Supervisor, ClusterNode]]:
    # A long TTL: no renewal or heartbeat falls in the measured window (those are not idle polls).
    store = RedisStore(redis.url, timeout=2.0)
    placement = cluster_placement(store, node_id="n1", lease_ttl=90.0)
    assert placement is not None
    async with store, trio.open_nursery() as nursery:
        sup = Supervisor(store, None, SupervisorConfig(close_delay=None), placement=placement)
        await nursery.start(sup.run)
        cluster = ClusterNode(store, placement, sup, idle_poll_interval=INTERVAL)
        await nursery.start(cluster.run)
        yield sup, cluster
        nursery.cancel_scope.cancel()


def commands(redis: RedisServer) -> dict[str, int]:
    """Calls per command since the last reset (``cmdstat_xread`` -> ``xread``), and ``total``."""
    counts = {
        key.removeprefix("cmdstat_"): int(value.split(",")[0].removeprefix("calls="))
        for key, value in redis.info("commandstats").items()
    }
    counts["total"] = int(redis.info("stats")["total_commands_processed"]) - 2  # the two INFO calls
    return counts


async def measure(redis: RedisServer) -> tuple[dict[str, int], float]:
    redis.query("CONFIG", "RESETSTAT")
    started = trio.current_time()
    await trio.sleep(WINDOW)
    counts = commands(redis)
    return counts, (trio.current_time() - started) / INTERVAL


def assert_o1(counts: dict[str, int], intervals: float) -> None:
    # Unbatched, N sessions would cost N reads per interval (about 1,200 here); batched, one XREAD each.
    assert counts.get("xrange", 0) == 0, counts
    assert counts.get("hget", 0) == 0, counts
    assert intervals - 2 <= counts.get("xread", 0) <= intervals + 1, (counts, intervals)
    assert counts["total"] <= 2 * intervals + 8, (counts, intervals)


async def test_idle_tailed_sessions_cost_one_redis_command_per_interval(private_redis: RedisServer) -> None:
    async with node(private_redis) as (sup, cluster):
        conns = {}
        for k in range(N):
            sid = f"t{k}"
            keys = SessionKeys(sid)
            private_redis.query("HSET", keys.meta, "c", "0", "l", "-1", "u", "-1")
            private_redis.query("SET", keys.lease, "ghost:1")  # another node owns it (and never renews)
            conns[sid] = FakeConn(f"c{k}")
            await sup.deliver(sid, Join(conns[sid], -1))
        assert cluster.remote.tailed_sessions == N and cluster.polls.watched == N
        await trio.sleep(2 * INTERVAL)  # joins settled
        counts, intervals = await measure(private_redis)
        assert_o1(counts, intervals)

        # A lost doorbell: the event is in the Stream but nobody published it.
        payload = {"message": "behind the doorbell's back"}
        private_redis.query("XADD", SessionKeys("t7").log, "0-1", "e", json.dumps(payload))
        private_redis.query("HSET", SessionKeys("t7").meta, "l", "0")
        sent_at = trio.current_time()
        with trio.fail_after(INTERVAL * 3):
            while not conns["t7"].event_ids:  # noqa: ASYNC110 - the node's tail delivers it
                await trio.sleep(0.01)
        assert trio.current_time() - sent_at <= INTERVAL * 2
        await trio.sleep(3 * INTERVAL)  # later polls must not deliver it again
        assert conns["t7"].event_ids == [0]
        assert [e.payload for e in conns["t7"].sent if e.event_id == 0] == [payload]
        assert all(not conns[f"t{k}"].event_ids for k in range(N) if k != 7)


async def test_idle_inboxes_of_held_sessions_cost_one_redis_command_per_interval(
    private_redis: RedisServer,
) -> None:
    async with node(private_redis) as (sup, cluster):
        for k in range(N):
            assert (await act(sup, f"h{k}", "own")).event_id == 0  # this node holds every one
        assert len(cluster.placement.states) == N
        await trio.sleep(3 * INTERVAL)  # each inbox read once under its lease: positions known
        counts, intervals = await measure(private_redis)
        assert_o1(counts, intervals)

        # A routed action whose ring was lost: in the inbox, but the owner's doorbell never rang.
        action = json.dumps({"action": "message", "args": {"content": "routed quietly"}})
        inbox_id = private_redis.query("XADD", SessionKeys("h3").inbox, "*", "a", action)
        assert isinstance(inbox_id, bytes)
        sent_at = trio.current_time()
        with trio.fail_after(INTERVAL * 3):
            while private_redis.query("XLEN", SessionKeys("h3").log) != 2:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert trio.current_time() - sent_at <= INTERVAL * 2
        await trio.sleep(3 * INTERVAL)
        entries = private_redis.query("XRANGE", SessionKeys("h3").log, "-", "+")
        assert isinstance(entries, list) and len(entries) == 2  # applied once
        _, fields = entries[1]
        event = dict(zip(fields[::2], fields[1::2], strict=True))
        assert event[b"i"] == inbox_id
        assert StoredEvent.from_json(1, event[b"e"].decode()).payload["args"]["content"] == "routed quietly"
        assert cluster.inbox.handed_over == N + 1  # the N first actions came through the inbox too
