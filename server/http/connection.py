"""One accepted TCP connection: HTTP/1.1 keep-alive, then optionally a WebSocket.

Plain requests (what long-polling sends) are read and answered by the fast path
(``server.http._fastpath``); any other request gets an h11 connection of its own, fed the same bytes, so
h11 decides what it means or which error it gets. Either way the limits and answers below are the same.

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

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import h11
import structlog
import trio

from server.http._coalesce import WriteCoalescer
from server.http._fastpath import FALLBACK, Head, encode_response, parse_head
from server.http._io import close_socket, recv_some, send_all, send_now, socket_is_open
from server.http._keepalive import KeepAliveTimer
from server.http._request import make_request, tokens
from server.http.config import HttpConfig
from server.http.frames import CLOSE_INTERNAL_ERROR, CLOSE_NORMAL
from server.http.types import Handler, Request, Response, WebSocketAccept
from server.http.websocket import WebSocket, WebSocketClosed, accept_key

log = structlog.get_logger(__name__)

_NO_BODY_STATUSES = frozenset({204, 304})
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
    keepalive: KeepAliveTimer | None = None  # closes idle keep-alive connections (None: a scope each)


def error_response(status: int, message: str | None = None) -> bytes:
    """A complete ``Connection: close`` response, written without h11 (whose state may be broken)."""
    phrase = HTTPStatus(status).phrase
    body = (message or phrase).encode("utf-8") + b"\n"
    return (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=UTF-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode("ascii") + body


def build_request(event: h11.Request, body: bytes, remote: tuple[str, int]) -> Request:
    """Turn h11's request head (and the whole body) into our ``Request``."""
    return make_request(
        event.method.decode("ascii").upper(),
        event.target.decode("latin-1"),
        [(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers],
        body,
        remote,
    )


class _Reject(Exception):
    """Answer with this status (a ``Connection: close`` error response) and close."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HttpConnection:
    """The task that serves one socket until the peer leaves, a limit is hit, or the server closes."""

    __slots__ = (
        "_buf", "_eof", "_expired", "conn_id", "ctx", "idle", "keepalive_deadline", "keepalive_idle",
        "keepalive_queued", "remote", "sock", "ws",
    )

    def __init__(
        self, sock: socket.socket, remote: tuple[str, int], conn_id: int, ctx: ServerContext
    ) -> None:
        self.sock = sock
        self.remote = remote
        self.conn_id = conn_id
        self.ctx = ctx
        self.idle = True  # waiting for the first byte of a request: safe to drop on shutdown
        self.ws: WebSocket | None = None
        self._buf = b""  # received and not yet read: the start of the next request(s)
        self._eof = False  # the peer has closed its side
        self.keepalive_deadline = 0.0  # these three: the listener's KeepAliveTimer's
        self.keepalive_idle = False
        self.keepalive_queued = False
        self._expired = False  # the keep-alive timer found it idle too long

    def keepalive_expired(self) -> None:
        """Called by the listener's keep-alive timer: idle past ``keepalive_timeout``. Wakes the idle
        wait, which then ends the connection (its task closes the socket)."""
        self._expired = True
        if socket_is_open(self.sock):
            trio.lowlevel.notify_closing(self.sock)

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
        caller runs ``run_websocket`` (this coroutine's frame and the h11 object are gone by then).

        Each request is read by the fast path (``server.http._fastpath``) when it is a plain one, else
        by an h11 connection made for it, which then also writes its response; the bytes h11 read past
        that request come back to the fast path for the next one."""
        config = self.ctx.config
        self._buf = b""
        self._eof = False
        deadline: float | None = trio.current_time() + config.request_timeout
        while True:
            try:
                read = await self._next_request(deadline)
            except _Reject as reject:
                log.info("http request rejected", conn_id=self.conn_id, status=reject.status,
                         reason=reject.message)
                if await self._send(error_response(reject.status, reject.message)):
                    await self._linger()
                return None
            if read is None:
                return None
            request, conn = read
            self.idle = False
            result = await self._call_handler(request)
            if isinstance(result, WebSocketAccept):
                if not request.is_websocket_upgrade or conn is None:  # the fast path reads no upgrade
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
            if conn is None:
                data, keep_alive = self._encode_fast(result, keep_alive)
                if not await self._send(data) or not keep_alive:
                    return None
            else:
                data = self._encode_response(conn, request, result, keep_alive)
                if not await self._send(data) or conn.our_state is not h11.DONE:
                    return None
                conn.start_next_cycle()
                self._buf, self._eof = conn.trailing_data
            deadline = None

    async def _next_request(self, deadline: float | None) -> tuple[Request, h11.Connection | None] | None:
        """The next whole request, with the h11 connection that read it (None: the fast path did), or
        None when the peer closed (or idled out) between requests.

        ``deadline`` is when the whole request must have arrived; None means "idle keep-alive": the first
        byte may take ``keepalive_timeout`` and starts the ``request_timeout`` clock.
        """
        config = self.ctx.config
        answered = deadline is None  # a response was just written: the peer cannot have sent more yet
        while True:
            buf = self._buf
            if buf:
                if deadline is None:  # pipelined: the request is already arriving
                    deadline = trio.current_time() + config.request_timeout
                head = parse_head(buf, self.remote)
                if isinstance(head, Head):
                    return await self._read_body(head, deadline)
                if head is FALLBACK or self._eof or len(buf) > config.max_header_size:
                    return await self._read_h11(deadline)
            elif self._eof:
                return None
            if deadline is None:
                received = await self._wait_idle(answered)
                if received is None:  # idled out
                    return None
                deadline = trio.current_time() + config.request_timeout
            else:
                received = await self._receive(deadline)
            answered = False
            if received:
                self._buf = buf + received
            else:
                self._eof = True

    async def _wait_idle(self, answered: bool) -> bytes | None:
        """The first bytes of the next request, b"" if the peer left, None if it idled out (no byte
        within ``keepalive_timeout``)."""
        config = self.ctx.config
        timer = self.ctx.keepalive
        self.idle = True
        try:
            if timer is not None:  # the listener's one timer: no cancel scope per request
                timer.idle(self, trio.current_time() + config.keepalive_timeout)
                try:
                    received = await recv_some(self.sock, config.recv_size, wait_first=answered)
                finally:
                    timer.busy(self)
                return None if self._expired else received
            with trio.move_on_after(config.keepalive_timeout):
                return await recv_some(self.sock, config.recv_size, wait_first=answered)
            return None
        finally:
            self.idle = False

    async def _receive(self, deadline: float) -> bytes:
        received: bytes | None = None
        with trio.move_on_at(deadline):
            received = await recv_some(self.sock, self.ctx.config.recv_size)
        if received is None:
            raise _Reject(408, "request not received in time")
        return received

    async def _read_body(self, head: Head, deadline: float) -> tuple[Request, h11.Connection | None]:
        """The rest of a fast-path request: its limits checked (as the h11 path checks them), then its
        Content-Length body. A peer closing mid-body goes to h11, which says what is wrong."""
        config = self.ctx.config
        if head.content_length > config.max_request_body:
            raise _Reject(413, f"request body larger than {config.max_request_body} bytes")
        if head.size > config.max_header_size:
            raise _Reject(431, f"request head larger than {config.max_header_size} bytes")
        end = head.body_start + head.content_length
        buf = self._buf
        if len(buf) < end:
            chunks = [buf]
            have = len(buf)
            while have < end:
                received = await self._receive(deadline)
                if not received:
                    self._buf = b"".join(chunks)
                    self._eof = True
                    result = await self._read_h11(deadline)
                    assert result is not None  # h11 raises for a truncated message
                    return result
                chunks.append(received)
                have += len(received)
            buf = b"".join(chunks)
        request = head.request
        if head.content_length:
            request.body = buf[head.body_start:end]
        self._buf = buf[end:]
        return request, None

    async def _read_h11(self, deadline: float) -> tuple[Request, h11.Connection] | None:
        """Read the request the fast path declined with a new h11 connection, fed what was received."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.ctx.config.max_header_size)
        if self._buf:
            conn.receive_data(self._buf)
            self._buf = b""
        if self._eof:
            conn.receive_data(b"")
        request = await self._read_request(conn, deadline)
        return None if request is None else (request, conn)

    async def _read_request(self, conn: h11.Connection, deadline: float) -> Request | None:
        """The next whole request through h11, or None when the peer closed before sending one."""
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
                conn.receive_data(await self._receive(deadline))
                continue
            if isinstance(event, h11.Request):
                head = event
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
                keep_alive = keep_alive and "close" not in tokens(value)
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

    def _encode_fast(self, response: Response, keep_alive: bool) -> tuple[bytes, bool]:
        """A response to a fast-path request, and whether the connection stays open after it."""
        encoded = encode_response(
            response.status, response.body, response.headers, response.content_type, keep_alive,
            self.ctx.extra_headers,
        )
        if encoded is None:
            log.error("handler returned an invalid response", conn_id=self.conn_id, status=response.status)
            return error_response(500), False
        return encoded

    async def _send(self, data: bytes) -> bool:
        # A response usually fits the socket's buffer: written at once, with no timeout to set up.
        await trio.lowlevel.checkpoint_if_cancelled()
        sent = send_now(self.sock, data)
        if sent is None:
            return False
        if sent == len(data):
            return True
        with trio.move_on_after(self.ctx.config.send_timeout):
            return await send_all(self.sock, data[sent:])
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
