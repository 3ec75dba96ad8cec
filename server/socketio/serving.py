"""Mounting the Socket.IO server on the HTTP layer, and running the whole stack.

Owns: building the ``EngineServer`` whose application is a Socket.IO ``Server`` (``engine_server``),
mounting it on a ``Router`` (``mount``), and ``serve``: the socketio server's tasks, the engine's timer
task and the HTTP listener, all in one nursery owned by the caller's task. Knows nothing of packets or
handlers; it only wires ``server.http``, ``server.engineio`` and ``server.socketio.Server`` together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from server.engineio import EngineConfig, EngineServer
from server.http import HttpConfig, HttpServer, Router

if TYPE_CHECKING:
    from server.socketio.server import Server

DEFAULT_PATH = "/socket.io/"


def engine_server(sio: Server, config: EngineConfig | None = None, **options: Any) -> EngineServer:
    """An ``EngineServer`` serving ``sio``; ``options`` (and ``Server(**engine_options)``) override
    ``EngineConfig`` fields (``ping_interval``, ``ping_timeout``, ``max_payload``, ...)."""
    changes = {**sio.engine_options, **options}
    base = config or EngineConfig()
    return EngineServer(sio, base.with_(**changes) if changes else base)


def mount(router: Router, engine: EngineServer, path: str = DEFAULT_PATH) -> None:
    router.mount(path, engine.handle)


async def serve(
    sio: Server,
    host: str = "127.0.0.1",
    port: int = 5000,
    *,
    path: str = DEFAULT_PATH,
    router: Router | None = None,
    http_config: HttpConfig | None = None,
    engine_config: EngineConfig | None = None,
    task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run HTTP + Engine.IO + Socket.IO until cancelled. ``task_status.started`` reports the
    ``HttpServer`` (its ``port`` / ``url`` are the bound ones; ``port=0`` picks a free port). Pass a
    ``router`` to serve other routes on the same port (the Socket.IO path is mounted on it)."""
    engine = engine_server(sio, engine_config)
    router = router or Router()
    mount(router, engine, path)
    config = (http_config or HttpConfig()).with_(host=host, port=port)
    http = HttpServer(config, router)
    async with trio.open_nursery() as nursery:
        await nursery.start(sio.run)
        await nursery.start(engine.run)
        await nursery.start(http.serve)
        task_status.started(http)
