"""The CONNECT reply goes to the peer in a write of its own, before what the connect handler emitted.

A client that reads one message per await (the official socket.io-protocol suite, on ws 8) loses the
second of two frames that arrive in one TCP segment; Node writes the reply and the handler's emits in
separate ticks, so ours must not coalesce them either (issue 12, part 1).
"""

from __future__ import annotations

from typing import Any

from server.socketio import Server
from tests.socketio.fakes import FakeSocket, running


async def test_connect_reply_is_flushed_before_the_handlers_emits() -> None:
    sio = Server()

    @sio.on("connect")
    async def on_connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        await sio.emit("auth", auth, to=sid)

    async with running(sio):
        sock = FakeSocket()
        await sio.engine_connect(sock)
        await sio.engine_message(sock, '0{"token":"t"}')
        assert len(sock.sent) == 2
        assert str(sock.sent[0]).startswith("0{")
        assert sock.sent[1] == '2["auth",{"token":"t"}]'
        assert sock.flushes == [1]  # flushed right after the reply, before the emit
