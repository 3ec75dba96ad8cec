"""Engine.IO over real sockets: the real HTTP server on 127.0.0.1 (ephemeral port), raw HTTP requests and
websockets from threads (requests, websocket-client), and python-engineio's own client."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import engineio
import pytest
import requests
import trio
import websocket

from server.engineio import EngineConfig, EngineServer
from server.engineio.codec import PONG, Packet
from server.engineio.protocol import SocketProtocol
from server.http import Router, open_http_server
from tests.engineio.helpers import RecordingApp

TIMEOUT = 10


@dataclass
class Live:
    url: str
    ws_url: str
    app: RecordingApp
    engine: EngineServer


@asynccontextmanager
async def live_server(config: EngineConfig | None = None) -> AsyncIterator[Live]:
    app = RecordingApp()
    engine = EngineServer(app, config or EngineConfig())
    router = Router()
    router.mount("/engine.io/", engine.handle)
    async with trio.open_nursery() as nursery, open_http_server(router) as http:
        await nursery.start(engine.run)
        yield Live(f"{http.url}/engine.io/", http.url.replace("http", "ws", 1) + "/engine.io/", app, engine)
        nursery.cancel_scope.cancel()


def handshake(url: str) -> str:
    response = requests.get(url, params={"EIO": "4", "transport": "polling"}, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.text[0] == "0"
    return str(json.loads(response.text[1:])["sid"])


async def test_raw_polling_session() -> None:
    async with live_server() as live:
        def run() -> None:
            sid = handshake(live.url)
            params = {"EIO": "4", "transport": "polling", "sid": sid}
            posted = requests.post(live.url, params=params, data="4hello\x1ebAQIDBA==", timeout=TIMEOUT)
            assert (posted.status_code, posted.text) == (200, "ok")
            polled = requests.get(live.url, params=params, timeout=TIMEOUT)
            assert polled.text == "4hello\x1ebAQIDBA=="
            assert polled.headers["content-type"] == "text/plain; charset=UTF-8"
            bad = requests.post(live.url, params=params, data="abc", timeout=TIMEOUT)
            assert bad.status_code == 400
            assert bad.json() == {"code": 3, "message": "Bad request"}
            gone = requests.get(live.url, params=params, timeout=TIMEOUT)
            assert gone.json() == {"code": 1, "message": "Session ID unknown"}

        await trio.to_thread.run_sync(run)


async def test_raw_error_codes() -> None:
    async with live_server() as live:
        def run() -> None:
            cases = [
                ({"EIO": "4"}, "GET", 400, 0),
                ({"EIO": "4", "transport": "polling", "sid": "x"}, "GET", 400, 1),
                ({"EIO": "4", "transport": "polling"}, "POST", 400, 2),
                ({"EIO": "4", "transport": "websocket"}, "GET", 400, 3),
                ({"EIO": "3", "transport": "polling"}, "GET", 400, 5),
            ]
            for params, method, status, code in cases:
                response = requests.request(method, live.url, params=params, timeout=TIMEOUT)
                assert response.status_code == status, params
                assert response.json()["code"] == code, params
            forbidden = requests.get(live.url, params={"EIO": "4", "transport": "polling"},
                                     headers={"Origin": "https://evil.example"}, timeout=TIMEOUT)
            assert forbidden.status_code == 403
            assert forbidden.json() == {"code": 4, "message": "Forbidden"}
            sid = handshake(live.url)
            big = requests.post(live.url, params={"EIO": "4", "transport": "polling", "sid": sid},
                                data="4" + "x" * 1_000_000, timeout=TIMEOUT)
            assert big.status_code == 413

        await trio.to_thread.run_sync(run)


async def test_raw_websocket_upgrade_like_the_protocol_suite() -> None:
    async with live_server() as live:
        def run() -> None:
            sid = handshake(live.url)
            params = {"EIO": "4", "transport": "polling", "sid": sid}
            ws = websocket.create_connection(f"{live.ws_url}?EIO=4&transport=websocket&sid={sid}",
                                             timeout=TIMEOUT)
            try:
                ws.send("2probe")
                assert ws.recv() == "3probe"
                assert requests.get(live.url, params=params, timeout=TIMEOUT).text == "6"
                ws.send("5")
                ws.send("4hello")
                assert ws.recv() == "4hello"
                after = requests.get(live.url, params=params, timeout=TIMEOUT)
                assert after.status_code == 400
                second = websocket.create_connection(f"{live.ws_url}?EIO=4&transport=websocket&sid={sid}",
                                                     timeout=TIMEOUT)
                try:
                    second.recv()  # the server closes it at once
                except websocket.WebSocketConnectionClosedException:
                    pass
                assert not second.connected or second.recv() == ""
                second.close()
                ws.send_binary(b"\x01\x02")
                assert ws.recv() == b"\x01\x02"
            finally:
                ws.close()

        await trio.to_thread.run_sync(run)
        with trio.fail_after(TIMEOUT):
            await live.app.disconnected.wait()
        assert live.app.of("disconnect") == ["transport close"]


async def test_raw_websocket_invalid_frame_closes() -> None:
    async with live_server() as live:
        def run() -> None:
            ws = websocket.create_connection(f"{live.ws_url}?EIO=4&transport=websocket", timeout=TIMEOUT)
            assert str(ws.recv()).startswith("0")
            ws.send("abc")
            try:
                assert ws.recv() == ""
            except websocket.WebSocketConnectionClosedException:
                pass
            ws.close()

        await trio.to_thread.run_sync(run)
        with trio.fail_after(TIMEOUT):
            await live.app.disconnected.wait()
        assert live.app.of("disconnect") == ["transport error"]


def engineio_client_echo(url: str, transports: list[str]) -> tuple[str, list[object]]:
    """Connect python-engineio's client, send text and binary, collect the echoes, disconnect."""
    received: queue.Queue[object] = queue.Queue()
    client = engineio.Client(request_timeout=TIMEOUT)
    client.on("message", received.put)
    client.connect(url.rsplit("/engine.io/", 1)[0], transports=transports, engineio_path="engine.io")
    try:
        client.send("hello")
        client.send(b"\x00\xff")
        echoes = [received.get(timeout=TIMEOUT), received.get(timeout=TIMEOUT)]
        return client.transport(), echoes
    finally:
        client.disconnect()


