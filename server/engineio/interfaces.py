"""The interfaces around an Engine.IO socket: the application above it, and the server that hosts it.

Owns: ``EngineApp`` (what the layer above, Socket.IO, implements; the contract of where each coroutine
runs is in ``socket.py``) and ``SocketHost`` (what an ``EngineSocket`` needs of its server:
``EngineServer`` is one). Knows nothing of HTTP, packets or trio tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from actors.timers import TimerQueue
from server.engineio.config import EngineConfig

if TYPE_CHECKING:
    from server.engineio.socket import EngineSocket


class EngineApp(Protocol):
    """What the layer above (Socket.IO) implements."""

    async def engine_connect(self, sock: EngineSocket) -> None: ...

    async def engine_message(self, sock: EngineSocket, data: str | bytes) -> None: ...

    async def engine_disconnect(self, sock: EngineSocket, reason: str) -> None: ...


class SocketHost(Protocol):
    """What an ``EngineSocket`` needs of its server (``EngineServer`` is one)."""

    @property
    def app(self) -> EngineApp: ...

    @property
    def config(self) -> EngineConfig: ...

    @property
    def timers(self) -> TimerQueue: ...

    def forget(self, sock: EngineSocket) -> None:
        """The socket is closed: its sid is unknown from now on."""

    def upgraded(self, sock: EngineSocket) -> None:
        """The socket moved to its websocket (an observer may want to know)."""

    def defer_disconnect(self, sock: EngineSocket) -> None:
        """Run ``sock.notify_disconnect()`` soon in a task of the server (no request task will)."""
