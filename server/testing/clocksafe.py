"""A store wrapper that keeps trio's autojump clock still while a store call runs in a worker thread.

Owns: ``ClockSafeStore``. ``SqliteStore`` does its I/O in ``trio.to_thread``; while the thread works every
trio task is blocked, and ``MockClock(autojump_threshold=0)`` takes "every task blocked" to mean "nothing
can happen before the next deadline" and jumps to it. A test waiting ``receive(timeout=5)`` for an event that
is being committed in the thread then times out after 5 virtual seconds. This wrapper runs a task that keeps
checkpointing while a call is in flight, so the scheduler is never idle and the clock does not jump; with any
other clock it only delegates. Knows nothing of what the store holds or of the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import outcome
import trio
import trio.testing

from actors.events import StoredEvent
from actors.stores.base import SessionRecord, Store

__all__ = ["ClockSafeStore"]

T = TypeVar("T")


def _mock_clock_running() -> bool:
    return isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)


class ClockSafeStore:
    """``Store`` delegating to ``inner``; under a MockClock, no autojump happens while a call is pending."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"ClockSafeStore({self.inner!r})"

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        if not _mock_clock_running():
            return await fn()
        captured: list[outcome.Outcome[T]] = []

        async def call(cancel: trio.CancelScope) -> None:
            try:
                captured.append(await outcome.acapture(fn))
            finally:
                cancel.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, nursery.cancel_scope)
            while True:  # keep one task runnable: the clock only autojumps when all tasks are blocked
                await trio.lowlevel.checkpoint()
        if not captured:  # cancelled from outside before the call finished
            await trio.lowlevel.checkpoint()
            raise RuntimeError("store call did not complete")
        return captured[0].unwrap()

    async def open(self) -> None:
        await self._call(self.inner.open)

    async def close(self) -> None:
        await self._call(self.inner.close)

    async def load(self, session_id: str) -> SessionRecord | None:
        return await self._call(lambda: self.inner.load(session_id))

    async def create(self, session_id: str, owner: str | None) -> SessionRecord:
        return await self._call(lambda: self.inner.create(session_id, owner))

    async def append(self, session_id: str, events: list[StoredEvent], *, fence: int | None = None) -> None:
        await self._call(lambda: self.inner.append(session_id, events, fence=fence))

    async def events_after(self, session_id: str, after_id: int, limit: int) -> list[StoredEvent]:
        return await self._call(lambda: self.inner.events_after(session_id, after_id, limit))

    async def save_snapshot(self, session_id: str, snapshot: dict[str, Any], event_id: int) -> None:
        await self._call(lambda: self.inner.save_snapshot(session_id, snapshot, event_id))

    async def list_sessions(self, *, after: str | None = None, limit: int = 100) -> list[SessionRecord]:
        return await self._call(lambda: self.inner.list_sessions(after=after, limit=limit))

    async def count_sessions(self) -> int:
        return await self._call(self.inner.count_sessions)

    async def delete(self, session_id: str) -> None:
        await self._call(lambda: self.inner.delete(session_id))
