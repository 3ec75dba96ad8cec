"""After a refusal (CONNECT_ERROR) the server should close the connection (DESIGN.md, "The wire
contract"): a client that never joins a namespace must not hold a socket open."""

from __future__ import annotations

import trio
import websocket

from tests.gateway.server_process import ServerProcess


def refused_then_closed(url: str) -> bool:
    """Connect a raw websocket without conversation_id; True if the server closes it after the refusal."""
    port = url.rsplit(":", 1)[1]
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", timeout=1)
    try:
        assert str(ws.recv()).startswith("0")
        ws.send("40")
        refusal = str(ws.recv())
        assert refusal.startswith("44") and "CONNECT$MISSING_CONVERSATION_ID" in refusal
        try:
            return not ws.recv()  # an empty read: the server closed
        except websocket.WebSocketConnectionClosedException:
            return True
        except websocket.WebSocketTimeoutException:
            return False
    finally:
        ws.shutdown()


async def test_a_refused_connection_is_closed_by_the_server(hook_server: ServerProcess) -> None:
    assert await trio.to_thread.run_sync(refused_then_closed, hook_server.url)
