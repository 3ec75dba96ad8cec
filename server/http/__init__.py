"""The HTTP/1.1 + WebSocket worker at the bottom of the stack (see docs/architecture.md).

Owns the listener, HTTP parsing (h11), the WebSocket upgrade and framing, and the per-connection limits.
Knows nothing of Engine.IO or anything above it: a handler gets a ``Request`` and returns a ``Response`` or a
``WebSocketAccept``.
"""

from server.http.config import HttpConfig
from server.http.frames import encode_frame
from server.http.router import Router
from server.http.server import HttpServer, open_http_server
from server.http.types import Handler, Request, Response, WebSocketAccept
from server.http.websocket import WebSocket, WebSocketClosed

__all__ = [
    "Handler",
    "HttpConfig",
    "HttpServer",
    "Request",
    "Response",
    "Router",
    "WebSocket",
    "WebSocketAccept",
    "WebSocketClosed",
    "encode_frame",
    "open_http_server",
]
