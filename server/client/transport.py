"""Moves whole websocket messages between the client and a server; builds the Engine.IO websocket URL.

Owns: the ``Transport`` interface (send / receive whole messages), the ``Connector`` that opens one
(trio-websocket by default; tests plug in memory transports), mapping trio-websocket's exceptions to
``TransportClosed`` / ``TransportError``, and the URL ``<base>/<path>/?EIO=4&transport=websocket&<query>``.

Must not know about: Engine.IO or Socket.IO packets, heartbeats, namespaces, reconnection.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import trio
import trio_websocket

__all__ = [
    "Connector",
    "Transport",
    "TransportClosed",
    "TransportError",
    "WebSocketTransport",
    "build_url",
    "websocket_connector",
]

Message = str | bytes
Headers = Sequence[tuple[str, str]]


class TransportError(Exception):
    """The transport could not be opened (refused, HTTP error, timeout, bad URL)."""


class TransportClosed(Exception):
    """The transport is closed: the peer went away or closed it."""

    def __init__(self, reason: str = "transport close", code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class Transport(Protocol):
    """A bidirectional stream of whole messages (text or binary)."""

    async def send(self, message: Message) -> None:
        """Send one message; raises ``TransportClosed`` when the transport is gone."""
        ...

    async def receive(self) -> Message:
        """The next message; raises ``TransportClosed`` when the transport is gone."""
        ...


# A connector opens a transport to ``url`` with extra HTTP ``headers``. Leaving the context closes it: a
# normal exit closes gracefully (bounded), an exit under cancellation closes at once.
Connector = Callable[[str, Headers], AbstractAsyncContextManager[Transport]]


class WebSocketTransport:
    """``Transport`` over a trio-websocket connection."""

    __slots__ = ("_ws",)

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self._ws = ws

    async def send(self, message: Message) -> None:
        try:
            await self._ws.send_message(message)
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise TransportClosed("transport error") from exc

    async def receive(self) -> Message:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None


def _closed(exc: trio_websocket.ConnectionClosed) -> TransportClosed:
    reason = exc.reason
    if reason is None:
        return TransportClosed("transport close")
    # 1000/1001 are orderly closes; anything else (1006 abnormal, 1009 too big...) is an error
    kind = "transport close" if reason.code in (1000, 1001) else "transport error"
    return TransportClosed(kind, reason.code)


def websocket_connector(
    *,
    connect_timeout: float = 10.0,
    close_timeout: float = 2.0,
    max_message_size: int = 16 * 1024 * 1024,
    message_queue_size: int = 16,
) -> Connector:
    """A ``Connector`` over trio-websocket with the given limits."""

    @asynccontextmanager
    async def connect(url: str, headers: Headers) -> AsyncIterator[Transport]:
        extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        try:
            manager = trio_websocket.open_websocket_url(
                url,
                extra_headers=extra,
                connect_timeout=connect_timeout,
                disconnect_timeout=close_timeout,
                max_message_size=max_message_size,
                message_queue_size=message_queue_size,
            )
        except ValueError as exc:
            raise TransportError(f"bad websocket URL {url!r}: {exc}") from exc
        try:
            async with manager as ws:
                yield WebSocketTransport(ws)
        except trio_websocket.ConnectionRejected as exc:
            status = exc.status_code
            raise TransportError(f"server rejected the websocket upgrade with HTTP {status}") from exc
        except trio_websocket.DisconnectionTimeout:
            pass  # the close handshake did not finish in time; the socket is closed all the same
        except trio_websocket.HandshakeError as exc:
            cause = exc.__cause__ or exc
            raise TransportError(f"cannot open a websocket to {url}: {cause!r}") from exc

    return connect


def build_url(base_url: str, path: str = "socket.io", query: Mapping[str, Any] | None = None) -> str:
    """``http(s)://host[:port][/prefix]`` or ``ws(s)://...`` plus ``path`` -> the Engine.IO websocket URL.

    Query values are stringified (``True`` -> ``true``, like the JS client); ``None`` values are left out;
    a query string already on ``base_url`` is kept in front of ``query``.
    """
    parts = urllib.parse.urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"URL must be http(s):// or ws(s):// with a host, got {base_url!r}")
    prefix = parts.path.rstrip("/")
    resource = f"{prefix}/{path.strip('/')}/" if path.strip("/") else f"{prefix}/"
    pairs: list[tuple[str, str]] = [("EIO", "4"), ("transport", "websocket")]
    pairs += urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    for key, value in (query or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        pairs.append((str(key), str(value)))
    return urllib.parse.urlunsplit((scheme, parts.netloc, resource, urllib.parse.urlencode(pairs), ""))
