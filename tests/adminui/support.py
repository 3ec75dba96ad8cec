"""What the Admin UI tests share: ``Admin``, python-socketio's client on ``/admin`` as the Admin UI would
drive it (recording every event), and ``login_refused``. Blocking: call it through ``trio.to_thread``.
Knows nothing of the server under test beyond its URL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import socketio

TOKEN = "admin-ui-test-token"
WAIT = 10.0

Events = list[tuple[str, tuple[Any, ...]]]


class Admin:
    """A python-socketio client on /admin that records every event with its arguments."""

    def __init__(self, url: str, auth: dict[str, Any] | None) -> None:
        self.url, self.auth = url, auth
        self.events: Events = []
        self.cond = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._record, namespace="/admin")
        self.client.on("connect_error", lambda data: self._record("connect_error", data), namespace="/admin")

    def _record(self, event: str, *args: Any) -> None:
        with self.cond:
            self.events.append((event, args))
            self.cond.notify_all()

    def connect(self) -> None:
        self.client.connect(self.url, namespaces=["/admin"], auth=self.auth, transports=["websocket"],
                            wait_timeout=WAIT)

    @property
    def sid(self) -> str:
        sid = self.client.get_sid("/admin")
        assert sid is not None
        return sid

    def wait_for(self, event: str) -> tuple[Any, ...]:
        return self.wait_until(event, lambda _: True)

    def wait_until(
        self, event: str, match: Callable[[tuple[Any, ...]], bool], timeout: float = WAIT
    ) -> tuple[Any, ...]:
        """The first ``event`` whose arguments ``match``; fails after ``timeout``."""
        def found() -> tuple[Any, ...] | None:
            return next((a for e, a in self.events if e == event and match(a)), None)

        with self.cond:
            ok = self.cond.wait_for(lambda: found() is not None, timeout=timeout)
            assert ok, (event, self.events)
            result = found()
            assert result is not None
            return result

    def named(self, event: str) -> list[tuple[Any, ...]]:
        with self.cond:
            return [a for e, a in self.events if e == event]

    def close(self) -> None:
        self.client.disconnect()
        self.client.shutdown()


def login_refused(url: str, auth: dict[str, Any] | None) -> str:
    """Log in with ``auth``, expect a refusal, return its message."""
    admin = Admin(url, auth)
    with pytest.raises(socketio.exceptions.ConnectionError):
        admin.connect()
    admin.client.disconnect()
    (data,) = admin.wait_for("connect_error")
    message: str = data["message"]
    return message
