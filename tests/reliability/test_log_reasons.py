"""Accurate log reasons: a send to a client that just went away is not a "slow consumer", and a connection
refused for its Origin (CORS) is logged with its reason.

The fan-out case uses the actors' recording connection (it implements ``Connection``); the gateway's real
``SioConnection.disconnected`` is checked against a real Socket.IO server and client. The CORS case is a
real HTTP request with a foreign Origin to a real server.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from functools import partial
from typing import Any

import pytest
import socketio
import structlog
import trio

from actors.events import StoredEvent
from actors.fanout import FanOut
from actors.stores.memory import MemoryStore
from server.gateway.connection import SioConnection
from server.socketio import Server
from tests.actors.conftest import FakeConn


class GoneConn(FakeConn):
    """A client that disconnected: its sends fail, and it says so."""

    disconnected = True

    def send(self, event: Any) -> bool:
        return False


async def _publish_to(conn: FakeConn) -> list[dict[str, Any]]:
    store = MemoryStore()
    await store.open()
    await store.create("s1", None)
    fanout = FanOut(store)
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(fanout.run)
            fanout.attach("s1", conn, -1, head=-1)
            events = [StoredEvent.create(0, {"message": "m0"})]
            await store.append("s1", events)
            fanout.publish("s1", events)
            nursery.cancel_scope.cancel()
    return [entry for entry in logs if entry["event"] == "connection.dropped"]


async def test_a_send_to_a_gone_client_is_logged_as_disconnected() -> None:
    gone = GoneConn("gone")
    dropped = await _publish_to(gone)
    assert [(d["reason"], d["log_level"]) for d in dropped] == [("disconnected", "debug")]
    assert gone.closed == "disconnected"


async def test_a_full_buffer_is_still_a_slow_consumer() -> None:
    slow = FakeConn("slow", capacity=0)
    dropped = await _publish_to(slow)
    assert [(d["reason"], d["log_level"]) for d in dropped] == [("slow consumer", "info")]


async def test_sio_connection_knows_when_its_client_is_gone() -> None:
    sio = Server()
    sids: list[str] = []
    connected, gone = trio.Event(), trio.Event()

    @sio.on("connect")
    async def on_connect(sid: str, environ: Any, auth: Any) -> None:
        sids.append(sid)
        connected.set()

    @sio.on("disconnect")
    async def on_disconnect(sid: str, reason: Any) -> None:
        gone.set()

    def client(url: str, hold: trio.Event) -> None:
        c = socketio.Client()
        c.connect(url, wait_timeout=10)
        trio.from_thread.run(hold.wait)
        c.disconnect()

    async with trio.open_nursery() as nursery:
        http = await nursery.start(partial(sio.serve, "127.0.0.1", 0))
        hold = trio.Event()
        nursery.start_soon(partial(trio.to_thread.run_sync, client, http.url, hold))
        with trio.fail_after(20):
            await connected.wait()
            conn = SioConnection(sio, sids[0])
            assert not conn.disconnected
            hold.set()
            await gone.wait()
            assert conn.disconnected
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
async def test_a_refused_origin_is_logged_with_its_reason(method: str) -> None:
    sio = Server()

    def request(url: str) -> int:
        req = urllib.request.Request(
            f"{url}/socket.io/?EIO=4&transport=polling", method=method,
            headers={"Origin": "https://evil.example"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            http = await nursery.start(partial(sio.serve, "127.0.0.1", 0))
            with trio.fail_after(20):
                status = await trio.to_thread.run_sync(request, http.url)
            nursery.cancel_scope.cancel()
    assert status == 403
    refused = [entry for entry in logs if entry["event"] == "engineio.refused"]
    assert len(refused) == 1 and refused[0]["log_level"] == "info", logs
    assert refused[0]["reason"] == "origin not allowed (CORS)" and refused[0]["origin"] == "https://evil.example"
