"""Per-user caps across the cluster: two real ``supervisor serve`` nodes on one redis-server, cap 2.

A user's sessions are counted on every node: beyond the cap, their least recently active session is
passivated with AGENT_ERROR$TOO_MANY_CONVERSATIONS wherever it lives (a request routed to its owner node
when that is the other node), and another user's sessions are untouched. A killed node's sessions count
until their leases expire, then no longer. Real subprocesses and real time; every wait is bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio

from actors.stores._redis_keys import SessionKeys, user_sessions
from server.client import Client, DisconnectedError, open_client
from server.testing import collect_oh_events, is_status, next_oh_event, user_message
from tests.gateway.server_process import ServerProcess
from tests.support.redis_server import RedisServer

TTL = 2.0
TOO_MANY = "AGENT_ERROR$TOO_MANY_CONVERSATIONS"
KEYS = {"alice": "key-alice", "bob": "key-bob"}


@pytest.fixture
def nodes(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[ServerProcess]]:
    config = tmp_path / "caps.toml"
    config.write_text("[gateway.api_keys]\n" + "".join(f'{key} = "{user}"\n' for user, key in KEYS.items()))
    procs = []
    for name in ("n1", "n2"):
        (tmp_path / name).mkdir()
        procs.append(ServerProcess(
            tmp_path / name, "--config", str(config), "--node-id", name, "--lease-ttl", str(TTL),
            "--agent", "none", "--max-sessions-per-user", "2", store=redis_server.url,
        ))
    try:
        for proc in procs:
            proc.start()
        yield procs
    finally:
        for proc in procs:
            proc.kill()


class Sessions:
    """The test's connections, one per session, each opened as a user on a node (closed at the end)."""

    def __init__(self, stack: AsyncExitStack, redis: RedisServer) -> None:
        self.stack = stack
        self.redis = redis
        self.clients: dict[str, Client] = {}

    async def open(self, node: ServerProcess, user: str, sid: str) -> Client:
        client = await self.stack.enter_async_context(open_client(
            node.url, query={"conversation_id": sid, "latest_event_id": "-1"},
            auth={"token": KEYS[user]}, reconnect=False,
        ))
        assert is_status("STATUS$READY")(await next_oh_event(client))
        self.clients[sid] = client
        await self.until(lambda: self.indexed(user, sid), f"{sid} in {user}'s index")
        return client

    def indexed(self, user: str, sid: str) -> bool:
        return self.redis.query("HEXISTS", user_sessions(user), sid) == 1

    def leased(self, sid: str) -> bool:
        return self.redis.query("EXISTS", SessionKeys(sid).lease) == 1

    @staticmethod
    async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        with trio.move_on_after(timeout):
            while not check():  # noqa: ASYNC110 - the state lives in another process (Redis)
                await trio.sleep(0.05)
            return
        raise AssertionError(f"not within {timeout} s: {what}")

    async def evicted(self, sid: str) -> None:
        """``sid``'s connection gets TOO_MANY_CONVERSATIONS, then is closed; its lease is released."""
        client = self.clients.pop(sid)
        events = await collect_oh_events(client, until=is_status(TOO_MANY), timeout=15)
        assert events[-1]["type"] == "error"
        with pytest.raises(DisconnectedError):
            await next_oh_event(client, timeout=10)
        await self.until(lambda: not self.leased(sid), f"{sid}'s lease released")

    async def alive(self, sid: str, expected_id: int) -> None:
        """``sid``'s connection is up and its session answers an action, with no status in between."""
        client = self.clients[sid]
        ack = await client.call("oh_user_action", user_message("still here"), timeout=10)
        assert ack == {"id": expected_id}
        events = await collect_oh_events(client, until=expected_id, timeout=10)
        assert not [e for e in events if e.get("status_update")], events


def activity_of(redis: RedisServer, user: str, sid: str) -> int:
    """The last activity (unix ms) ``user``'s index holds for ``sid`` (-1: no entry)."""
    value = redis.query("HGET", user_sessions(user), sid)
    return int(value.split()[1]) if isinstance(value, bytes) else -1


async def test_the_least_recently_active_session_is_passivated_across_nodes(
    nodes: list[ServerProcess], redis_server: RedisServer
) -> None:
    n1, n2 = nodes
    async with AsyncExitStack() as stack:
        s = Sessions(stack, redis_server)
        await s.open(n1, "alice", "a-1")
        await s.open(n1, "bob", "b-1")
        await s.open(n2, "bob", "b-2")
        await s.open(n2, "alice", "a-2")
        # a-1 becomes the more recently active one: n1 refreshes its entry in alice's index.
        assert await s.clients["a-1"].call("oh_user_action", user_message("busy"), timeout=10) == {"id": 0}
        await s.until(lambda: activity_of(redis_server, "alice", "a-1")
                      > activity_of(redis_server, "alice", "a-2"), "a-1's activity refreshed")
        # Third session of alice, on n1: the victim is a-2, on n2 (least recently active, not oldest).
        await s.open(n1, "alice", "a-3")
        await s.evicted("a-2")
        # Fourth, on n2: of a-1 (acted) and a-3 (loaded after), a-1 on n1 goes.
        await s.open(n2, "alice", "a-4")
        await s.evicted("a-1")
        for sid in ("a-3", "a-4", "b-1", "b-2"):
            assert s.leased(sid), sid
            await s.alive(sid, 0)
        await s.until(lambda: not s.indexed("alice", "a-1") and not s.indexed("alice", "a-2"),
                      "ended sessions forgotten by the index")
        assert s.indexed("bob", "b-1") and s.indexed("bob", "b-2")


async def test_a_dead_nodes_sessions_stop_counting_when_their_leases_expire(
    nodes: list[ServerProcess], redis_server: RedisServer
) -> None:
    n1, n2 = nodes
    async with AsyncExitStack() as stack:
        s = Sessions(stack, redis_server)
        await s.open(n1, "alice", "x-1")
        await s.open(n2, "alice", "x-2")
        n2.kill()
        s.clients.pop("x-2")
        await s.until(lambda: not s.leased("x-2"), "x-2's lease expired", timeout=TTL + 3)
        # x-2 no longer counts: alice has x-1 and x-3 live, within the cap; the count drops x-2's entry.
        await s.open(n1, "alice", "x-3")
        await s.until(lambda: not s.indexed("alice", "x-2"), "the dead session forgotten")
        await s.alive("x-1", 0)
        await s.alive("x-3", 0)
        # The cap still holds: a fourth session passivates the least recently active one (x-1, here).
        await s.until(lambda: activity_of(redis_server, "alice", "x-3")
                      > activity_of(redis_server, "alice", "x-1"), "x-3's activity refreshed")
        await s.open(n1, "alice", "x-4")
        await s.evicted("x-1")
        await s.alive("x-3", 1)
