"""Cluster mode's operator surface on two real nodes: ``/admin/status`` (node_id, nodes with session
counts), ``/admin/sessions[/ID]`` (owner_node, fence), ``/metrics`` (leases held, routed actions, Redis
latency), and ``supervisor status`` / ``sessions show`` printing them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import trio

from server.client import open_client
from server.testing import next_oh_event, user_message
from tests.gateway.server_process import ServerProcess, supervisor_command
from tests.support.redis_server import RedisServer

TOKEN = "cluster-admin-token"


async def get(node: ServerProcess, path: str) -> tuple[int, bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", node.port)
    async with stream:
        await stream.send_all(
            f"GET {path} HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n"
            .encode()
        )
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size_text, _, rest = rest.partition(b"\r\n")
            size = int(size_text, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    return int(head.split(b" ", 2)[1]), body


async def get_json(node: ServerProcess, path: str) -> Any:
    status, body = await get(node, path)
    assert status == 200, (status, body)
    return json.loads(body)


def cli(node: ServerProcess, *args: str) -> str:
    done = subprocess.run(
        [*supervisor_command(), *args, "--url", node.url, "--token", TOKEN],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_status_sessions_and_metrics_show_nodes_and_leases(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    nodes = []
    for name in ("n1", "n2"):
        (tmp_path / name).mkdir()
        nodes.append(ServerProcess(tmp_path / name, "--node-id", name, "--lease-ttl", "3", "--agent", "none",
                                   "--admin-token", TOKEN, store=redis_server.url))
    try:
        for node in nodes:
            await trio.to_thread.run_sync(node.start)
        n1, n2 = nodes
        async with open_client(n1.url, query={"conversation_id": "ops"}, reconnect=False) as a:
            await next_oh_event(a)
            assert await a.call("oh_user_action", user_message("x")) == {"id": 0}
            async with open_client(n2.url, query={"conversation_id": "ops", "latest_event_id": "0"},
                                   reconnect=False) as b:
                await next_oh_event(b)
                assert await b.call("oh_user_action", user_message("y"), timeout=10) == {"id": 1}
                status = await get_json(n2, "/admin/status")
                assert status["node_id"] == "n2"
                counts = {n["node_id"]: n["sessions"] for n in status["nodes"]}
                assert sorted(counts) == ["n1", "n2"]
                assert counts["n2"] == 0 and counts["n1"] in (0, 1)  # as of n1's last heartbeat (1 s)
                shown = await get_json(n2, "/admin/sessions/ops")
                assert (shown["owner_node"], shown["fence"]) == ("n1", 1)
                listed = await get_json(n1, "/admin/sessions")
                assert [(s["session_id"], s["owner_node"]) for s in listed["sessions"]] == [("ops", "n1")]
                code, metrics = await get(n1, "/metrics")
                assert code == 200
                text = metrics.decode()
                assert "supervisor_cluster_leases_held 1.0" in text
                assert "supervisor_cluster_redis_latency_seconds" in text
                code, metrics = await get(n2, "/metrics")
                assert "supervisor_cluster_routed_actions_total 1.0" in metrics.decode()
                out = await trio.to_thread.run_sync(lambda: cli(n2, "status"))
                assert "n2" in out and "n1" in out and "nodes" in out
                out = await trio.to_thread.run_sync(lambda: cli(n2, "sessions", "show", "ops"))
                assert "owner node" in out and "n1" in out and "fence" in out
    finally:
        for node in nodes:
            node.kill()
