"""Exceptions raised by the trio Socket.IO client to its caller.

Owns: the names a caller catches. Must not know about: transports, protocol details, trio.
``ProtocolError`` (bad input from the server) lives in ``protocol`` and is re-exported by the package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClientError", "ConnectError", "ConnectionFailedError", "DisconnectedError"]


class ClientError(Exception):
    """Base class of everything the client raises on purpose."""


class ConnectError(ClientError):
    """The server refused a namespace CONNECT with CONNECT_ERROR ``44{"message": ..., "data": ...}``."""

    def __init__(self, message: str, data: Any = None, namespace: str = "/") -> None:
        super().__init__(message, data)
        self.message = message
        self.data = data
        self.namespace = namespace

    def __str__(self) -> str:
        suffix = f" (data: {self.data!r})" if self.data is not None else ""
        return f"namespace {self.namespace!r} refused: {self.message}{suffix}"


class ConnectionFailedError(ClientError):
    """The first connection could not be made (network, HTTP refusal, handshake timeout, bad handshake)."""


class DisconnectedError(ClientError):
    """The operation needs a live connection and there is none (lost, reconnecting, or the client closed)."""
