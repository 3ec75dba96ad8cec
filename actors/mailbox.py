"""A session's mailbox: a bounded FIFO with a lazily created wakeup.

Owns: ``Mailbox``. Senders never block: ``put`` either accepts or raises ``MailboxFull`` (the explicit
overflow answer). The actor drains in batches. An idle mailbox holds no deque and no event, so a parked
session costs a few dozen bytes here. Knows nothing of message types.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import trio

from actors.errors import MailboxClosed, MailboxFull

T = TypeVar("T")

DEFAULT_CAPACITY = 1024


class Mailbox(Generic[T]):
    __slots__ = ("_closed", "_items", "_waiter", "capacity")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("mailbox capacity must be >= 1")
        self.capacity = capacity
        self._items: deque[T] | None = None
        self._waiter: trio.lowlevel.Task | None = None  # the task parked in ``wait`` (no Event: memory)
        self._closed = False

    def __len__(self) -> int:
        return 0 if self._items is None else len(self._items)

    @property
    def depth(self) -> int:
        return len(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T, *, force: bool = False) -> None:
        """Enqueue without blocking. ``force`` skips the bound (runtime-internal control messages only)."""
        if self._closed:
            raise MailboxClosed("mailbox closed")
        items = self._items
        if items is None:
            items = self._items = deque()
        elif not force and len(items) >= self.capacity:
            raise MailboxFull(f"mailbox full ({self.capacity} messages)")
        items.append(item)
        self.wake()

    def requeue(self, items: list[T]) -> None:
        """Put ``items`` back at the front, in order, past the bound (work taken out by a batch that crashed
        before handling it). Ignored once closed: the caller rejects them instead."""
        if not items or self._closed:
            return
        queue = self._items
        if queue is None:
            queue = self._items = deque()
        queue.extendleft(reversed(items))

    def wake(self) -> None:
        """Let the task parked in ``wait`` return, whether or not anything was put (a poke)."""
        task = self._waiter
        if task is not None:
            self._waiter = None
            trio.lowlevel.reschedule(task)

    def drain(self, limit: int = 0) -> list[T]:
        """Take everything queued (or up to ``limit`` items), oldest first."""
        items = self._items
        if not items:
            return []
        if limit <= 0 or len(items) <= limit:
            out = list(items)
            self._items = None
            return out
        return [items.popleft() for _ in range(limit)]

    def peek_all(self) -> list[T]:
        return [] if self._items is None else list(self._items)

    async def wait(self) -> None:
        """Return once the mailbox is non-empty (at once if it already is) or ``wake`` was called. One task
        waits at a time (the actor's loop): a second one raises ``trio.BusyResourceError``."""
        if self._items:
            await trio.lowlevel.checkpoint()
            return
        if self._waiter is not None:
            raise trio.BusyResourceError("another task is already waiting on this mailbox")
        self._waiter = trio.lowlevel.current_task()

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            self._waiter = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def close(self) -> list[T]:
        """Refuse further puts; return what was still queued."""
        self._closed = True
        return self.drain()
