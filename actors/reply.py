"""A one-shot reply slot: how an actor answers a sender without the sender sharing its task.

Owns: ``Reply``. ``set``/``fail`` never block (the actor must not wait for a sender); ``await get()`` waits.
Knows nothing of actors or sessions.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Reply(Generic[T]):
    """Set once, read by one or more waiters. The first ``set``/``fail`` wins; later ones return False."""

    __slots__ = ("_done", "_error", "_event", "_value")

    def __init__(self) -> None:
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._event: trio.Event | None = None

    @property
    def done(self) -> bool:
        return self._done

    def set(self, value: T) -> bool:
        if self._done:
            return False
        self._value = value
        self._finish()
        return True

    def fail(self, error: BaseException) -> bool:
        if self._done:
            return False
        self._error = error
        self._finish()
        return True

    def _finish(self) -> None:
        self._done = True
        if self._event is not None:
            self._event.set()

    def result(self) -> T:
        """The value now (raises the error set by ``fail``; RuntimeError if not done yet)."""
        if not self._done:
            raise RuntimeError("reply not set yet")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    async def get(self) -> T:
        """Wait for the value; raise the error if the actor answered with one."""
        if not self._done:
            if self._event is None:
                self._event = trio.Event()
            await self._event.wait()
        else:
            await trio.lowlevel.checkpoint()
        return self.result()
