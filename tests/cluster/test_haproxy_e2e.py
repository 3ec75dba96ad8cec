"""End to end: HAProxy (round robin, cookie stickiness) in front of three real ``supervisor serve`` nodes
on one redis-server, driven by the official Node ``socket.io-client`` (polling, then the upgrade to
WebSocket). Three clients join one session through the balancer, land on different nodes, all send, and
all see the same contiguous id sequence; every ack's id is the event it produced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from tests.gateway.server_process import ServerProcess
from tests.support.haproxy import HAProxy
from tests.support.js import ScenarioResult, run_scenario
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.js

PER_CLIENT = 5
CLIENTS = 3


def scenario(url: str, cid: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"op": "expect", "type": "event", "name": "oh_event", "count": 1}]
    for i in range(PER_CLIENT):
        steps.append({"op": "emitWithAck", "event": "oh_user_action",
                      "args": [{"action": "message", "args": {"content": f"m{i}"}}], "timeout": 10000})
    # READY, then every client's events.
    steps.append({"op": "expect", "type": "event", "name": "oh_event", "count": 1 + PER_CLIENT * CLIENTS,
                  "timeout": 20000})
    return {"url": url, "query": {"conversation_id": cid}, "options": {"withCredentials": True},
            "timeout": 40000, "steps": steps}


def served_by(node: ServerProcess) -> int:
    return node.log_path.read_text().count("gateway.joined")


async def test_three_nodes_behind_haproxy(tmp_path: Path, redis_server: RedisServer) -> None:
    nodes = []
    for name in ("n1", "n2", "n3"):
        (tmp_path / name).mkdir()
        nodes.append(ServerProcess(tmp_path / name, "--node-id", name, "--lease-ttl", "3", "--agent", "none",
                                   "--log-level", "debug", store=redis_server.url))
    try:
        for node in nodes:
            await trio.to_thread.run_sync(node.start)
        with HAProxy([(f"n{k + 1}", node.port) for k, node in enumerate(nodes)]) as lb:
            results: list[ScenarioResult] = []

            async def one() -> None:
                results.append(await run_scenario(scenario(lb.url, "behind-lb"), timeout=60))

            async with trio.open_nursery() as nursery:
                for _ in range(CLIENTS):
                    nursery.start_soon(one)
                    await trio.sleep(0.2)  # handshakes in turn: round robin spreads them
    finally:
        for node in nodes:
            node.kill()
    total = PER_CLIENT * CLIENTS
    acked = sorted(ack["args"][0]["id"] for r in results for ack in r.of_type("ack"))
    assert acked == list(range(total))
    for result in results:
        events = [e["args"][0] for e in result.events("oh_event")]
        assert [e["id"] for e in events if not e.get("status_update")] == list(range(total))
        assert any(c.get("type") == "connect" for c in result.lines)
    assert sum(1 for node in nodes if served_by(node) > 0) >= 2  # the balancer spread the clients
