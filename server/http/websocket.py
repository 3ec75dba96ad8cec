"""One server-side WebSocket over a raw non-blocking socket.

Owns: ``WebSocket`` (non-blocking ``send``/``send_frame`` into the kernel buffer -- the frames of one
scheduler pass coalesced into one ``send`` by the listener's ``WriteCoalescer`` when there is one -- a
bounded outbound buffer finished by a lazily spawned flusher task, ``receive`` of whole messages,
ping/pong, the close handshake, slow-consumer and oversize-message enforcement) and ``WebSocketClosed``.
Knows nothing of HTTP parsing (``server.http.connection`` does the upgrade and owns the task and nursery
this object lives in) nor of what the messages mean (Engine.IO).

Tasks: none of its own in the steady state. The connection's reader task calls ``receive``; a flusher task
exists only while there is a backlog, and a close timer only while a close handshake is pending. Both run in
the nursery given at construction (the listener's), are tied to this socket (they end when it is closed,
which the reader task always does in ``finish``) and never raise into that nursery.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import trio

from server.http._coalesce import WriteCoalescer
from server.http._io import close_socket
from server.http.config import HttpConfig
from server.http.frames import (
    CLOSE_ABNORMAL,
    CLOSE_GOING_AWAY,
    CLOSE_NO_STATUS,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    Close,
    FrameError,
    FrameParser,
    Ping,
    encode_close,
    encode_frame,
    encode_pong,
)

log = structlog.get_logger(__name__)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_OPEN = 0
_CLOSING = 1  # we sent a close frame, waiting for the peer's
_CLOSED = 2  # close handshake done, failed, or the socket is gone


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


class WebSocketClosed(Exception):
    """The WebSocket is closed; ``code``/``reason`` are the peer's close frame, or 1006 if it just left."""

    def __init__(self, code: int = CLOSE_ABNORMAL, reason: str = "") -> None:
        super().__init__(f"websocket closed ({code}) {reason}".rstrip())
        self.code = code
        self.reason = reason


