"""Socket.IO v5 on trio, on top of ``server.engineio``, with python-socketio's ``AsyncServer`` API.

Public surface: ``Server`` (the application object and the Engine.IO application), the exceptions
(``ConnectionRefusedError``, ``TimeoutError``, ``AckLimitError``), ``DisconnectReason``, and for tests and
other transports the sans-IO core ``SocketIOProtocol``. Modules: ``protocol`` (the per-connection state
machine), ``codec`` (packets), ``rooms``, ``handlers``, ``timers``, ``environ``, ``server`` (the runtime),
``serving`` (mounting on ``server.http`` and running the whole stack).
"""

from server.socketio.errors import AckLimitError, ConnectionRefusedError, DisconnectReason, TimeoutError
from server.socketio.protocol import SocketIOProtocol
from server.socketio.server import Server

__all__ = [
    "AckLimitError",
    "ConnectionRefusedError",
    "DisconnectReason",
    "Server",
    "SocketIOProtocol",
    "TimeoutError",
]
