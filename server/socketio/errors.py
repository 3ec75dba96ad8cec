"""Exceptions and disconnect reasons of the Socket.IO layer.

Owns: the exceptions an application sees (``ConnectionRefusedError``, ``TimeoutError``, ``AckLimitError``)
and the ``DisconnectReason`` strings handed to ``disconnect`` handlers. They subclass python-socketio's own
exceptions so that code written for python-socketio (``except socketio.exceptions.TimeoutError``) keeps
working. Knows nothing of sockets, packets or trio.
"""

from __future__ import annotations

import builtins
from typing import Any

from socketio import exceptions as _sio_exceptions


class ConnectionRefusedError(_sio_exceptions.ConnectionRefusedError):
    """Raise from a ``connect`` handler to refuse the namespace connection.

    ``ConnectionRefusedError(message, data)`` becomes the CONNECT_ERROR payload
    ``{"message": message, "data": data}``; with no argument the message is "Connection rejected by server".
    python-socketio's ``socketio.exceptions.ConnectionRefusedError`` is accepted the same way.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)


class TimeoutError(builtins.TimeoutError, _sio_exceptions.TimeoutError):
    """``Server.call`` got no acknowledgement in time, or the client went away before acknowledging.

    Both the builtin ``TimeoutError`` and ``socketio.exceptions.TimeoutError`` catch it.
    """


class AckLimitError(RuntimeError):
    """A socket already has ``max_pending_acks`` server-initiated acknowledgements outstanding."""


class DisconnectReason:
    """The ``reason`` strings given to ``disconnect(sid, reason)`` handlers (python-socketio's values)."""

    SERVER_DISCONNECT = "server disconnect"
    CLIENT_DISCONNECT = "client disconnect"
    PING_TIMEOUT = "ping timeout"
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"
    #: Our addition: the client broke the Socket.IO protocol and the connection was closed.
    PROTOCOL_ERROR = "parse error"
