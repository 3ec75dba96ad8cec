"""Engine.IO v4 server on trio: a sans-IO socket state machine, polling and websocket transports.

Public surface: ``EngineServer`` (an HTTP handler plus its ``run`` task), ``EngineConfig``,
``EngineSocket``, ``EngineApp`` (what the layer above implements) and ``OutgoingMessage`` (a message
encoded once for a fan-out). Knows nothing of Socket.IO.
"""

from server.engineio.codec import OutgoingMessage
from server.engineio.config import EngineConfig
from server.engineio.server import EngineServer
from server.engineio.socket import EngineApp, EngineSocket

__all__ = ["EngineApp", "EngineConfig", "EngineServer", "EngineSocket", "OutgoingMessage"]
