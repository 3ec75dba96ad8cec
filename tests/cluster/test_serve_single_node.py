"""``supervisor serve --store redis://...`` as one node: a real subprocess on a real redis-server.

The client connects, acts, gets acks and events; the node is stopped (SIGTERM: passivation writes the
snapshot and releases the lease in one step; SIGKILL: the lease is left to expire) and started again, and a
reconnect with ``latest_event_id`` gets exactly the replay after it. Real time against subprocesses: every
wait is on a condition, bounded.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import trio

from actors.stores._redis_keys import SessionKeys
from server.client import DisconnectedError, open_client
from server.testing import collect_oh_events, is_status, next_oh_event, user_message
from tests.gateway.server_process import ServerProcess
from tests.support.redis_server import RedisServer


def query(cid: str, latest: int = -1) -> dict[str, str]:
    return {"conversation_id": cid, "latest_event_id": str(latest)}


async def history(url: str, cid: str, latest: int = -1) -> list[dict[str, Any]]:
    async with open_client(url, query=query(cid, latest), reconnect=False) as client:
        events = await collect_oh_events(client, until=is_status("STATUS$READY"), timeout=20)
    return events[:-1]


def lease_of(redis: RedisServer, cid: str) -> bytes:
    return redis.command("GET", SessionKeys(cid).lease)


async def test_one_node_on_redis_acts_restarts_and_replays(tmp_path: Path, redis_server: RedisServer) -> None:
    node = ServerProcess(tmp_path, "--node-id", "solo", "--lease-ttl", "3", store=redis_server.url)
    with node:
        async with open_client(node.url, query=query("r1"), reconnect=False) as client:
            assert is_status("STATUS$READY")(await next_oh_event(client))
            acks = [await client.call("oh_user_action", user_message(f"m{i}")) for i in range(3)]
            assert acks == [{"id": 0}, {"id": 2}, {"id": 4}]  # the echo agent answers each one
            events = await collect_oh_events(client, until=5)
            assert [e["id"] for e in events] == list(range(6))
            assert lease_of(redis_server, "r1") == b"solo:1"  # held while the session is live
            assert await trio.to_thread.run_sync(node.stop, signal.SIGTERM) == 0
            assert is_status("STATUS$STOPPED")(await next_oh_event(client))
            try:
                await next_oh_event(client)
            except DisconnectedError:
                pass
        assert lease_of(redis_server, "r1") == b"$-1"  # released with the snapshot: no TTL to wait out
        assert redis_server.command("XLEN", SessionKeys("r1").log) == b":6"
        await trio.to_thread.run_sync(node.start)
        replay = await history(node.url, "r1", latest=3)
        assert [e["id"] for e in replay] == [4, 5]
        assert replay[0]["message"] == "m2"
        async with open_client(node.url, query=query("r1", 5), reconnect=False) as client:
            assert is_status("STATUS$READY")(await next_oh_event(client))
            assert await client.call("oh_user_action", user_message("after")) == {"id": 6}


async def test_a_killed_node_restarts_once_its_lease_expires(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    node = ServerProcess(tmp_path, "--node-id", "solo", "--lease-ttl", "2", "--agent", "none",
                         store=redis_server.url)
    with node:
        async with open_client(node.url, query=query("k1"), reconnect=False) as client:
            await next_oh_event(client)
            acks = [await client.call("oh_user_action", user_message(f"k{i}")) for i in range(5)]
            assert acks == [{"id": i} for i in range(5)]
            await trio.to_thread.run_sync(node.kill)
        assert lease_of(redis_server, "k1") == b"solo:1"  # left behind by the crash
        await trio.to_thread.run_sync(node.start)  # a new pid, the same node id: still a new fence
        with trio.fail_after(10):
            while True:
                events = await history(node.url, "k1")
                if [e["id"] for e in events] == list(range(5)):
                    break
                await trio.sleep(0.2)
        async with open_client(node.url, query=query("k1", 4), reconnect=False) as client:
            first = await next_oh_event(client, timeout=10)
            # The old incarnation's lease still blocks for up to its TTL; the session comes back after.
            while not is_status("STATUS$READY")(first):
                first = await next_oh_event(client, timeout=10)
            assert await client.call("oh_user_action", user_message("again"), timeout=10) == {"id": 5}
        assert lease_of(redis_server, "k1") == b"solo:2"  # a new fence for the new incarnation
