"""A python-socketio AsyncServer on uvicorn, run as a subprocess: the reference server for client tests.

Owns: a small, scriptable Socket.IO v5 server used to test our clients (the trio client and the JS kit)
while our own server layers are not ready, and later as a behavioural reference. It is test support only:
it runs under asyncio in its own process and is never imported by product code.

Usage: ``python pysio_server.py [--host 127.0.0.1] [--port 0] [--ping-interval S] [--ping-timeout S]
[--max-payload N]``; the same settings can come from ``PYSIO_PING_INTERVAL``, ``PYSIO_PING_TIMEOUT``,
``PYSIO_MAX_PAYLOAD``. It binds first, then prints ``PORT <n>`` on stdout (flushed), then serves until killed.

Behaviour, in namespaces ``/`` and ``/custom`` (any other namespace is refused by python-socketio):
- connect: refused with ``ConnectionRefusedError("unauthorized", {"msg_id": "AUTH$ERR"})`` when auth has
  ``token == "bad"`` or the query has ``refuse``; otherwise remembers query, auth and ``x-*`` headers.
- ``whoami`` (ack): ``{"sid", "namespace", "query", "auth", "headers"}`` of this connection.
- ``message``: emits ``message-back`` with the same arguments (binary included).
- ``message-with-ack`` (ack): the same arguments.
- ``server-call`` ``(event, data)``: calls the client with ``event``/``data`` and emits ``server-call-result``
  with ``{"answer": <the client's ack: one value, a list for several, null for none>}`` or
  ``{"answer": {"error": "timeout"}}``.
- ``emit-many`` ``(count)``: emits ``seq`` ``0..count-1`` to the caller.
- ``kick``: Socket.IO disconnect of this namespace (``41``). ``kick-transport``: Engine.IO close of the whole
  connection.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any
from urllib.parse import parse_qs

import socketio
import uvicorn

NAMESPACES = ("/", "/custom")


def build_app(ping_interval: float, ping_timeout: float, max_payload: int) -> Any:
    sio = socketio.AsyncServer(
        async_mode="asgi",
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_http_buffer_size=max_payload,
        cors_allowed_origins="*",
        logger=False,
        engineio_logger=False,
    )
    info: dict[tuple[str, str], dict[str, Any]] = {}

    def register(namespace: str) -> None:
        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
            query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            if (isinstance(auth, dict) and auth.get("token") == "bad") or "refuse" in query:
                raise socketio.exceptions.ConnectionRefusedError("unauthorized", {"msg_id": "AUTH$ERR"})
            headers = {
                key[5:].lower().replace("_", "-"): value
                for key, value in environ.items()
                if key.startswith("HTTP_X_")
            }
            for name in ("EIO", "transport", "t", "sid"):
                query.pop(name, None)
            info[(namespace, sid)] = {
                "sid": sid,
                "namespace": namespace,
                "query": query,
                "auth": auth if auth is not None else {},
                "headers": headers,
            }

        async def disconnect(sid: str, reason: Any = None) -> None:
            info.pop((namespace, sid), None)

        async def whoami(sid: str, *args: Any) -> Any:
            return info.get((namespace, sid))

        async def message(sid: str, *args: Any) -> None:
            await sio.emit("message-back", args if len(args) != 1 else args[0], to=sid, namespace=namespace)

        async def message_with_ack(sid: str, *args: Any) -> Any:
            return args

        async def server_call(sid: str, event: str, data: Any = None) -> None:
            try:
                answer = await sio.call(event, data, to=sid, namespace=namespace, timeout=5)
            except socketio.exceptions.TimeoutError:
                answer = {"error": "timeout"}
            if isinstance(answer, tuple):
                answer = list(answer)
            await sio.emit("server-call-result", {"answer": answer}, to=sid, namespace=namespace)

        async def emit_many(sid: str, count: int) -> None:
            for i in range(int(count)):
                await sio.emit("seq", i, to=sid, namespace=namespace)

        async def kick(sid: str, *args: Any) -> None:
            await sio.disconnect(sid, namespace=namespace)

        async def kick_transport(sid: str, *args: Any) -> None:
            eio_sid = sio.manager.eio_sid_from_sid(sid, namespace)
            await sio.eio.disconnect(eio_sid)

        handlers = {
            "connect": connect,
            "disconnect": disconnect,
            "whoami": whoami,
            "message": message,
            "message-with-ack": message_with_ack,
            "server-call": server_call,
            "emit-many": emit_many,
            "kick": kick,
            "kick-transport": kick_transport,
        }
        for name, handler in handlers.items():
            sio.on(name, handler, namespace=namespace)

    for namespace in NAMESPACES:
        register(namespace)
    return socketio.ASGIApp(sio, socketio_path="socket.io")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--ping-interval", type=float, default=float(os.environ.get("PYSIO_PING_INTERVAL", 25))
    )
    parser.add_argument("--ping-timeout", type=float, default=float(os.environ.get("PYSIO_PING_TIMEOUT", 20)))
    parser.add_argument(
        "--max-payload", type=int, default=int(os.environ.get("PYSIO_MAX_PAYLOAD", 1_000_000))
    )
    args = parser.parse_args(argv)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    app = build_app(args.ping_interval, args.ping_timeout, args.max_payload)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="wsproto")
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
