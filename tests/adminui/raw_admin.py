"""A bare Admin UI client for the load tests: Engine.IO and Socket.IO over a trio-websocket, on a TCP socket
whose receive buffer the test may shrink, so that an admin which stops reading really stops taking bytes.

Owns: ``raw_admin`` (connect, log in on /admin, yield a ``RawAdmin``), ``RawAdmin.read`` (decode events,
answer pings). Knows nothing of the server beyond the wire protocols.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

Event = tuple[str, list[Any]]


class RawAdmin:
    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.sid = ""
        self.events: list[Event] = []
        self.closed = False

    async def _packet(self) -> str:
        while True:
            message = await self.ws.get_message()
            assert isinstance(message, str)
            if message == "2":
                await self.ws.send_message("3")
                continue
            return message

    async def login(self, auth: dict[str, Any]) -> None:
        opened = await self._packet()
        assert opened.startswith("0{"), opened
        await self.ws.send_message("40/admin," + json.dumps(auth))
        while not self.sid:
            packet = await self._packet()
            if packet.startswith("40/admin,"):
                self.sid = json.loads(packet[len("40/admin,"):])["sid"]
            elif packet.startswith("44/admin,"):
                raise ConnectionRefusedError(packet)
            else:
                self._keep(packet)

    def _keep(self, packet: str) -> None:
        if packet.startswith("42/admin,"):
            name, *args = json.loads(packet[len("42/admin,"):])
            self.events.append((name, args))

    async def read(self, *, until: Callable[[Event], bool] | None = None) -> None:
        """Record events (forever, or until one matches ``until``); returns early if the server hangs up."""
        try:
            while True:
                count = len(self.events)
                self._keep(await self._packet())
                if until is not None and len(self.events) > count and until(self.events[-1]):
                    return
        except ConnectionClosed:
            self.closed = True

    def named(self, name: str) -> list[list[Any]]:
        return [args for event, args in self.events if event == name]


@asynccontextmanager
async def raw_admin(port: int, auth: dict[str, Any], *, rcvbuf: int | None = None) -> AsyncIterator[RawAdmin]:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window too
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    async with trio.open_nursery() as nursery:
        ws = await wrap_client_stream(nursery, stream, "127.0.0.1", "/socket.io/?EIO=4&transport=websocket",
                                      receive_buffer_size=4096)
        admin = RawAdmin(ws)
        await admin.login(auth)
        try:
            yield admin
        finally:
            nursery.cancel_scope.cancel()
            await stream.aclose()
