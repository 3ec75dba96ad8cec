"""In-memory transports for driving the trio client against a scripted fake server (no sockets).

Owns: a ``Connector`` whose connections are pairs of bounded memory channels, a queue of accepted
connections for the test to play the server on, scripted refusals, and a record of the URLs and headers
each attempt used. Must not know about: the client's internals; tests speak Engine.IO text to it.

Use with ``trio.testing.MockClock`` (``autojump_clock``) to test heartbeats, backoff and timeouts exactly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from server.client.transport import Transport, TransportClosed, TransportError

__all__ = ["MemoryConnector", "ServerEnd"]

Message = str | bytes


class _ClientEnd:
    def __init__(
        self, outgoing: trio.MemorySendChannel[Message], incoming: trio.MemoryReceiveChannel[Message]
    ) -> None:
        self._outgoing = outgoing
        self._incoming = incoming

    async def send(self, message: Message) -> None:
        try:
            await self._outgoing.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise TransportClosed("transport close") from None

    async def receive(self) -> Message:
        try:
            return await self._incoming.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise TransportClosed("transport close") from None

    def close(self) -> None:
        self._outgoing.close()
        self._incoming.close()


class ServerEnd:
    """The fake server's side of one connection."""

    def __init__(
        self,
        url: str,
        headers: Sequence[tuple[str, str]],
        outgoing: trio.MemorySendChannel[Message],
        incoming: trio.MemoryReceiveChannel[Message],
    ) -> None:
        self.url = url
        self.headers = list(headers)
        self._outgoing = outgoing
        self._incoming = incoming
        self.closed = trio.Event()

    async def send(self, message: Message) -> None:
        await self._outgoing.send(message)

    async def receive(self) -> Message:
        """The next message from the client; raises ``trio.EndOfChannel`` once the client closed."""
        return await self._incoming.receive()

    def close(self) -> None:
        """Drop the connection from the server side (the client sees its transport close)."""
        self._outgoing.close()

    async def handshake(
        self, *, ping_interval_ms: int = 300, ping_timeout_ms: int = 200, sid: str = "eio-sid"
    ) -> list[Message]:
        """Send OPEN and accept the first CONNECT (returned); use ``accept_connects`` for more namespaces."""
        opening = {
            "sid": sid,
            "upgrades": [],
            "pingInterval": ping_interval_ms,
            "pingTimeout": ping_timeout_ms,
        }
        await self.send("0" + json.dumps(opening))
        first = await self.receive()
        assert isinstance(first, str) and first.startswith("40"), first
        await self.send(_connect_reply(first))
        return [first]

    async def accept_connects(self, count: int) -> list[str]:
        """Answer ``count`` further CONNECT packets with success."""
        got: list[str] = []
        for _ in range(count):
            packet = await self.receive()
            assert isinstance(packet, str) and packet.startswith("40"), packet
            await self.send(_connect_reply(packet))
            got.append(packet)
        return got


def _connect_reply(connect: str) -> str:
    body = connect[2:]
    namespace = body.split(",", 1)[0] + "," if body.startswith("/") else ""
    return f'40{namespace}{{"sid":"sio-{namespace or "/"}"}}'


class MemoryConnector:
    """A ``Connector``; each accepted connection's ``ServerEnd`` is delivered on ``accepted``."""

    def __init__(self, buffer: int = 64) -> None:
        self._buffer = buffer
        self._accepted_send, self.accepted = trio.open_memory_channel[ServerEnd](16)
        self.refuse_next = 0
        self.attempts: list[dict[str, Any]] = []

    @asynccontextmanager
    async def __call__(self, url: str, headers: Sequence[tuple[str, str]]) -> AsyncIterator[Transport]:
        self.attempts.append({"url": url, "headers": list(headers), "time": trio.current_time()})
        if self.refuse_next > 0:
            self.refuse_next -= 1
            raise TransportError("connection refused (scripted)")
        to_server_send, to_server_recv = trio.open_memory_channel[Message](self._buffer)
        to_client_send, to_client_recv = trio.open_memory_channel[Message](self._buffer)
        client = _ClientEnd(to_server_send, to_client_recv)
        server = ServerEnd(url, headers, to_client_send, to_server_recv)
        await self._accepted_send.send(server)
        try:
            yield client
        finally:
            client.close()
            server.closed.set()
