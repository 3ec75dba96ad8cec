"""Mounting an Engine.IO application on the HTTP layer, and running the whole stack.

Owns: ``mount`` (an ``EngineServer`` on a ``Router``) and ``serve``: the application's own task, the
engine's timer task and the HTTP listener, all in one nursery owned by the caller's task. The layers above
(``server.socketio.Server.serve``) come here instead of importing ``server.http``: this module re-exports
the HTTP types their callers pass through (``Router``, ``HttpConfig``, ``HttpServer``). Knows nothing of
packets, handlers or Socket.IO.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from server.engineio.server import EngineServer
from server.http import HttpConfig, HttpServer, Router

__all__ = ["DEFAULT_PATH", "HttpConfig", "HttpServer", "Router", "mount", "serve"]

DEFAULT_PATH = "/socket.io/"


def mount(router: Router, engine: EngineServer, path: str = DEFAULT_PATH) -> None:
    router.mount(path, engine.handle)


async def serve(
    engine: EngineServer,
    app_run: Callable[..., Awaitable[None]],
    host: str = "127.0.0.1",
    port: int = 5000,
    *,
    path: str = DEFAULT_PATH,
    router: Router | None = None,
    http_config: HttpConfig | None = None,
    task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run HTTP + ``engine`` + the application's task ``app_run`` (started first, with
    ``nursery.start``) until cancelled. ``task_status.started`` reports the ``HttpServer`` (its ``port``
    / ``url`` are the bound ones; ``port=0`` picks a free port). Pass a ``router`` to serve other routes on
    the same port (the Engine.IO path is mounted on it)."""
    router = router or Router()
    mount(router, engine, path)
    config = (http_config or HttpConfig()).with_(host=host, port=port)
    http = HttpServer(config, router)
    async with trio.open_nursery() as nursery:
        await nursery.start(app_run)
        await nursery.start(engine.run)
        await nursery.start(http.serve)
        task_status.started(http)
