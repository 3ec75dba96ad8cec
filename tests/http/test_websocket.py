"""WebSocket behaviour of server/http over real sockets: trio-websocket, websocket-client and raw bytes."""

from __future__ import annotations

import base64
import os
import socket

import pytest
import trio
import trio.testing
import trio_websocket
import websocket as websocket_client
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, TextMessage

from server.http import (
    Handler,
    HttpConfig,
    HttpServer,
    Request,
    Response,
    WebSocket,
    WebSocketAccept,
    WebSocketClosed,
    encode_frame,
    open_http_server,
)
from tests.http.helpers import RawClient, make_app, request, until_no_connections
from tests.http.test_frames import client_frames

LOCAL = HttpConfig(host="127.0.0.1", port=0)


def ws_url(server: HttpServer, path: str = "/ws/") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def upgrade_request(path: str = "/ws/", extra: tuple[str, ...] = ()) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return request("GET", path, headers=(
        "upgrade: websocket", "connection: Upgrade", f"sec-websocket-key: {key}",
        "sec-websocket-version: 13", *extra,
    ))


class RawWebSocket:
    """A byte-level client: our own upgrade request, wsproto to read the server's frames."""

    def __init__(self, client: RawClient) -> None:
        self.client = client
        self.proto = Connection(ConnectionType.CLIENT)

    @classmethod
    async def connect(cls, port: int, extra: tuple[str, ...] = ()) -> tuple[RawWebSocket, dict[str, str]]:
        client = await RawClient.connect(port)
        await client.send(upgrade_request(extra=extra))
        reply = await client.response()
        assert reply.status == 101, reply
        return cls(client), reply.headers

    async def next_event(self) -> Event | None:
        """The next wsproto event, or None at EOF."""
        while True:
            for event in self.proto.events():
                return event
            if self.client.buf:
                data, self.client.buf = bytes(self.client.buf), bytearray()
            else:
                try:
                    data = await self.client.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
            if not data:
                return None
            self.proto.receive_data(data)

    async def message(self) -> str | bytes:
        """The next whole data message (wsproto hands them out in pieces as bytes arrive)."""
        text: list[str] = []
        binary: list[bytes] = []
        while True:
            event = await self.next_event()
            if isinstance(event, TextMessage):
                text.append(event.data)
            else:
                assert isinstance(event, BytesMessage), event
                binary.append(bytes(event.data))
            if event.message_finished:
                return "".join(text) if isinstance(event, TextMessage) else b"".join(binary)


def close_code(error: trio_websocket.ConnectionClosed) -> int:
    assert error.reason is not None
    return error.reason.code


def recording_handler(log: list[object]) -> Handler:
    async def handler(ws: WebSocket) -> None:
        try:
            while True:
                message = await ws.receive()
                if message == "close-me":
                    ws.close(4001, "as you wish")
                    continue
                if message == "raise":
                    raise RuntimeError("websocket handler bug")
                ws.send(message)
        except WebSocketClosed as closed:
            log.append((closed.code, closed.reason))
            raise

    async def app(req: Request) -> Response | WebSocketAccept:
        if req.is_websocket_upgrade:
            return WebSocketAccept(handler)
        return Response(404)

    return app


async def test_echo_with_trio_websocket() -> None:
    messages: list[str | bytes] = ["hello", "é" * 1000, b"\x00\xff" * 50_000, "", b""]
    async with open_http_server(make_app(), LOCAL) as server, \
            trio_websocket.open_websocket_url(ws_url(server)) as ws:
        for message in messages:
            await ws.send_message(message)
            assert await ws.get_message() == message


async def test_echo_with_websocket_client_in_a_thread() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        url = ws_url(server)

        def blocking_client() -> list[object]:
            conn = websocket_client.create_connection(url, timeout=5)
            try:
                conn.send("text")
                text = conn.recv()
                conn.send_binary(b"\x01\x02")
                binary = conn.recv()
                conn.ping(b"hb")
                opcode, frame = conn.recv_data_frame(control_frame=True)
                return [text, binary, opcode, frame.data]
            finally:
                conn.close()

        text, binary, opcode, pong = await trio.to_thread.run_sync(blocking_client)
        assert (text, binary) == ("text", b"\x01\x02")
        assert (opcode, pong) == (websocket_client.ABNF.OPCODE_PONG, b"hb")


