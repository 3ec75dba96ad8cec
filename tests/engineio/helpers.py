"""Test helpers for server/engineio: a recording application, an in-memory WebSocket, request builders.

The in-memory WebSocket stands in for ``server.http.websocket.WebSocket`` (same members) so the
transports can run under trio's MockClock; real-socket tests use the real HTTP server instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import trio
import trio.testing

from server.engineio import EngineConfig, EngineServer, EngineSocket
from server.http.types import Request, Response, WebSocketAccept
from server.http.websocket import WebSocketClosed


@dataclass
class RecordingApp:
    """Records every call; echoes messages back when ``echo`` is set."""

    echo: bool = True
    events: list[tuple[str, str, object]] = field(default_factory=list)
    sockets: dict[str, EngineSocket] = field(default_factory=dict)
    disconnected: trio.Event = field(default_factory=trio.Event)
    disconnect_times: dict[str, float] = field(default_factory=dict)

    async def engine_connect(self, sock: EngineSocket) -> None:
        self.sockets[sock.sid] = sock
        self.events.append(("connect", sock.sid, sock.transport))

    async def engine_message(self, sock: EngineSocket, data: str | bytes) -> None:
        self.events.append(("message", sock.sid, data))
        if self.echo:
            sock.send(data)

    async def engine_disconnect(self, sock: EngineSocket, reason: str) -> None:
        self.events.append(("disconnect", sock.sid, reason))
        self.disconnect_times[sock.sid] = trio.current_time()
        self.disconnected.set()

    def of(self, kind: str, sid: str | None = None) -> list[object]:
        return [data for k, s, data in self.events if k == kind and (sid is None or s == sid)]


class MemoryWebSocket:
    """The members of ``server.http.websocket.WebSocket`` the engine uses, over memory channels."""

    def __init__(self) -> None:
        self.sent: list[str | bytes] = []
        self.frames: list[bytes] = []
        self.flushes: list[int] = []  # len(sent) + len(frames) at each flush_pending()
        self.close_code: int | None = None
        self._send_in, self._recv = trio.open_memory_channel[str | bytes](100)

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def send(self, data: str | bytes) -> bool:
        if self.closed:
            return False
        self.sent.append(data)
        return True

    def send_frame(self, frame: bytes) -> bool:
        if self.closed:
            return False
        self.frames.append(frame)
        return True

    def flush_pending(self) -> bool:
        self.flushes.append(len(self.sent) + len(self.frames))
        return not self.closed

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
            self._send_in.close()

    async def receive(self) -> str | bytes:
        try:
            return await self._recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise WebSocketClosed(self.close_code or 1006) from None

    async def wait_writable(self) -> None:
        await trio.lowlevel.checkpoint()

    # -- the client side ---------------------------------------------------------------------------------

    def client_send(self, data: str | bytes) -> None:
        self._send_in.send_nowait(data)

    def client_close(self) -> None:
        self._send_in.close()


def make_request(
    method: str = "GET",
    query: str = "EIO=4&transport=polling",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    upgrade: bool = False,
) -> Request:
    return Request(
        method=method,
        target="/engine.io/?" + query,
        path="/engine.io/",
        query=dict(parse_qsl(query, keep_blank_values=True)),
        headers={"host": "example.com", **(headers or {})},
        body=body,
        remote=("127.0.0.1", 5000),
        is_websocket_upgrade=upgrade,
    )


class Harness:
    """Drive an ``EngineServer`` in-process: requests straight into ``handle``."""

    def __init__(self, server: EngineServer, app: RecordingApp, nursery: trio.Nursery) -> None:
        self.server = server
        self.app = app
        self.nursery = nursery

    @classmethod
    async def start(cls, nursery: trio.Nursery, config: EngineConfig | None = None,
                    app: RecordingApp | None = None) -> Harness:
        app = app or RecordingApp()
        server = EngineServer(app, config or EngineConfig())
        await nursery.start(server.run)
        return cls(server, app, nursery)

    async def request(self, method: str = "GET", query: str = "EIO=4&transport=polling", body: bytes = b"",
                      headers: dict[str, str] | None = None) -> Response:
        result = await self.server.handle(make_request(method, query, body, headers))
        assert isinstance(result, Response)
        return result

    async def open_polling(self) -> str:
        response = await self.request()
        assert response.status == 200, response
        assert response.body.startswith(b"0")
        return str(json.loads(response.body[1:])["sid"])

    async def get(self, sid: str) -> Response:
        return await self.request("GET", f"EIO=4&transport=polling&sid={sid}")

    async def post(self, sid: str, body: bytes | str) -> Response:
        if isinstance(body, str):
            body = body.encode()
        return await self.request("POST", f"EIO=4&transport=polling&sid={sid}", body)

    def start_get(self, sid: str) -> list[Response]:
        """Start a GET in the background; the list receives its response."""
        out: list[Response] = []

        async def run() -> None:
            out.append(await self.get(sid))

        self.nursery.start_soon(run)
        return out

    async def websocket(self, query: str) -> MemoryWebSocket:
        """Open a websocket request and run its handler in the background."""
        result = await self.server.handle(make_request("GET", query, upgrade=True))
        assert isinstance(result, WebSocketAccept), result
        ws = MemoryWebSocket()
        self.nursery.start_soon(_run_ws, result, ws)
        await trio.testing.wait_all_tasks_blocked()
        return ws


async def _run_ws(accept: WebSocketAccept, ws: MemoryWebSocket) -> None:
    try:
        await accept.handler(ws)  # type: ignore[arg-type]
    except WebSocketClosed:
        pass
    ws.close()


def error_body(response: Response) -> dict[str, object]:
    return dict(json.loads(response.body))
