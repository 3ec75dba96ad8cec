"""What the Socket.IO layer needs of the transport below it: the interface, not the HTTP layer.

Owns: ``Transport`` (one Engine.IO connection as this layer uses it: ``server.engineio.EngineSocket``
satisfies it, and so can any other transport or a test's fake) and ``HandshakeRequest`` (the parts of the
handshake request the ``environ`` is built from: ``server.http.Request`` satisfies it). Knows nothing of
HTTP, WebSocket frames or Engine.IO packets; ``server/socketio`` imports nothing of ``server.http``
(``tests/test_layers.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from server.engineio.codec import OutgoingMessage


class HandshakeRequest(Protocol):
    """The request that opened the connection."""

    @property
    def method(self) -> str: ...

    @property
    def target(self) -> str: ...  # the raw request target, with its query string

    @property
    def path(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...  # lower-case names

    @property
    def remote(self) -> tuple[str, int]: ...  # the peer's address


class Transport(Protocol):
    """One Engine.IO connection: ``send`` and ``close`` never await; ``send`` is bounded below."""

    @property
    def sid(self) -> str: ...

    @property
    def request(self) -> HandshakeRequest: ...

    @property
    def transport(self) -> str: ...  # "polling" or "websocket"

    @property
    def closed(self) -> bool: ...

    def send(self, data: str | bytes | OutgoingMessage) -> None: ...

    def flush(self) -> None: ...  # what was sent goes to the peer now, in its own write

    def close(self, reason: str = ...) -> None: ...

    async def wait_writable(self) -> None: ...
