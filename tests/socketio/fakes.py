"""A fake EngineSocket and helpers to drive ``server.socketio.Server`` without any network."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from server.engineio import OutgoingMessage
from server.http.types import Request
from server.socketio import Server


def make_request(query: str = "EIO=4&transport=websocket") -> Request:
    pairs = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    return Request(
        method="GET",
        target="/socket.io/?" + query,
        path="/socket.io/",
        query=pairs,
        headers={"host": "localhost:5000", "user-agent": "fake", "x-forwarded-for": "10.0.0.1"},
        body=b"",
        remote=("127.0.0.1", 40000),
    )


class FakeSocket:
    """Records what the server sends; ``capacity`` messages at most, then it closes itself (overfull)."""

    def __init__(
        self, sid: str = "eio-1", *, capacity: int | None = None, query: str = "EIO=4&transport=websocket"
    ) -> None:
        self.sid = sid
        self.request = make_request(query)
        self.transport = "websocket"
        self.sent: list[str | bytes] = []
        self.raw: list[str | bytes | OutgoingMessage] = []
        self.closed = False
        self.close_reason: str | None = None
        self.capacity = capacity
        self.flushes: list[int] = []  # len(sent) at each flush()

    def send(self, data: str | bytes | OutgoingMessage) -> None:
        if self.closed:
            return
        self.raw.append(data)
        self.sent.append(data.data if isinstance(data, OutgoingMessage) else data)
        if self.capacity is not None and len(self.sent) > self.capacity:
            self.close("transport error")

    def flush(self) -> None:
        self.flushes.append(len(self.sent))

    def close(self, reason: str = "server disconnect") -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason

    async def wait_writable(self) -> None:
        await trio.lowlevel.checkpoint()

    def take(self) -> list[str | bytes]:
        sent, self.sent = self.sent, []
        self.raw = []
        return sent


@asynccontextmanager
async def running(sio: Server) -> AsyncIterator[Server]:
    async with trio.open_nursery() as nursery:
        await nursery.start(sio.run)
        try:
            yield sio
        finally:
            nursery.cancel_scope.cancel()


async def connect(sio: Server, sock: FakeSocket, namespace: str = "/", auth: Any = None) -> str:
    """Engine connect (if new) + CONNECT; returns the Socket.IO sid from the reply and clears ``sent``."""
    if not sock.sent and not sock.raw and sock.sid not in sio._conns:
        await sio.engine_connect(sock)
    head = "0" if namespace == "/" else f"0{namespace},"
    await sio.engine_message(sock, head + (json.dumps(auth) if auth is not None else ""))
    reply = sock.sent[0]
    assert isinstance(reply, str)
    assert reply.startswith(head), reply
    sid: str = json.loads(reply[len(head):])["sid"]
    sock.take()
    return sid
