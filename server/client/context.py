"""``open_client``: the async context manager that connects a ``Client``, owns its task and closes it.

Owns: the nursery the client's connection loop (``Client.run``) lives in, the clean close on exit
(``Client.aclose``), and unwrapping the nursery's exception group so callers catch ``ConnectError``,
``TimeoutError``... as themselves. Must not know about: the protocol, transports or reconnection (``client``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import NoReturn

import trio

from .client import AuthArg, Client, Handler, QueryArg, ReconnectHook
from .transport import Connector

__all__ = ["open_client"]


@asynccontextmanager
async def open_client(
    url: str,
    *,
    query: QueryArg = None,
    auth: AuthArg = None,
    headers: Mapping[str, str] | None = None,
    namespaces: Sequence[str] = ("/",),
    path: str = "socket.io",
    reconnect: bool = True,
    reconnect_delay: float = 0.5,
    reconnect_delay_max: float = 5.0,
    randomization_factor: float = 0.5,
    max_attempts: int | None = None,
    connect_timeout: float = 10.0,
    close_timeout: float = 2.0,
    queue_size: int = 1000,
    on_reconnect: ReconnectHook | None = None,
    handlers: Mapping[str, Handler] | None = None,
    connector: Connector | None = None,
) -> AsyncIterator[Client]:
    """Connect to a Socket.IO v5 server over a websocket; yield a ``Client``; close it on exit.

    ``url`` is ``http(s)://`` or ``ws(s)://`` host (and optional prefix); ``path`` the Engine.IO path.
    ``query`` and ``auth`` are mappings, or callables returning one, re-read at every (re)connect.
    ``on_reconnect(client, attempt)`` (sync or async) runs before each reconnect attempt: update
    ``client.query`` / ``client.auth`` there (e.g. ``latest_event_id``). Reconnect delays grow from
    ``reconnect_delay`` to ``reconnect_delay_max`` with ``±randomization_factor`` jitter; ``max_attempts``
    consecutive failures stop the client (``None``: never). ``connect_timeout`` bounds each connection's
    opening (websocket + Engine.IO + namespace handshakes); ``close_timeout`` the clean close.
    ``queue_size`` bounds the incoming event queue (a full queue stalls the reader: backpressure).
    ``handlers`` are ``{name: handler}`` for namespace ``/``, in place before the first connect (see
    ``Client.on``). ``connector`` replaces the websocket transport (tests).

    Raises ``ConnectError`` if a namespace is refused and ``ConnectionFailedError`` if the first connection
    cannot be made; later losses reconnect in the background.
    """
    client = Client(
        url,
        query=query,
        auth=auth,
        headers=headers,
        namespaces=namespaces,
        path=path,
        reconnect=reconnect,
        reconnect_delay=reconnect_delay,
        reconnect_delay_max=reconnect_delay_max,
        randomization_factor=randomization_factor,
        max_attempts=max_attempts,
        connect_timeout=connect_timeout,
        close_timeout=close_timeout,
        queue_size=queue_size,
        on_reconnect=on_reconnect,
        handlers=handlers,
        connector=connector,
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            try:
                yield client
            finally:
                await client.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Background tasks raise only on bugs or handler errors; the body raises at most one exception.
        # Unwrap so callers can catch ConnectError, TimeoutError... as themselves.
        real = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
        if len(real) == 1:
            _reraise(real[0])
        if not real and group.exceptions:
            _reraise(group.exceptions[0])
        raise


def _reraise(exc: BaseException) -> NoReturn:
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context