class WebSocket:
    """A server WebSocket. ``send`` never awaits; ``receive`` is for the one reader task."""

    __slots__ = (
        "_closer",
        "_coalescer",
        "_config",
        "_eager",
        "_flushing",
        "_nursery",
        "_out",
        "_parser",
        "_pending",
        "_pending_size",
        "_sock",
        "_state",
        "_writable",
        "close_code",
        "close_reason",
        "conn_id",
        "remote",
        "subprotocol",
    )

    def __init__(
        self,
        sock: socket.socket,
        remote: tuple[str, int],
        config: HttpConfig,
        nursery: trio.Nursery,
        *,
        conn_id: int = 0,
        trailing_data: bytes = b"",
        subprotocol: str | None = None,
        coalescer: WriteCoalescer | None = None,
    ) -> None:
        self._sock = sock
        self.remote = remote
        self._config = config
        self._nursery: trio.Nursery | None = nursery
        self.conn_id = conn_id
        self.subprotocol = subprotocol
        self._parser = FrameParser(config.ws_max_message_size)
        if trailing_data:
            self._parser.feed(trailing_data)
        self._out: bytearray | None = None  # bytes the kernel would not take yet; None when empty
        self._coalescer = coalescer  # None: every frame goes to the kernel at once
        self._pending: list[bytes] | None = None  # frames of this scheduler pass, not yet offered to it
        self._pending_size = 0
        self._flushing = False
        self._writable: trio.Event | None = None  # created only while someone waits for low water
        self._state = _OPEN
        self._eager = True  # the next receive tries the kernel before parking (see ``receive``)
        self._closer: trio.CancelScope | None = None  # the close timer's scope, while one is pending
        self.close_code: int | None = None
        self.close_reason = ""

    # -- state -------------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once a close has started: sends are dropped from then on."""
        return self._state != _OPEN

    @property
    def buffered(self) -> int:
        """Bytes waiting in the outbound buffer (those the kernel would not take yet; the frames of the
        current scheduler pass, at most ``ws_low_water`` bytes not yet offered to it, are not counted)."""
        return len(self._out) if self._out is not None else 0

    def __repr__(self) -> str:
        return f"<WebSocket conn={self.conn_id} remote={self.remote} state={self._state}>"

    # -- sending -----------------------------------------------------------------------------------------

    def send(self, data: str | bytes) -> bool:
        """Send one message (text for str, binary for bytes) without awaiting. False if it was dropped
        because the socket is closing or closed (or was just closed as a slow consumer)."""
        if self._state != _OPEN:
            return False
        return self._write(encode_frame(data))

    def send_frame(self, frame: bytes) -> bool:
        """``send`` for a frame made earlier by ``encode_frame`` (one encoding per broadcast)."""
        if self._state != _OPEN:
            return False
        return self._write(frame)

    def _write(self, data: bytes) -> bool:
        out = self._out
        if out is not None:
            if len(out) + len(data) > self._config.ws_max_buffered:
                self._slow_consumer(len(out) + len(data))
                return False
            out += data
            return True
        pending = self._pending
        if pending is not None:
            pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= self._config.ws_low_water:
                return self.flush_pending()
            return True
        coalescer = self._coalescer
        if coalescer is not None and len(data) < self._config.ws_low_water and coalescer.register(self):
            self._pending = [data]
            self._pending_size = len(data)
            return True
        return self._send_now(data)

    def flush_pending(self) -> bool:
        """Offer this pass's frames to the kernel in one ``send`` (the coalescer's callback). False if the
        socket was dropped (gone, or a slow consumer)."""
        pending = self._pending
        if pending is None:
            return self._state != _CLOSED
        self._pending = None
        self._pending_size = 0
        if self._sock.fileno() == -1:
            self._abort()
            return False
        return self._send_now(pending[0] if len(pending) == 1 else b"".join(pending))

    def _send_now(self, data: bytes) -> bool:
        out = self._out
        if out is not None:  # a backlog built up meanwhile: keep the order, the flusher task owns the socket
            if len(out) + len(data) > self._config.ws_max_buffered:
                self._slow_consumer(len(out) + len(data))
                return False
            out += data
            return True
        sock = self._sock
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._abort()
            return False
        if sent == len(data):
            return True
        if len(data) - sent > self._config.ws_max_buffered:
            self._slow_consumer(len(data) - sent)
            return False
        self._out = bytearray(memoryview(data)[sent:])
        if not self._spawn(self._flush):
            return False
        self._flushing = True
        return True

    def _spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> bool:
        nursery = self._nursery
        try:
            if nursery is None:
                raise RuntimeError("the connection is finished")
            nursery.start_soon(fn, *args)
        except RuntimeError:  # the nursery is closed: the server is going away
            self._abort()
            return False
        return True

    async def _flush(self) -> None:
        try:
            await self._flush_backlog()
        except Exception:  # never into the listener's nursery: this connection alone pays for a bug
            log.exception("websocket flusher failed", conn_id=self.conn_id)
            self._abort()

    async def _flush_backlog(self) -> None:
        sock = self._sock
        try:
            while self._out:
                try:
                    await trio.lowlevel.wait_writable(sock)
                except (trio.ClosedResourceError, OSError, ValueError):
                    self._abort()
                    return
                out = self._out
                if out is None:
                    return
                try:
                    sent = sock.send(out)
                except BlockingIOError:
                    continue
                except OSError:
                    self._abort()
                    return
                del out[:sent]
                if self._writable is not None and len(out) < self._config.ws_low_water:
                    self._wake_writers()
            self._out = None
        finally:
            self._flushing = False
            self._wake_writers()

    def _wake_writers(self) -> None:
        if self._writable is not None:
            self._writable.set()
            self._writable = None

    async def wait_writable(self) -> None:
        """Return once the outbound buffer is below the low-water mark, or the socket is closed."""
        while self._out is not None and len(self._out) >= self._config.ws_low_water and self._flushing:
            if self._writable is None:
                self._writable = trio.Event()
            await self._writable.wait()
        await trio.lowlevel.checkpoint()

    def _slow_consumer(self, size: int) -> None:
        log.warning("websocket slow consumer closed", conn_id=self.conn_id, buffered=size,
                    limit=self._config.ws_max_buffered)
        self.close_code, self.close_reason = CLOSE_POLICY, "slow consumer"
        self._abort()

    def _abort(self) -> None:
        """Drop the connection now: no close frame, buffered bytes discarded, waiters woken."""
        self._state = _CLOSED
        self._out = None
        self._pending = None
        self._pending_size = 0
        if self.close_code is None:
            self.close_code = CLOSE_ABNORMAL
        close_socket(self._sock)
        self._wake_writers()

    # -- closing -----------------------------------------------------------------------------------------

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start the close handshake without awaiting. The reader sees the peer's reply (``receive``
        raises ``WebSocketClosed``); if none comes within ``ws_close_timeout`` the socket is dropped."""
        if self._state != _OPEN:
            return
        self._state = _CLOSING
        self.close_code, self.close_reason = code, reason
        if self._write(encode_close(code, reason)) and self._closer is None:
            self._closer = trio.CancelScope()
            self._spawn(self._close_timer, self._closer)

    async def _close_timer(self, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(self._config.ws_close_timeout)
            if self._sock.fileno() != -1:
                log.info("websocket close handshake timed out", conn_id=self.conn_id)
                self._abort()

    def _fail(self, error: FrameError) -> None:
        """The peer broke the protocol: say why in a close frame and stop reading (no handshake wait)."""
        log.info("websocket protocol error", conn_id=self.conn_id, code=error.code, reason=error.reason)
        if self._state == _OPEN:
            self._write(encode_close(error.code, error.reason))
        self._state = _CLOSED
        self.close_code, self.close_reason = error.code, error.reason

    # -- receiving ---------------------------------------------------------------------------------------

    async def receive(self) -> str | bytes:
        """The next whole message. Pings are answered here. Raises ``WebSocketClosed`` once closed."""
        parser = self._parser
        while True:
            if self._state == _CLOSED or self._sock.fileno() == -1:
                self._state = _CLOSED
                raise WebSocketClosed(self.close_code or CLOSE_ABNORMAL, self.close_reason)
            try:
                event = parser.next_event()
            except FrameError as error:
                self._fail(error)
                raise WebSocketClosed(error.code, error.reason) from None
            if event is None:
                # Read more, inlined (no helper coroutine) so that an idle socket parks one frame shallower.
                # When the last read filled the buffer, more input is likely waiting: try the kernel first
                # (trio's own checkpoint discipline). Otherwise (a peer that waits for our answer) that recv
                # would just fail with EAGAIN, so park on readability at once (also a checkpoint).
                sock = self._sock
                size = self._config.recv_size
                data = None
                if self._eager:
                    await trio.lowlevel.checkpoint_if_cancelled()
                    try:
                        data = sock.recv(size)
                    except BlockingIOError:
                        pass
                    except OSError:
                        data = b""
                    else:
                        await trio.lowlevel.cancel_shielded_checkpoint()
                while data is None:
                    try:
                        await trio.lowlevel.wait_readable(sock)
                        data = sock.recv(size)
                    except BlockingIOError:
                        continue
                    except (trio.ClosedResourceError, OSError, ValueError):
                        data = b""
                self._eager = len(data) >= size
                if not data:
                    if self._state == _OPEN:
                        self.close_code, self.close_reason = CLOSE_ABNORMAL, "connection lost"
                    self._state = _CLOSED
                    close_socket(self._sock)
                    self._wake_writers()
                    continue
                parser.feed(data)
                continue
            if isinstance(event, str | bytes):
                if self._state == _OPEN:
                    return event
                continue  # we are closing: data after our close frame is dropped
            if isinstance(event, Ping):
                if self._state == _OPEN:
                    self._write(encode_pong(event.payload))
                continue
            if isinstance(event, Close):
                if self._state == _OPEN:
                    # Echo the peer's code (RFC 6455 section 5.5.1); a codeless close gets a codeless reply.
                    self._write(encode_close(None if event.code == CLOSE_NO_STATUS else event.code))
                    self.close_code, self.close_reason = event.code, event.reason
                self._state = _CLOSED
                raise WebSocketClosed(event.code, event.reason)
            # Pong: nothing to do.

    async def finish(self, code: int = CLOSE_NORMAL) -> None:
        """For the connection's reader task once the handler returned: close with ``code`` (if still open),
        wait for the peer's close and for our last bytes to drain, within ``ws_close_timeout``, then drop the
        socket. Afterwards no task of this WebSocket is left."""
        self.close(code)
        self.flush_pending()
        with trio.move_on_after(self._config.ws_close_timeout):
            while self._state == _CLOSING:
                try:
                    await self.receive()
                except WebSocketClosed:
                    break
            while self._flushing and self._sock.fileno() != -1:
                if self._writable is None:
                    self._writable = trio.Event()
                await self._writable.wait()
        self._state = _CLOSED
        self._nursery = None
        if self._closer is not None:
            self._closer.cancel()
        close_socket(self._sock)
        self._wake_writers()

    def shutdown(self) -> None:
        """Server shutdown: close with 1001 (going away)."""
        self.close(CLOSE_GOING_AWAY, "server shutting down")
