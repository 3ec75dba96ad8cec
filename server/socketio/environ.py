"""The ``environ`` dict a ``connect`` handler receives.

Owns: turning the Engine.IO handshake ``Request`` into a dict shaped like python-socketio's ASGI environ
(``REQUEST_METHOD``, ``PATH_INFO``, ``QUERY_STRING``, ``REMOTE_ADDR``, ``HTTP_*`` headers, ...), plus
``"supervisor.request"`` holding the request itself. Knows nothing of sockets or Socket.IO packets, and of
HTTP only what ``transport.HandshakeRequest`` says.
"""

from __future__ import annotations

import functools
from typing import Any

from server.socketio.transport import HandshakeRequest

REQUEST_KEY = "supervisor.request"


@functools.lru_cache(maxsize=4096)
def _environ_key(name: str) -> str:
    """``HTTP_<NAME>`` (``CONTENT_TYPE`` / ``CONTENT_LENGTH`` bare), one shared copy per name: every
    connection's environ lives as long as the connection, and the same few header names come back on each
    one. The cache is bounded, so clients sending ever-new header names cannot grow it."""
    key = name.upper().replace("-", "_")
    if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = "HTTP_" + key
    return key


def build_environ(request: HandshakeRequest) -> dict[str, Any]:
    _, _, query_string = request.target.partition("?")
    host, port = request.remote[0], request.remote[1]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "PATH_INFO": request.path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": query_string,
        "RAW_URI": request.target,
        "REMOTE_ADDR": host,
        "REMOTE_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        REQUEST_KEY: request,
    }
    for name, value in request.headers.items():
        environ[_environ_key(name)] = value
    host_header = request.headers.get("host")
    if host_header:
        server_name, _, server_port = host_header.partition(":")
        environ["SERVER_NAME"] = server_name
        environ["SERVER_PORT"] = server_port or "80"
    return environ