async def test_client_ping_is_answered_with_pong() -> None:
    async with open_http_server(make_app(), LOCAL) as server, \
            trio_websocket.open_websocket_url(ws_url(server)) as ws:
        with trio.fail_after(5):
            await ws.ping(b"are you there")  # returns when the matching pong arrives
        await ws.send_message("still open")
        assert await ws.get_message() == "still open"


async def test_fragmented_message_is_reassembled() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        raw, _ = await RawWebSocket.connect(server.port)
        await raw.client.send(client_frames("fragmented message", 5) + client_frames(b"\x01" * 70_000, 3))
        assert await raw.message() == "fragmented message"
        assert await raw.message() == b"\x01" * 70_000


async def test_permessage_deflate_offer_is_declined_and_works_uncompressed() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        raw, headers = await RawWebSocket.connect(
            server.port, extra=("sec-websocket-extensions: permessage-deflate; client_max_window_bits",)
        )
        assert "sec-websocket-extensions" not in headers
        await raw.client.send(client_frames("plain", 1))
        assert await raw.message() == "plain"


async def test_message_over_the_limit_closes_with_1009() -> None:
    closes: list[object] = []
    config = LOCAL.with_(ws_max_message_size=1000)
    async with open_http_server(recording_handler(closes), config) as server, \
            trio_websocket.open_websocket_url(ws_url(server)) as ws:
        await ws.send_message("small")
        assert await ws.get_message() == "small"
        await ws.send_message(b"x" * 5000)
        with pytest.raises(trio_websocket.ConnectionClosed) as info:
            await ws.get_message()
        assert close_code(info.value) == 1009
    assert closes == [(1009, "message larger than 1000 bytes")]


async def test_client_close_handshake_reaches_the_handler() -> None:
    closes: list[object] = []
    async with open_http_server(recording_handler(closes), LOCAL) as server:
        async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
            await ws.send_message("x")
            assert await ws.get_message() == "x"
            with trio.fail_after(5):
                await ws.aclose(4000, "bye")
            assert ws.closed is not None
            assert ws.closed.code == 4000  # our code, echoed back by the server
        await until_no_connections(server)
    assert closes == [(4000, "bye")]


async def test_server_initiated_close_reaches_the_client() -> None:
    closes: list[object] = []
    async with open_http_server(recording_handler(closes), LOCAL) as server, \
            trio_websocket.open_websocket_url(ws_url(server)) as ws:
        await ws.send_message("close-me")
        with pytest.raises(trio_websocket.ConnectionClosed) as info:
            await ws.get_message()
        assert info.value.reason is not None
        assert (info.value.reason.code, info.value.reason.reason) == (4001, "as you wish")
    assert closes and closes[0][0] == 4001  # type: ignore[index]


async def test_websocket_handler_exception_closes_with_1011() -> None:
    async with open_http_server(recording_handler([]), LOCAL) as server:
        async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
            await ws.send_message("raise")
            with pytest.raises(trio_websocket.ConnectionClosed) as info:
                await ws.get_message()
            assert close_code(info.value) == 1011
        async with trio_websocket.open_websocket_url(ws_url(server)) as ws:  # the server is unharmed
            await ws.send_message("ok")
            assert await ws.get_message() == "ok"


async def test_peer_vanishing_ends_receive_with_1006() -> None:
    closes: list[object] = []
    async with open_http_server(recording_handler(closes), LOCAL) as server:
        raw, _ = await RawWebSocket.connect(server.port)
        await raw.client.aclose()
        await until_no_connections(server)
    assert closes == [(1006, "connection lost")]


async def test_accept_without_an_upgrade_request_is_400() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(request("GET", "/ws/", headers=("upgrade: websocket", "connection: Upgrade")))
        assert (await client.response()).status == 400  # no key/version: not a valid upgrade


async def test_upgrade_answered_with_a_response_keeps_http_going() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(upgrade_request("/nope"))
        assert (await client.response()).status == 404
        await client.send(request("GET", "/healthz"))
        assert (await client.response()).status == 200


