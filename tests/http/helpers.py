"""Test helpers for server/http: a raw HTTP client over a real socket and a small test application."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from server.http import HttpServer, Request, Response, Router, WebSocket, WebSocketAccept, WebSocketClosed


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class RawClient:
    """A byte-level HTTP client: write anything, parse Content-Length responses, detect EOF."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.eof = False

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self) -> bool:
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:  # reset by the server
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def response(self, *, head: bool = False) -> Reply:
        """The next response; raises EOFError if the server closed first."""
        while b"\r\n\r\n" not in self.buf:
            if not await self._fill():
                raise EOFError(bytes(self.buf))
        end = self.buf.index(b"\r\n\r\n")
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        version, status, *_ = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not await self._fill():
                raise EOFError(bytes(self.buf))
        body = bytes(self.buf[:length])
        del self.buf[:length]
        return Reply(int(status), headers, body)

    async def closed_by_server(self) -> bool:
        """True once the server closed the connection with nothing more sent."""
        while not self.eof:
            await self._fill()
        return not self.buf

    async def aclose(self) -> None:
        await self.stream.aclose()


async def until_no_connections(server: HttpServer) -> None:
    """Wait (bounded) until the server has closed every connection."""
    with trio.fail_after(10):
        while server.connection_count:  # noqa: ASYNC110 - polling a plain counter in a test
            await trio.sleep(0.005)


def request(method: str, path: str, body: bytes = b"", headers: tuple[str, ...] = ()) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: test", *headers]
    if body or method in ("POST", "PUT"):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def echo_websocket(ws: WebSocket) -> None:
    while True:
        message = await ws.receive()
        ws.send(message)


async def health(request: Request) -> Response:
    return Response(200, b"ok")


async def echo_body(request: Request) -> Response:
    return Response(200, request.body, [("x-method", request.method)], "application/octet-stream")


async def boom(request: Request) -> Response:
    raise RuntimeError("handler bug")


async def websocket_or_echo(request: Request) -> Response | WebSocketAccept:
    if request.is_websocket_upgrade:
        return WebSocketAccept(echo_websocket)
    return Response(400, b"websocket expected")


def make_app() -> Router:
    router = Router()
    router.route("/healthz", health)
    router.route("/boom", boom)
    router.mount("/echo/", echo_body)
    router.mount("/ws/", websocket_or_echo)
    return router


__all__ = ["RawClient", "Reply", "WebSocketClosed", "make_app", "request", "until_no_connections"]
