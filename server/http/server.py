"""The listener: one raw non-blocking listening socket per port, one task per accepted connection.

Owns: ``HttpServer`` (bind, accept in batches, the connection cap, graceful ``shutdown``) and
``open_http_server`` (run one in a nursery for tests and embedding). Knows nothing of HTTP parsing
(``server.http.connection``) nor of the handler's protocol.

Tasks: ``serve`` runs the accept loop in its own task and owns a nursery holding one task per connection,
the WebSocket write coalescer's flusher (``server.http._coalesce``) and the keep-alive timer
(``server.http._keepalive``).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
import trio

from server.http._coalesce import WriteCoalescer
from server.http._io import close_socket
from server.http._keepalive import KeepAliveTimer
from server.http.config import HttpConfig
from server.http.connection import HttpConnection, ServerContext
from server.http.types import Handler

log = structlog.get_logger(__name__)

_ACCEPT_BATCH = 64
_TASK_NAME = "http connection"  # one shared string rather than one made per task


def _listen(config: HttpConfig) -> socket.socket:
    infos = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(config.backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class HttpServer:
    """Serves ``handler`` on ``config.host:config.port`` until cancelled or ``shutdown()``."""

    def __init__(self, config: HttpConfig | None, handler: Handler) -> None:
        self.config = config or HttpConfig()
        self._handler = handler
        self._ctx: ServerContext | None = None
        self._closing = False
        self.address: tuple[str, int] | None = None
        self._listener: socket.socket | None = None
        self._connections: set[HttpConnection] = set()
        self._slot_free: trio.Event | None = None  # set when a connection ends while at the cap
        self._all_closed: trio.Event | None = None  # set when the last connection ends during shutdown
        self._stopped = trio.Event()
        self._ids = itertools.count(1)

    @property
    def port(self) -> int:
        if self.address is None:
            raise RuntimeError("server is not listening yet")
        return self.address[1]

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound socket (for tests and logs)."""
        if self.address is None:
            raise RuntimeError("server is not listening yet")
        host = self.address[0]
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def serve(
        self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind, report ``(host, port)`` through ``task_status.started``, serve until cancelled or until
        ``shutdown()`` has drained the connections (or the grace period ran out)."""
        listener = _listen(self.config)
        self._listener = listener
        sockname = listener.getsockname()
        self.address = (sockname[0], sockname[1])
        log.info("http listening", host=self.address[0], port=self.address[1])
        try:
            async with trio.open_nursery() as nursery:
                coalescer = WriteCoalescer()
                keepalive = KeepAliveTimer()
                self._ctx = ServerContext(
                    self.config, self._handler, nursery, closing=self._closing, coalescer=coalescer,
                    keepalive=keepalive,
                )
                nursery.start_soon(coalescer.run)
                nursery.start_soon(keepalive.run)
                if self.config.server_header:
                    self._ctx.extra_headers.append((b"server", self.config.server_header.encode("latin-1")))
                task_status.started(self.address)
                await self._accept_loop(listener, nursery)
                # shutdown(): the listener is closed; let the connections finish within the grace period.
                with trio.move_on_after(self.config.shutdown_grace) as grace:
                    while self._connections:
                        self._all_closed = trio.Event()
                        await self._all_closed.wait()
                if grace.cancelled_caught:
                    log.warning("http shutdown grace expired", open_connections=len(self._connections))
                nursery.cancel_scope.cancel()
        finally:
            close_socket(listener)
            self._stopped.set()
            log.info("http stopped", port=self.address[1])

    async def _accept_loop(self, listener: socket.socket, nursery: trio.Nursery) -> None:
        assert self._ctx is not None
        limit = self.config.max_connections
        while not self._closing:
            if len(self._connections) >= limit:
                self._slot_free = trio.Event()
                await self._slot_free.wait()
                continue
            try:
                await trio.lowlevel.wait_readable(listener)
            except (trio.ClosedResourceError, OSError, ValueError):
                return
            for _ in range(min(_ACCEPT_BATCH, limit - len(self._connections))):
                try:
                    sock, addr = listener.accept()
                except BlockingIOError:
                    break
                except OSError as error:  # EMFILE, ECONNABORTED...: log, back off briefly, keep serving
                    if listener.fileno() == -1:
                        return
                    log.warning("http accept failed", error=str(error))
                    await trio.sleep(0.05)
                    break
                sock.setblocking(False)
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = HttpConnection(sock, (addr[0], addr[1]), next(self._ids), self._ctx)
                self._connections.add(conn)
                nursery.start_soon(self._run_connection, conn, name=_TASK_NAME)

    async def _run_connection(self, conn: HttpConnection) -> None:
        try:
            upgrade = await conn.serve_http()
            if upgrade is not None:
                accept, trailing = upgrade
                ws = conn.open_websocket(accept, trailing)
                handler = accept.handler
                del upgrade, accept, trailing  # not kept alive by an idle websocket
                await conn.run_websocket(handler, ws)
        except Exception:
            log.exception("http connection crashed", conn_id=conn.conn_id)
        finally:
            self._connections.discard(conn)
            close_socket(conn.sock)
            if self._slot_free is not None:
                self._slot_free.set()
                self._slot_free = None
            if self._all_closed is not None and not self._connections:
                self._all_closed.set()

    def shutdown(self) -> None:
        """Start a graceful stop (returns at once): stop accepting, drop idle keep-alive connections, let
        requests in flight finish, close websockets with 1001. ``serve`` returns when all connections are
        gone or ``shutdown_grace`` has passed (the rest are then cancelled)."""
        if self._closing:
            return
        self._closing = True
        if self._ctx is not None:
            self._ctx.closing = True
        log.info("http shutting down", open_connections=len(self._connections))
        if self._listener is not None:
            close_socket(self._listener)
        if self._slot_free is not None:
            self._slot_free.set()
        for conn in list(self._connections):
            conn.shutdown()

    async def aclose(self) -> None:
        """``shutdown()`` and wait until ``serve`` has returned."""
        self.shutdown()
        await self._stopped.wait()


@asynccontextmanager
async def open_http_server(
    handler: Handler, config: HttpConfig | None = None, **overrides: Any
) -> AsyncIterator[HttpServer]:
    """Run an ``HttpServer`` in a nursery for the ``async with`` body (which can read ``server.port`` /
    ``server.url``); on exit it is cancelled (not drained: call ``await server.aclose()`` for that).

    ``overrides`` change single config fields: ``open_http_server(app, port=0, request_timeout=1)``.
    """
    config = (config or HttpConfig()).with_(**overrides) if overrides else (config or HttpConfig())
    server = HttpServer(config, handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()
