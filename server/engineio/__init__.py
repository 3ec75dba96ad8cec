"""Engine.IO v4 server on trio: a sans-IO socket state machine, polling and websocket transports.

Public surface: ``EngineServer`` (an HTTP handler plus its ``run`` task), ``EngineConfig``,
``EngineSocket``, ``EngineApp`` (what the layer above implements), ``SocketHost`` (what a socket needs of
its server) and ``OutgoingMessage`` (a message encoded once for a fan-out). Modules: the sans-IO core
(``protocol``, ``_state``, ``codec``), the trio glue (``socket``: one socket and its transports;
``server``: routing, sids, the timer task; ``cors``), ``interfaces`` and ``serving`` (mounting on
``server.http`` and running the whole stack). Knows nothing of Socket.IO.
"""

from server.engineio.codec import OutgoingMessage
from server.engineio.config import EngineConfig
from server.engineio.interfaces import EngineApp, SocketHost
from server.engineio.server import EngineServer
from server.engineio.socket import EngineSocket

__all__ = ["EngineApp", "EngineConfig", "EngineServer", "EngineSocket", "OutgoingMessage", "SocketHost"]