async def test_one_encoded_frame_is_sent_to_many_sockets() -> None:
    sockets: list[WebSocket] = []
    joined = trio.Event()

    async def handler(ws: WebSocket) -> None:
        sockets.append(ws)
        if len(sockets) == 3:
            joined.set()
        await ws.receive()

    async def app(req: Request) -> WebSocketAccept:
        return WebSocketAccept(handler)

    async with open_http_server(app, LOCAL) as server, \
            trio_websocket.open_websocket_url(ws_url(server)) as a, \
            trio_websocket.open_websocket_url(ws_url(server)) as b, \
            trio_websocket.open_websocket_url(ws_url(server)) as c:
        await joined.wait()
        frame = encode_frame("broadcast")
        assert all(ws.send_frame(frame) for ws in sockets)
        assert [await x.get_message() for x in (a, b, c)] == ["broadcast"] * 3
        assert all(ws.remote[0] == "127.0.0.1" for ws in sockets)


async def test_non_reading_peer_is_closed_as_a_slow_consumer() -> None:
    result: dict[str, object] = {}

    async def flood(ws: WebSocket) -> None:
        chunk = encode_frame(b"x" * 65536)
        sent = 0
        for _ in range(4000):  # far more than loopback buffers can hold
            if not ws.send_frame(chunk):
                break
            sent += 1
            assert ws.buffered <= 256 * 1024
            await trio.lowlevel.checkpoint()  # let the flusher run: the bound must hold anyway
        result.update(sent=sent, closed=ws.closed, code=ws.close_code, buffered=ws.buffered)

    async def app(req: Request) -> WebSocketAccept:
        return WebSocketAccept(flood)

    async with open_http_server(app, LOCAL.with_(ws_max_buffered=256 * 1024)) as server:
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client = RawClient(stream)
        await client.send(upgrade_request())
        assert (await client.response()).status == 101
        await until_no_connections(server)
    assert result["closed"] is True
    assert result["code"] == 1008
    assert result["buffered"] == 0
    assert 0 < result["sent"] < 4000  # type: ignore[operator]


async def test_wait_writable_paces_a_producer_until_the_peer_reads() -> None:
    state: dict[str, object] = {}
    backlog = trio.Event()
    drained = trio.Event()

    async def producer(ws: WebSocket) -> None:
        chunk = encode_frame(b"y" * 16384)
        while not ws.buffered:
            assert ws.send_frame(chunk)
            state["frames"] = state.get("frames", 0) + 1  # type: ignore[operator]
        backlog.set()
        await ws.wait_writable()
        state["after"] = ws.buffered
        drained.set()
        await ws.receive()

    async def app(req: Request) -> WebSocketAccept:
        return WebSocketAccept(producer)

    async with open_http_server(app, LOCAL.with_(ws_low_water=1024)) as server:
        raw, _ = await RawWebSocket.connect(server.port)
        await backlog.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert not drained.is_set()  # still paced: nobody reads
        received = 0
        with trio.fail_after(10):
            while not drained.is_set() or received < state["frames"]:  # type: ignore[operator]
                assert await raw.message() == b"y" * 16384
                received += 1
        assert state["after"] < 1024  # type: ignore[operator]


async def test_graceful_shutdown_closes_websockets_with_1001() -> None:
    closes: list[object] = []
    server = HttpServer(LOCAL, recording_handler(closes))
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "hi"
            server.shutdown()
            with pytest.raises(trio_websocket.ConnectionClosed) as info:
                await ws.get_message()
            assert close_code(info.value) == 1001
        with trio.fail_after(5):
            await server.aclose()
    assert closes == [(1001, "server shutting down")]


async def test_unanswered_close_is_dropped_after_the_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def closer(ws: WebSocket) -> None:
        ws.close(1000, "done")
        await ws.receive()

    async def app(req: Request) -> WebSocketAccept:
        return WebSocketAccept(closer)

    async with open_http_server(app, LOCAL.with_(ws_close_timeout=3.0)) as server:
        raw, _ = await RawWebSocket.connect(server.port)
        start = trio.current_time()
        event = await raw.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == 1000
        # We never answer the close: the server drops the socket after ws_close_timeout.
        assert await raw.next_event() is None
        assert trio.current_time() - start == pytest.approx(3.0, abs=0.1)
