"""python-socketio's synchronous ``socketio.Client`` as a session-gateway client, for trio tests.

Owns: ``PySioSession``: connect with the gateway's query and auth, record every ``oh_event`` payload and
any CONNECT_ERROR, send ``oh_user_action`` with an ack, wait for events. Every method blocks: call them
through ``trio.to_thread.run_sync`` (the ``athread`` helper). Must not know about the server under test.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlencode

import socketio
import trio

__all__ = ["PySioSession", "athread"]

P = ParamSpec("P")
T = TypeVar("T")

Payload = dict[str, Any]


async def athread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking call in a worker thread (the trio way to use a sync client)."""
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


class PySioSession:
    """One ``socketio.Client`` joined to one conversation."""

    def __init__(self) -> None:
        self.sio = socketio.Client(reconnection=False)
        self.events: list[Payload] = []
        self.connect_error: Any = None
        self.disconnected = threading.Event()
        self._changed = threading.Condition()
        self.sio.on("oh_event", self._on_event)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)

    def _on_event(self, payload: Payload) -> None:
        with self._changed:
            self.events.append(payload)
            self._changed.notify_all()

    def _on_connect_error(self, data: Any = None) -> None:
        self.connect_error = data

    def _on_disconnect(self, reason: Any = None) -> None:
        self.disconnected.set()
        with self._changed:
            self._changed.notify_all()

    def connect(
        self,
        url: str,
        conversation_id: str | None,
        latest_event_id: int | None = None,
        token: str | None = None,
        *,
        extra_query: dict[str, str] | None = None,
        transports: tuple[str, ...] = ("websocket",),
    ) -> None:
        """Raises ``socketio.exceptions.ConnectionError`` on refusal (then see ``connect_error``)."""
        query: dict[str, str] = {}
        if conversation_id is not None:
            query["conversation_id"] = conversation_id
        if latest_event_id is not None:
            query["latest_event_id"] = str(latest_event_id)
        query.update(extra_query or {})
        self.sio.connect(
            f"{url}?{urlencode(query)}" if query else url,
            auth={"token": token} if token is not None else None,
            transports=list(transports),
            wait_timeout=10,
        )

    def act(self, action: Payload, timeout: float = 10.0) -> Any:
        """Send ``oh_user_action`` and return the ack."""
        return self.sio.call("oh_user_action", action, timeout=timeout)

    def wait_for(self, predicate: Callable[[list[Payload]], bool], timeout: float = 10.0) -> list[Payload]:
        """Block until ``predicate(events so far)``; returns a copy of the events. TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.events), timeout):
                raise TimeoutError(f"condition not met within {timeout} s; events: {self.ids()}")
            return list(self.events)

    def wait_for_id(self, event_id: int, timeout: float = 10.0) -> list[Payload]:
        return self.wait_for(lambda evs: any(e.get("id") == event_id for e in evs), timeout)

    def ids(self) -> list[Any]:
        return [e.get("id") for e in self.events]

    def close(self) -> None:
        self.sio.disconnect()
        self.sio.shutdown()
