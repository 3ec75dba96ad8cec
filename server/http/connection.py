"""One accepted TCP connection: HTTP/1.1 keep-alive via h11, then optionally a WebSocket.

Owns: reading requests (with the idle, slowloris and size limits of ``HttpConfig``), calling the handler,
writing responses (Content-Length framing, ``Connection: close`` when needed, 400/408/413/431/500 on the
peer's or the handler's failures), and the RFC 6455 upgrade, after which the h11 object is dropped and the
same task runs the WebSocket handler. Knows nothing of the listener (``server.http.server``) or of what the
handler does (Engine.IO, routing).

Tasks: none of its own: the listener's task for this connection calls ``serve_http`` and then, after an
upgrade, ``run_websocket``. A WebSocket's flusher and close timer (which exist only while there is a backlog
or a pending close) go into the listener's nursery, so an idle connection costs no nursery; they end when
the socket is closed, which the connection task always does on its way out.
"""

from __future__ import annotations

import binascii
import socket
from base64 import b64decode
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

import h11
import structlog
import trio

from server.http._coalesce import WriteCoalescer
from server.http._intern import pool as intern
from server.http._io import close_socket, recv_some, send_all
from server.http.config import HttpConfig
from server.http.frames import CLOSE_INTERNAL_ERROR, CLOSE_NORMAL
from server.http.types import Handler, Request, Response, WebSocketAccept
from server.http.websocket import WebSocket, WebSocketClosed, accept_key

log = structlog.get_logger(__name__)

_NO_BODY_STATUSES = frozenset({204, 304})
_SHARED_HEADER_VALUES = frozenset({
    "host", "connection", "upgrade", "sec-websocket-version", "sec-websocket-extensions", "user-agent",
    "accept", "accept-encoding", "accept-language", "origin", "pragma", "cache-control",
})
_SHARED_QUERY_VALUES = frozenset({"EIO", "transport"})
_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


@dataclass(slots=True)
class ServerContext:
    """What every connection of one listener shares."""

    config: HttpConfig
    handler: Handler
    nursery: trio.Nursery  # the listener's: holds connection tasks and WebSocket flushers/close timers
    closing: bool = False  # the server is shutting down: finish the current request, then close
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    coalescer: WriteCoalescer | None = None  # batches WebSocket writes per scheduler pass (None: direct)


