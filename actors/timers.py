"""One task that fires many deadlines: connect timeouts, expiring ack callbacks, sessions' idle deadlines.

Owns: ``TimerQueue``, a heap of (deadline, callback) served by a single task that sleeps in a cancel scope
whose deadline is always the earliest one; scheduling an earlier deadline moves the scope's deadline, so
nothing polls and a connection costs no task of its own. Callbacks are synchronous and must not block; an
exception in one is logged and never stops the queue.

Knows nothing of Socket.IO: callers decide what a deadline means.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import structlog
import trio

log = structlog.get_logger(__name__)


class Timer:
    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], object]) -> None:
        self.deadline = deadline
        self.callback: Callable[[], object] | None = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.callback = None  # let go of what the callback holds (a connection) right away


class TimerQueue:
    __slots__ = ("_cancelled_hint", "_heap", "_scope", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._scope: trio.CancelScope | None = None
        self._cancelled_hint = 0

    def __len__(self) -> int:
        return len(self._heap)

    def call_at(self, deadline: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(deadline, callback)
        heapq.heappush(self._heap, (deadline, next(self._seq), timer))
        if self._scope is not None and deadline < self._scope.deadline:
            self._scope.deadline = deadline
        return timer

    def cancel(self, timer: Timer) -> None:
        """Cancel ``timer``; the heap is compacted when cancelled entries outnumber live ones."""
        if timer.cancelled:
            return
        timer.cancel()
        self._cancelled_hint += 1
        if self._cancelled_hint > 64 and self._cancelled_hint * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled_hint = 0

    def fire_due(self, now: float) -> None:
        """Run every callback whose deadline is <= ``now`` (the task calls this; tests may too)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            callback = timer.callback
            if timer.cancelled or callback is None:
                self._cancelled_hint = max(0, self._cancelled_hint - 1)
                continue
            timer.cancel()
            try:
                callback()
            except Exception:
                log.exception("timer callback failed")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                self.fire_due(trio.current_time())
                deadline = self._heap[0][0] if self._heap else math.inf
                with trio.CancelScope(deadline=deadline) as scope:
                    self._scope = scope
                    await trio.sleep_forever()
                self._scope = None
        finally:
            self._scope = None
