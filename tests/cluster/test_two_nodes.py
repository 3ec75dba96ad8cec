"""Two ``supervisor serve`` nodes on one redis-server: one session, a connection on each node.

The node that first gets the session owns it; the other serves its connection from the shared log (a tail)
and routes its actions through the inbox, acked with the id the owner gave them. Both connections see the
same contiguous ids while both send. Real subprocesses and real time; every wait is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.stores._redis_keys import SessionKeys
from server.client import open_client
from server.testing import collect_oh_events, is_status, next_oh_event, user_message
from tests.gateway.server_process import ServerProcess
from tests.support.redis_server import RedisServer


def query(cid: str, latest: int = -1) -> dict[str, str]:
    return {"conversation_id": cid, "latest_event_id": str(latest)}


@pytest.fixture
def nodes(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[ServerProcess]]:
    procs = []
    for name in ("n1", "n2"):
        (tmp_path / name).mkdir()
        procs.append(ServerProcess(tmp_path / name, "--node-id", name, "--lease-ttl", "2", "--agent", "none",
                                   store=redis_server.url))
    try:
        for proc in procs:
            proc.start()
        yield procs
    finally:
        for proc in procs:
            proc.kill()


async def test_a_routed_action_is_acked_with_its_id_and_both_nodes_see_every_event(
    nodes: list[ServerProcess], redis_server: RedisServer
) -> None:
    n1, n2 = nodes
    async with open_client(n1.url, query=query("shared"), reconnect=False) as a:
        assert is_status("STATUS$READY")(await next_oh_event(a))
        assert await a.call("oh_user_action", user_message("first")) == {"id": 0}
        assert redis_server.command("GET", SessionKeys("shared").lease) == b"n1:1"
        async with open_client(n2.url, query=query("shared"), reconnect=False) as b:
            replayed = await collect_oh_events(b, until=is_status("STATUS$READY"))
            assert [e["id"] for e in replayed[:-1]] == [0]
            assert await b.call("oh_user_action", user_message("routed"), timeout=10) == {"id": 1}
            acks: dict[int, str] = {}

            async def send(client: Any, prefix: str) -> None:
                for i in range(20):
                    ack = await client.call("oh_user_action", user_message(f"{prefix}{i}"), timeout=10)
                    acks[ack["id"]] = f"{prefix}{i}"

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send, a, "a")
                nursery.start_soon(send, b, "b")
            assert sorted(acks) == list(range(2, 42))
            seen_a = await collect_oh_events(a, until=41, timeout=20)
            seen_b = await collect_oh_events(b, until=41, timeout=20)
    ids_a = [e["id"] for e in seen_a]
    ids_b = [e["id"] for e in seen_b]
    assert ids_a == list(range(42))
    assert ids_b == list(range(1, 42))
    assert {e["id"]: e["message"] for e in seen_b if e["id"] >= 2} == acks
    assert redis_server.command("XLEN", SessionKeys("shared").log) == b":42"