async def test_python_engineio_client_polling_only() -> None:
    async with live_server() as live:
        transport, echoes = await trio.to_thread.run_sync(engineio_client_echo, live.url, ["polling"])
        assert transport == "polling"
        assert echoes == ["hello", b"\x00\xff"]
        with trio.fail_after(TIMEOUT):
            await live.app.disconnected.wait()
        assert live.app.of("disconnect") == ["client disconnect"]


async def test_python_engineio_client_websocket_only() -> None:
    async with live_server() as live:
        transport, echoes = await trio.to_thread.run_sync(engineio_client_echo, live.url, ["websocket"])
        assert transport == "websocket"
        assert echoes == ["hello", b"\x00\xff"]
        with trio.fail_after(TIMEOUT):
            await live.app.disconnected.wait()
        assert live.app.of("disconnect")[0] in ("client disconnect", "transport close")


async def test_python_engineio_client_polling_then_upgrade() -> None:
    async with live_server() as live:
        transport, echoes = await trio.to_thread.run_sync(
            engineio_client_echo, live.url, ["polling", "websocket"])
        assert transport == "websocket"
        assert echoes == ["hello", b"\x00\xff"]
        assert [e[2] for e in live.app.events if e[0] == "connect"] == ["polling"]


async def test_python_engineio_client_answers_pings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three ping/pong rounds with the real client, observed at the protocol core (no sleeps)."""
    pongs: list[float] = []
    three_pongs = trio.Event()
    original = SocketProtocol.receive

    def counting_receive(self: SocketProtocol, packet: Packet, now: float) -> str | bytes | None:
        if packet.type == PONG:
            pongs.append(now)
            if len(pongs) == 3:
                three_pongs.set()
        return original(self, packet, now)

    monkeypatch.setattr(SocketProtocol, "receive", counting_receive)
    done = threading.Event()
    config = EngineConfig(ping_interval=0.05, ping_timeout=5)
    async with live_server(config) as live:
        def run() -> str:
            client = engineio.Client(request_timeout=TIMEOUT)
            client.connect(live.url.rsplit("/engine.io/", 1)[0], transports=["websocket"],
                           engineio_path="engine.io")
            try:
                done.wait(TIMEOUT)
                return str(client.state)
            finally:
                client.disconnect()

        async with trio.open_nursery() as nursery:
            states: list[str] = []

            async def client_thread() -> None:
                states.append(await trio.to_thread.run_sync(run))

            nursery.start_soon(client_thread)
            with trio.fail_after(TIMEOUT):
                await three_pongs.wait()
            done.set()
        assert states == ["connected"]
        assert live.app.of("disconnect")[0] in ("client disconnect", "transport close")
