"""Configuration of the HTTP/WebSocket worker.

Owns: ``HttpConfig``, every limit and timeout of ``server.http`` with its documented default. Knows nothing
of sockets or protocols; the layers above pass one of these down explicitly (no globals).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """Limits and timeouts of one HTTP listener. Times are in seconds, sizes in bytes."""

    host: str = "127.0.0.1"
    """Address to bind. ``"0.0.0.0"`` for every IPv4 interface, ``"::"`` for IPv6."""
    port: int = 0
    """TCP port; 0 picks a free ephemeral port (``HttpServer.serve`` reports the real one)."""
    backlog: int = 1024
    """Kernel accept queue length (``listen(backlog)``)."""

    max_request_body: int = MIB + 64 * KIB
    """Largest request body accepted (Engine.IO's 1 MB maxPayload plus framing slack). A larger declared
    Content-Length gets 413 before any of the body is read; a chunked body gets 413 once it passes this."""
    max_header_size: int = 16 * KIB
    """Largest request line + headers; over it the request gets 431 and the connection closes."""
    keepalive_timeout: float = 20.0
    """How long an idle keep-alive connection may wait for the first byte of its next request."""
    request_timeout: float = 10.0
    """The whole request (headers and body) must arrive within this, measured from its first byte (from
    the accept for the first request). Defeats slowloris. The handler's own time is not counted."""
    send_timeout: float = 30.0
    """How long writing one HTTP response may stall on a peer that does not read."""
    recv_size: int = 64 * KIB
    """Bytes asked from the kernel per ``recv``."""

    ws_max_message_size: int = MIB + 64 * KIB
    """Largest WebSocket message (all its frames together); over it the connection is closed with 1009."""
    ws_max_buffered: int = 4 * MIB
    """Bound of the per-connection outbound buffer (bytes the kernel would not take yet). A send that
    would pass it closes the connection: a slow consumer is dropped, never buffered without limit."""
    ws_low_water: int = 64 * KIB
    """``WebSocket.wait_writable()`` returns once the outbound buffer is below this."""
    ws_close_timeout: float = 5.0
    """How long to wait for the peer's close frame (and for our last bytes to drain) when closing."""

    max_connections: int = 10_000
    """Open connections at most. At the limit the listener stops accepting, so new connections wait in the
    kernel backlog (and are refused by the kernel once that is full) until one closes."""
    shutdown_grace: float = 10.0
    """On ``shutdown()``: how long in-flight requests and websocket close handshakes may take before the
    remaining connections are cancelled."""

    server_header: str | None = None
    """Value of the ``Server`` response header, or None to send none."""

    @property
    def listens_on_loopback(self) -> bool:
        """True when ``host`` is ``localhost`` or a loopback address (only this machine can connect)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def with_(self, **changes: object) -> HttpConfig:
        """A copy with some fields changed: ``config.with_(port=8080)``."""
        return replace(self, **changes)  # type: ignore[arg-type]
