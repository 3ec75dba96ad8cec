"""Backpressure end to end: a client that stops reading is disconnected (never buffered without bound), and
after reconnecting with the last id it saw it gets every event, in order, exactly once.

The server runs in-process (the harness) on the real clock; the stalled client is a raw websocket
(``websocket-client``, in a worker thread) with a small receive buffer that stops calling ``recv``. A trio
client on another connection produces the traffic with large payloads, so the server's bounded outbound
buffer (4 MiB in server/http) overflows quickly.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import trio
import websocket

from server.testing import SupervisorHandle, collect_oh_events, event_ids, next_oh_event, user_message
from server.testing.plugin import MakeSupervisor

PAYLOAD = 240 * 1024  # under the 256 KiB action limit
BURST = 80  # ~19 MB fanned out: more than the 4 MiB buffer plus what the kernel's socket buffers hold


class StalledClient:
    """A raw Engine.IO/Socket.IO websocket client: joins, reads what it is told to, then stops reading."""

    def __init__(self, server: SupervisorHandle, cid: str, latest: int = -1) -> None:
        port = server.url.rsplit(":", 1)[1]
        self.url = (f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
                    f"&conversation_id={cid}&latest_event_id={latest}")
        self.ws: websocket.WebSocket | None = None
        self.events: list[dict[str, Any]] = []

    def join(self) -> None:
        self.ws = websocket.create_connection(
            self.url, timeout=10, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)]
        )
        assert str(self.ws.recv()).startswith("0")  # Engine.IO OPEN
        self.ws.send("40")
        assert str(self.ws.recv()).startswith("40")  # Socket.IO CONNECT accepted

    def read_one(self) -> bool:
        """Read one message; False when the server has closed the connection."""
        assert self.ws is not None
        try:
            message = self.ws.recv()
        except (websocket.WebSocketException, OSError):
            return False
        if not message:
            return False
        if isinstance(message, str) and message.startswith("42"):
            name, payload = json.loads(message[2:])
            if name == "oh_event":
                self.events.append(payload)
        elif message == "2":
            self.ws.send("3")
        return True

    def read_until_closed(self) -> None:
        while self.read_one():
            pass

    def close(self) -> None:
        """Drop the socket without a close handshake (``ws.close()`` would wait for the server's answer)."""
        if self.ws is not None:
            self.ws.shutdown()


async def wait_connections(server: SupervisorHandle, cid: str, n: int, timeout: float = 30) -> None:  # noqa: ASYNC109
    with trio.fail_after(timeout):
        while (info := server.info(cid)) is None or info.connections != n:  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_a_client_that_stops_reading_is_dropped_and_catches_up_on_reconnect(
    make_supervisor: MakeSupervisor,
) -> None:
    server = await make_supervisor(agent="none")
    cid = "slow-consumer"
    producer = await server.connect(cid)
    await next_oh_event(producer)
    stalled = StalledClient(server, cid)
    await trio.to_thread.run_sync(stalled.join)
    await trio.to_thread.run_sync(stalled.read_one)  # STATUS$READY; from here on it does not read
    await wait_connections(server, cid, 2)

    for i in range(BURST):
        assert await producer.call("oh_user_action", user_message(f"{i:04d}" + "x" * PAYLOAD)) == {"id": i}
        if server.info(cid) is not None and server.info(cid).connections == 1:  # type: ignore[union-attr]
            break  # the stalled connection has been dropped already
    await wait_connections(server, cid, 1)  # the producer stays; the stalled client was disconnected
    head = server.info(cid).last_event_id  # type: ignore[union-attr]
    await collect_oh_events(producer, until=head, timeout=30)  # the producer itself was never disturbed

    # The stalled client finds its connection closed; what it got before is a gap-free prefix.
    await trio.to_thread.run_sync(stalled.read_until_closed)
    stalled.close()
    seen = event_ids(stalled.events)
    assert seen == list(range(len(seen)))
    last = seen[-1] if seen else -1

    back = await server.connect(cid, latest_event_id=last)
    rest = await collect_oh_events(back, until=head, timeout=30)
    assert event_ids(rest) == list(range(last + 1, head + 1))  # every missed event, in order, once
    assert [e["message"][:4] for e in rest] == [f"{i:04d}" for i in range(last + 1, head + 1)]


async def test_a_replaying_client_that_falls_too_far_behind_is_dropped(
    make_supervisor: MakeSupervisor,
) -> None:
    server = await make_supervisor(agent="none", connection_lag_limit=20)
    cid = "lagging"
    producer = await server.connect(cid)
    await next_oh_event(producer)
    for i in range(60):  # a history far larger than the socket buffers
        await producer.call("oh_user_action", user_message(f"{i:04d}" + "x" * PAYLOAD))
    stalled = StalledClient(server, cid, latest=-1)
    await trio.to_thread.run_sync(stalled.join)  # its replay starts; it never reads
    await wait_connections(server, cid, 2)
    for i in range(60, 100):  # 40 live events: past the lag limit of 20
        await producer.call("oh_user_action", user_message(f"{i:04d}"))
    try:
        await wait_connections(server, cid, 1, timeout=1)  # fails: the stalled replay is never checked
    finally:
        stalled.close()
