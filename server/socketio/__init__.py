"""Socket.IO v5 on trio, on top of ``server.engineio``, with python-socketio's ``AsyncServer`` API.

Public surface: ``Server`` (the application object and the Engine.IO application), the exceptions
(``ConnectionRefusedError``, ``TimeoutError``, ``AckLimitError``), ``DisconnectReason``, the observer
interface ``Instrumentation`` (with ``Handshake``), and for tests and other transports the sans-IO core
``SocketIOProtocol``. Modules: ``protocol`` (the per-connection state machine), ``codec`` (packets),
``rooms``, ``handlers``, ``environ``, ``transport`` (what this layer needs of the connection below it),
``instrument`` (observer hooks), ``delivery`` (options, tables, output), ``engine_app`` (the Engine.IO
callbacks and the sid lifecycle), ``server`` (the public API). Imports nothing of ``server.http``; serving
the whole stack goes through ``server.engineio.serving``.
"""

from server.socketio.errors import AckLimitError, ConnectionRefusedError, DisconnectReason, TimeoutError
from server.socketio.instrument import Handshake, Instrumentation
from server.socketio.protocol import SocketIOProtocol
from server.socketio.server import Server

__all__ = [
    "AckLimitError",
    "ConnectionRefusedError",
    "DisconnectReason",
    "Handshake",
    "Instrumentation",
    "Server",
    "SocketIOProtocol",
    "TimeoutError",
]
