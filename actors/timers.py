"""One task that fires many deadlines: the one timer queue of the whole server.

Used for Socket.IO connect timeouts and expiring ack callbacks, Engine.IO polling heartbeats, and the
supervisor's idle-session deadlines. It lives in ``actors/`` because ``actors/`` may import nothing of
``server/`` while ``server/`` may import ``actors/``; it is a leaf module with no actor knowledge.

Owns: ``TimerQueue``, a heap of (deadline, callback) served by a single task that sleeps in a cancel scope
whose deadline is always the earliest one; scheduling an earlier deadline moves the scope's deadline, so
nothing polls and a connection costs no task of its own. Callbacks are synchronous and must not block; an
exception in one is logged and never stops the queue.

Knows nothing of Socket.IO, Engine.IO or actors: callers decide what a deadline means.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
import trio

log = structlog.get_logger(__name__)

T = TypeVar("T")


_NO_ARG: Any = object()


class Timer:
    __slots__ = ("arg", "callback", "deadline")

    def __init__(self, deadline: float, callback: Callable[..., object], arg: Any = _NO_ARG) -> None:
        self.deadline = deadline
        self.callback: Callable[..., object] | None = callback
        self.arg = arg  # passed to the callback when given (a shared callback then needs no closure)

    @property
    def cancelled(self) -> bool:
        """Cancelled, or fired already."""
        return self.callback is None

    def cancel(self) -> None:
        self.callback = None  # let go of what the callback holds (a connection) right away
        self.arg = _NO_ARG

    def __lt__(self, other: Timer) -> bool:
        # Heap entries are (deadline, timer): timers with equal deadlines are equal (no order among them;
        # heapq stays deterministic), which spares a sequence number per timer.
        return False


class TimerQueue:
    __slots__ = ("_cancelled_hint", "_heap", "_scope")

    def __init__(self) -> None:
        self._heap: list[tuple[float, Timer]] = []
        self._scope: trio.CancelScope | None = None
        self._cancelled_hint = 0

    def __len__(self) -> int:
        return len(self._heap)

    def call_at(self, deadline: float, callback: Callable[[], object]) -> Timer:
        return self._push(Timer(deadline, callback))

    def call_at_with(self, deadline: float, callback: Callable[[T], object], arg: T) -> Timer:
        """``call_at`` of ``callback(arg)``: one shared callback for many timers, no closure per timer
        (the supervisor's idle deadlines: one per IDLE session, where every byte counts)."""
        return self._push(Timer(deadline, callback, arg))

    def _push(self, timer: Timer) -> Timer:
        deadline = timer.deadline
        heapq.heappush(self._heap, (deadline, timer))
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
            self._heap = [entry for entry in self._heap if not entry[1].cancelled]
            heapq.heapify(self._heap)
            self._cancelled_hint = 0

    def fire_due(self, now: float) -> None:
        """Run every callback whose deadline is <= ``now`` (the task calls this; tests may too)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, timer = heapq.heappop(heap)
            callback = timer.callback
            if callback is None:
                self._cancelled_hint = max(0, self._cancelled_hint - 1)
                continue
            arg = timer.arg
            timer.cancel()
            try:
                if arg is _NO_ARG:
                    callback()
                else:
                    callback(arg)
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