def error_response(status: int, message: str | None = None) -> bytes:
    """A complete ``Connection: close`` response, written without h11 (whose state may be broken)."""
    phrase = HTTPStatus(status).phrase
    body = (message or phrase).encode("utf-8") + b"\n"
    return (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=UTF-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode("ascii") + body


def _tokens(value: str) -> set[str]:
    return {t.strip().lower() for t in value.split(",")}


def _is_websocket_upgrade(method: str, headers: dict[str, str]) -> bool:
    if method != "GET" or "upgrade" not in headers or "websocket" not in _tokens(headers["upgrade"]):
        return False
    if "upgrade" not in _tokens(headers.get("connection", "")):
        return False
    if headers.get("sec-websocket-version", "").strip() != "13":
        return False
    try:
        return len(b64decode(headers.get("sec-websocket-key", "").strip(), validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def build_request(event: h11.Request, body: bytes, remote: tuple[str, int]) -> Request:
    """Turn h11's request head (and the whole body) into our ``Request``."""
    method = event.method.decode("ascii").upper()
    target = event.target.decode("latin-1")
    if target.startswith("/"):
        raw_path, _, qs = target.partition("?")
    elif target == "*":
        raw_path, qs = "*", ""
    else:  # absolute-form: "http://host/path?q"
        parts = urlsplit(target)
        raw_path, qs = parts.path or "/", parts.query
    query: dict[str, str] = {}
    if qs:
        if "%" in qs or "+" in qs:
            pairs = parse_qsl(qs, keep_blank_values=True)
        else:  # nothing to unquote: what parse_qsl(keep_blank_values=True) returns, without its overhead
            pairs = [part.partition("=")[::2] for part in qs.split("&") if part]
        for key, value in pairs:
            query.setdefault(intern(key), intern(value) if key in _SHARED_QUERY_VALUES else value)
    headers: dict[str, str] = {}
    for raw_name, raw_value in event.headers:
        # Names, and the values that repeat from client to client, are interned: a request is kept as long
        # as its websocket lives, so this is memory per idle connection.
        name, value = intern(raw_name.decode("latin-1")), raw_value.decode("latin-1")
        if name in _SHARED_HEADER_VALUES:
            value = intern(value)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Request(
        method=method,
        target=target,
        path=unquote(raw_path),
        query=query,
        headers=headers,
        body=body,
        remote=remote,
        is_websocket_upgrade=_is_websocket_upgrade(method, headers),
    )


class _Reject(Exception):
    """Answer with this status (a ``Connection: close`` error response) and close."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HttpConnection:
    """The task that serves one socket until the peer leaves, a limit is hit, or the server closes."""

    __slots__ = ("conn_id", "ctx", "idle", "remote", "sock", "ws")

    def __init__(
        self, sock: socket.socket, remote: tuple[str, int], conn_id: int, ctx: ServerContext
    ) -> None:
        self.sock = sock
        self.remote = remote
        self.conn_id = conn_id
        self.ctx = ctx
        self.idle = True  # waiting for the first byte of a request: safe to drop on shutdown
        self.ws: WebSocket | None = None

    def shutdown(self) -> None:
        """Server shutdown: drop an idle keep-alive connection, say 1001 to a websocket; a connection in
        the middle of a request finishes it (its response carries ``Connection: close``)."""
        if self.ws is not None:
            self.ws.shutdown()
        elif self.idle:
            close_socket(self.sock)

    async def serve_http(self) -> tuple[WebSocketAccept, bytes] | None:
        """Serve requests until the connection should close (None), or until a WebSocket upgrade was
        answered with 101: then return the accept and the bytes already read past the request, and the
        caller runs ``run_websocket`` (this coroutine's frame and the h11 object are gone by then)."""
        config = self.ctx.config
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_header_size)
        deadline: float | None = trio.current_time() + config.request_timeout
        while True:
            try:
                request = await self._read_request(conn, deadline)
            except _Reject as reject:
                log.info("http request rejected", conn_id=self.conn_id, status=reject.status,
                         reason=reject.message)
                if await self._send(error_response(reject.status, reject.message)):
                    await self._linger()
                return None
            if request is None:
                return None
            self.idle = False
            result = await self._call_handler(request)
            if isinstance(result, WebSocketAccept):
                if not request.is_websocket_upgrade:
                    await self._send(error_response(400, "Not a valid WebSocket upgrade request"))
                    return None
                data = conn.send(h11.InformationalResponse(
                    status_code=101, reason=b"Switching Protocols", headers=_upgrade_headers(request, result),
                ))
                if data is None or not await self._send(data):
                    return None
                return result, conn.trailing_data[0]
            keep_alive = result is not None and not self.ctx.closing
            if result is None:
                result = Response(500, b"Internal Server Error\n")
            data = self._encode_response(conn, request, result, keep_alive)
            if not await self._send(data) or conn.our_state is not h11.DONE:
                return None
            conn.start_next_cycle()
            deadline = None

    async def _read_request(self, conn: h11.Connection, deadline: float | None) -> Request | None:
        """The next whole request, or None when the peer closed (or idled out) between requests.

        ``deadline`` is when the whole request must have arrived; None means "idle keep-alive": the first
        byte may take ``keepalive_timeout`` and starts the ``request_timeout`` clock.
        """
        config = self.ctx.config
        head: h11.Request | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as error:
                raise _Reject(error.error_status_hint, _short(str(error))) from None
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    await self._send(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
                if deadline is None:
                    self.idle = True
                    with trio.move_on_after(config.keepalive_timeout):
                        data = await recv_some(self.sock, config.recv_size)
                        deadline = trio.current_time() + config.request_timeout
                    if deadline is None:  # idled out
                        return None
                    self.idle = False
                else:
                    data = b""
                    with trio.move_on_at(deadline) as scope:
                        data = await recv_some(self.sock, config.recv_size)
                    if scope.cancelled_caught:
                        raise _Reject(408, "request not received in time")
                    self.idle = False
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                head = event
                if deadline is None:
                    deadline = trio.current_time() + config.request_timeout
                self.idle = False
                # h11 only limits an incomplete head; a complete one arriving at once is checked here.
                head_size = len(event.target) + 16
                for name, value in event.headers:
                    head_size += len(name) + len(value) + 4
                    if name == b"content-length" and int(value) > config.max_request_body:
                        raise _Reject(413, f"request body larger than {config.max_request_body} bytes")
                if head_size > config.max_header_size:
                    raise _Reject(431, f"request head larger than {config.max_header_size} bytes")
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > config.max_request_body:
                    raise _Reject(413, f"request body larger than {config.max_request_body} bytes")
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return build_request(head, b"".join(chunks), self.remote)
            elif isinstance(event, h11.ConnectionClosed):
                if head is not None:  # pragma: no cover - h11 raises for a truncated message instead
                    raise _Reject(400, "connection closed mid-request")
                return None
            else:  # PAUSED cannot happen before we answered; anything else is a bug in our use of h11
                raise _Reject(400, "unexpected request state")

    async def _call_handler(self, request: Request) -> Response | WebSocketAccept | None:
        """The handler's result; None if it raised (logged; the caller answers 500 and closes)."""
        try:
            return await self.ctx.handler(request)
        except Exception:
            log.exception("http handler failed", conn_id=self.conn_id, method=request.method,
                          path=request.path)
            return None

    def _encode_response(
        self, conn: h11.Connection, request: Request, response: Response, keep_alive: bool
    ) -> bytes:
        status = response.status
        body = response.body
        headers: list[tuple[bytes, bytes]] = []
        has_body = status >= 200 and status not in _NO_BODY_STATUSES
        if has_body:
            headers.append((b"content-type", response.content_type.encode("latin-1")))
            headers.append((b"content-length", b"%d" % len(body)))
        for name, value in response.headers:
            lower = name.lower()
            if lower == "connection":  # the handler may ask to close; framing headers are ours
                keep_alive = keep_alive and "close" not in _tokens(value)
            elif lower not in ("content-length", "transfer-encoding"):
                headers.append((name.encode("latin-1"), value.encode("latin-1")))
        headers.extend(self.ctx.extra_headers)
        if not keep_alive:
            headers.append((b"connection", b"close"))
        try:
            head = h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b""))
            out = conn.send(head) or b""
            if has_body and body and request.method != "HEAD":
                out += conn.send(h11.Data(data=body)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            log.exception("handler returned an invalid response", conn_id=self.conn_id, status=status)
            return error_response(500)
        return out

    async def _linger(self) -> None:
        """After an error response, half-close and discard what the peer is still sending (bounded in
        time and bytes): closing with unread input would reset the connection and could destroy the
        response before the peer reads it (a 413 sent while the body is still arriving)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        budget = max(self.ctx.config.max_request_body, 1 << 20)
        with trio.move_on_after(min(2.0, self.ctx.config.request_timeout)):
            while budget > 0:
                data = await recv_some(self.sock, self.ctx.config.recv_size)
                if not data:
                    return
                budget -= len(data)

    async def _send(self, data: bytes) -> bool:
        with trio.move_on_after(self.ctx.config.send_timeout):
            return await send_all(self.sock, data)
        log.info("http response write timed out", conn_id=self.conn_id)
        return False

    def open_websocket(self, accept: WebSocketAccept, trailing: bytes) -> WebSocket:
        """The WebSocket of an answered upgrade (``serve_http``'s result); ``run_websocket`` runs it."""
        ws = WebSocket(
            self.sock, self.remote, self.ctx.config, self.ctx.nursery,
            conn_id=self.conn_id, trailing_data=trailing, subprotocol=accept.subprotocol,
            coalescer=self.ctx.coalescer,
        )
        self.ws = ws
        if self.ctx.closing:
            ws.shutdown()
        return ws

    async def run_websocket(self, handler: Callable[[WebSocket], Awaitable[None]], ws: WebSocket) -> None:
        """Run the WebSocket handler in this (the reader) task, then finish the close handshake."""
        code = CLOSE_NORMAL
        try:
            await handler(ws)
        except WebSocketClosed:
            pass
        except Exception:
            log.exception("websocket handler failed", conn_id=self.conn_id)
            code = CLOSE_INTERNAL_ERROR
        await ws.finish(code)


def _short(message: str) -> str:
    return message if len(message) <= 200 else message[:200] + "..."


def _upgrade_headers(request: Request, accept: WebSocketAccept) -> list[tuple[str, str]]:
    # No Sec-WebSocket-Extensions: every offered extension (permessage-deflate) is declined.
    headers = [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-accept", accept_key(request.headers["sec-websocket-key"].strip())),
    ]
    if accept.subprotocol:
        headers.append(("sec-websocket-protocol", accept.subprotocol))
    headers.extend(accept.extra_headers)
    return headers
