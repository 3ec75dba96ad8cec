"""A real ``supervisor serve`` node while its redis-server is killed and restarted (AOF, appendfsync always).

While Redis is down, actions are answered at once with ``STATUS$ERROR_STORE_UNAVAILABLE`` (no hang), the
connection stays up and ``/healthz`` says 503; once Redis is back the same connection acts again and gets
the events. Redis SIGKILL and restart mid-traffic loses nothing acknowledged. Real processes, real time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio

from server.client import open_client
from server.testing import collect_oh_events, is_status, next_oh_event, user_message
from tests.gateway.server_process import ServerProcess
from tests.support.redis_server import RedisServer

UNAVAILABLE = "STATUS$ERROR_STORE_UNAVAILABLE"


def query(cid: str, latest: int = -1) -> dict[str, str]:
    return {"conversation_id": cid, "latest_event_id": str(latest)}


async def healthz(node: ServerProcess) -> int:
    stream = await trio.open_tcp_stream("127.0.0.1", node.port)
    async with stream:
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


async def act_until_acked(client: Any, text: str, within: float) -> dict[str, Any]:
    with trio.fail_after(within):
        while True:
            ack: dict[str, Any] = await client.call("oh_user_action", user_message(text), timeout=5)
            if "id" in ack:
                return ack
            assert ack["msg_id"] == UNAVAILABLE, ack
            await trio.sleep(0.1)


async def test_redis_down_then_up(tmp_path: Path, private_redis: RedisServer) -> None:
    node = ServerProcess(tmp_path, "--node-id", "n1", "--lease-ttl", "2", "--agent", "none",
                         store=private_redis.url)
    with node:
        async with open_client(node.url, query=query("down"), reconnect=False) as client:
            await next_oh_event(client)
            assert await client.call("oh_user_action", user_message("before")) == {"id": 0}
            assert await collect_oh_events(client, until=0)
            assert await healthz(node) == 200
            private_redis.kill()
            started = time.monotonic()
            ack = await client.call("oh_user_action", user_message("during"), timeout=5)
            assert ack["msg_id"] == UNAVAILABLE
            assert time.monotonic() - started < 3.0  # an error, not a hang
            assert await healthz(node) == 503
            await trio.sleep(2.5)  # longer than the lease: the owner stood down meanwhile
            ack = await client.call("oh_user_action", user_message("still down"), timeout=5)
            assert ack["msg_id"] == UNAVAILABLE
            private_redis.start()
            assert await act_until_acked(client, "after", within=10) == {"id": 1}
            events = await collect_oh_events(client, until=1, timeout=10)
            assert [e["message"] for e in events if e.get("id") == 1] == ["after"]
            assert await healthz(node) == 200


async def test_redis_sigkill_mid_traffic_loses_nothing_acknowledged(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    node = ServerProcess(tmp_path, "--node-id", "n1", "--lease-ttl", "2", "--agent", "none",
                         store=private_redis.url)
    acked: dict[int, str] = {}
    at_restart = 0
    with node:
        async with open_client(node.url, query=query("burst"), reconnect=False) as client:
            await next_oh_event(client)

            async def send() -> None:
                for i in range(400):
                    ack = await client.call("oh_user_action", user_message(f"m{i}"), timeout=10)
                    if "id" in ack:
                        assert ack["id"] not in acked
                        acked[ack["id"]] = f"m{i}"
                    else:
                        assert ack["msg_id"] == UNAVAILABLE, ack
                        await trio.sleep(0.05)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                while len(acked) < 50:  # noqa: ASYNC110 - the sender fills it
                    await trio.sleep(0.005)
                await trio.to_thread.run_sync(private_redis.restart)  # SIGKILL, then the AOF is replayed
                at_restart = len(acked)
        async with open_client(node.url, query=query("burst"), reconnect=False) as client:
            events = await collect_oh_events(client, until=is_status("STATUS$READY"), timeout=20)
    stored = {e["id"]: e["message"] for e in events[:-1]}
    assert sorted(stored) == list(range(len(stored)))  # contiguous
    assert all(stored[eid] == text for eid, text in acked.items()), "an acknowledged action was lost"
    assert len(set(stored.values())) == len(stored), "an action was stored twice"
    assert len(acked) > at_restart, "nothing was acknowledged after Redis came back"
