"""The connection handle the actor runtime sees.

Owns: the ``Connection`` protocol. A connection is whatever the transport gives the actor: it must not block
the actor, so ``send`` is synchronous and bounded. Knows nothing of sockets or Socket.IO.
"""

from __future__ import annotations

from typing import Protocol

from actors.events import OutboundEvent


class Connection(Protocol):
    """A client connection attached to a session."""

    @property
    def id(self) -> str:
        """Unique per connection, stable for its life (the gateway uses the Socket.IO sid)."""
        ...

    def send(self, event: OutboundEvent) -> bool:
        """Queue ``event`` without blocking. False if the connection cannot take it (closed, or its bounded
        outbound buffer is full): the caller then treats the connection as gone and closes it."""
        ...

    def close(self, reason: str) -> None:
        """Close the connection without blocking (idempotent)."""
        ...

    async def wait_writable(self) -> None:
        """Return when the outbound buffer is below its low-water mark, or the connection is closed."""
        ...
