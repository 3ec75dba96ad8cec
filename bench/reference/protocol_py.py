"""Reference protocol test server on python-socketio's AsyncServer + uvicorn (default asyncio loop).

Owns: the same behaviour as our `scripts/protocol-test-server` (see shared PROTOCOL.md, "The protocol test
server"), so scripts/bench-protocol compares like with like: Engine.IO echo at /engine.io/, Socket.IO at
/socket.io/ with namespaces / and /custom, `auth` emitted on connect, `message` -> `message-back`,
`message-with-ack` acked with the same arguments. One deviation: python-engineio announces pingInterval as
whole seconds (0.3 s goes out as 0, and clients then time out), so this reference pings every 1 s with a 1 s
timeout instead of 300/200 ms; pings are a negligible share of the echo workload either way.
Must not know: anything of the benchmark driver or of our server. A reference, not product code (asyncio).

Usage: python bench/reference/protocol_py.py PORT
"""

from __future__ import annotations

from typing import Any

import engineio
import socketio
from _uvicorn import serve  # bench/reference is on sys.path: the script's own folder

OPTIONS: dict[str, Any] = {
    "async_mode": "asgi",
    "ping_interval": 1,
    "ping_timeout": 1,
    "max_http_buffer_size": 1_000_000,
    "cors_allowed_origins": "*",
}

sio = socketio.AsyncServer(namespaces=["/", "/custom"], **OPTIONS)
eio = engineio.AsyncServer(**OPTIONS)


@eio.on("message")
async def engine_echo(sid: str, data: Any) -> None:
    await eio.send(sid, data)


def _connect_handler(namespace: str) -> Any:
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.emit("auth", auth if auth is not None else {}, to=sid, namespace=namespace)

    return connect


for _nsp in ("/", "/custom"):
    sio.on("connect", namespace=_nsp)(_connect_handler(_nsp))


@sio.on("message")
async def message(sid: str, *args: Any) -> None:
    await sio.emit("message-back", args, to=sid)


@sio.on("message-with-ack")
async def message_with_ack(sid: str, *args: Any) -> tuple[Any, ...]:
    return args


app = socketio.ASGIApp(
    sio, other_asgi_app=engineio.ASGIApp(eio, engineio_path="engine.io"), socketio_path="socket.io"
)

if __name__ == "__main__":
    serve(app)
