"""``scripts/protocol-test-server`` as a subprocess, exercised the way the official conformance suites do.

The checks follow socket.io-protocol's and engine.io-protocol's test suites (Engine.IO v4 wire format): raw
WebSocket frames with trio-websocket, and polling with plain HTTP. The client answers the server's pings
(pingInterval 300 ms, pingTimeout 200 ms) while it waits, as a browser would.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "protocol-test-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def protocol_server() -> AsyncIterator[int]:
    port = free_port()
    process = await trio.lowlevel.open_process(
        [sys.executable, str(SCRIPT), str(port)], stdout=-1, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        with trio.fail_after(20):
            banner = b""
            while b"listening" not in banner:
                chunk = await process.stdout.receive_some()
                assert chunk, "protocol-test-server exited before listening"
                banner += chunk
        yield port
    finally:
        process.terminate()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def receive(ws: WebSocketConnection) -> str | bytes:
    """The next message that is not a ping (pings are answered)."""
    while True:
        message = await ws.get_message()
        if message == "2":
            await ws.send_message("3")
            continue
        return message


async def wait_closed(ws: WebSocketConnection) -> None:
    with trio.fail_after(5):
        try:
            while True:
                await receive(ws)
        except ConnectionClosed:
            return


@asynccontextmanager
async def engine_ws(port: int, path: str = "socket.io") -> AsyncIterator[WebSocketConnection]:
    url = f"ws://127.0.0.1:{port}/{path}/?EIO=4&transport=websocket"
    async with open_websocket_url(url) as ws:
        handshake = await receive(ws)
        assert isinstance(handshake, str) and handshake.startswith("0")
        assert json.loads(handshake[1:])["pingInterval"] == 300
        yield ws


@asynccontextmanager
async def socketio_ws(port: int) -> AsyncIterator[WebSocketConnection]:
    async with engine_ws(port) as ws:
        await ws.send_message("40")
        assert str(await receive(ws)).startswith("40{")
        assert await receive(ws) == '42["auth",{}]'
        yield ws


async def check_connect(port: int) -> None:
    for request, prefix, auth in [
        ("40", "40", "{}"),
        ('40{"token":"123"}', "40", '{"token":"123"}'),
        ("40/custom,", "40/custom,", "{}"),
        ('40/custom,{"token":"abc"}', "40/custom,", '{"token":"abc"}'),
    ]:
        async with engine_ws(port) as ws:
            await ws.send_message(request)
            reply = await receive(ws)
            assert isinstance(reply, str) and reply.startswith(prefix)
            assert set(json.loads(reply[len(prefix):])) == {"sid"}
            assert await receive(ws) == f'{prefix[1:].replace("0", "42", 1)}["auth",{auth}]'


async def check_unknown_namespace_and_invalid_handshake(port: int) -> None:
    async with engine_ws(port) as ws:
        await ws.send_message("40/random")
        assert await receive(ws) == '44/random,{"message":"Invalid namespace"}'
    async with engine_ws(port) as ws:
        await ws.send_message("4abc")
        await wait_closed(ws)


async def check_messages(port: int) -> None:
    placeholders = '{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}'
    async with socketio_ws(port) as ws:
        await ws.send_message('42["message",1,"2",{"3":[true]}]')
        assert await receive(ws) == '42["message-back",1,"2",{"3":[true]}]'
        await ws.send_message(f'452-["message",{placeholders}]')
        await ws.send_message(bytes([1, 2, 3]))
        await ws.send_message(bytes([4, 5, 6]))
        assert await receive(ws) == f'452-["message-back",{placeholders}]'
        assert await receive(ws) == bytes([1, 2, 3])
        assert await receive(ws) == bytes([4, 5, 6])
        await ws.send_message('42456["message-with-ack",1,"2",{"3":[false]}]')
        assert await receive(ws) == '43456[1,"2",{"3":[false]}]'
        await ws.send_message(f'452-789["message-with-ack",{placeholders}]')
        await ws.send_message(bytes([1, 2, 3]))
        await ws.send_message(bytes([4, 5, 6]))
        assert await receive(ws) == f"462-789[{placeholders}]"
        assert await receive(ws) == bytes([1, 2, 3])
        assert await receive(ws) == bytes([4, 5, 6])


async def check_invalid_format_closes(port: int, bad: str) -> None:
    async with socketio_ws(port) as ws:
        await ws.send_message(bad)
        await wait_closed(ws)


async def check_disconnect(port: int) -> None:
    async with socketio_ws(port) as ws:
        await ws.send_message("40/custom")
        assert str(await receive(ws)).startswith("40/custom,")
        assert await receive(ws) == '42/custom,["auth",{}]'
        await ws.send_message("41/custom")
        await ws.send_message('42["message","message to main namespace"]')
        assert await receive(ws) == '42["message-back","message to main namespace"]'
    async with socketio_ws(port) as ws:
        await ws.send_message("41")
        await wait_closed(ws)  # nothing joined at connectTimeout (1 s)


async def check_connect_timeout(port: int) -> None:
    async with engine_ws(port) as ws:
        await wait_closed(ws)


async def check_engine_echo_and_polling(port: int) -> None:
    async with engine_ws(port, "engine.io") as ws:
        await ws.send_message("4hello")
        assert await receive(ws) == "4hello"
        await ws.send_message(b"\x00\x01")
        assert await receive(ws) == b"\x00\x01"

    def polling() -> None:
        import requests

        base = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
        open_packet = requests.get(base, timeout=5).text
        sid = json.loads(open_packet[1:])["sid"]
        assert requests.post(f"{base}&sid={sid}", data='40{"token":"p"}', timeout=5).text == "ok"
        payload = requests.get(f"{base}&sid={sid}", timeout=5).text.split("\x1e")
        assert payload[0].startswith("40{") and payload[1] == '42["auth",{"token":"p"}]'
        assert requests.post(f"{base}&sid={sid}", data='42["message","x"]', timeout=5).text == "ok"
        assert requests.get(f"{base}&sid={sid}", timeout=5).text == '42["message-back","x"]'
        no_eio = requests.get(f"http://127.0.0.1:{port}/socket.io/?transport=polling", timeout=5)
        assert no_eio.status_code == 400

    await trio.to_thread.run_sync(polling)


async def test_protocol_test_server_passes_the_conformance_checks() -> None:
    async with protocol_server() as port:
        await check_connect(port)
        await check_unknown_namespace_and_invalid_handshake(port)
        await check_messages(port)
        for bad in ["4abc", "42{}", '42abc["message-with-ack",1,"2",{"3":[false]}]']:
            await check_invalid_format_closes(port, bad)
        await check_engine_echo_and_polling(port)
        async with trio.open_nursery() as nursery:  # the two 1 s connect timeouts run side by side
            nursery.start_soon(check_disconnect, port)
            nursery.start_soon(check_connect_timeout, port)
