"""Plain data types shared by the HTTP layer and the layers it serves.

Owns: ``Request``, ``Response``, ``WebSocketAccept`` and the ``Handler`` signature. Knows nothing of
sockets, h11 or wsproto (see ``server.http.connection``) and nothing of Engine.IO.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.http.websocket import WebSocket


@dataclass(slots=True)
class Request:
    """One parsed HTTP/1.1 request with its whole body."""

    method: str  # upper case: "GET", "POST", ...
    target: str  # the raw request target: "/socket.io/?EIO=4&transport=polling"
    path: str  # percent-decoded path without the query: "/socket.io/"
    query: dict[str, str]  # first value of each query parameter
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    remote: tuple[str, int]  # peer address
    is_websocket_upgrade: bool = False  # a valid RFC 6455 upgrade GET


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/plain; charset=UTF-8"

    @classmethod
    def json(cls, status: int, payload: object, headers: list[tuple[str, str]] | None = None) -> Response:
        import json

        return cls(
            status,
            json.dumps(payload, separators=(",", ":")).encode(),
            headers or [],
            "application/json",
        )


@dataclass(slots=True)
class WebSocketAccept:
    """Returned by a handler to accept a WebSocket upgrade.

    The HTTP layer completes the handshake, then runs ``handler(ws)`` in the connection's own task; when the
    handler returns, the WebSocket is closed (1000) if it is still open.
    """

    handler: Callable[[WebSocket], Awaitable[None]]
    subprotocol: str | None = None
    extra_headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Response | WebSocketAccept]]
