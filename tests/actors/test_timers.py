"""The one timer queue: deadlines fire in order, cancelled ones never, a shared callback gets its argument."""

from __future__ import annotations

from typing import Any

import trio

from actors.timers import TimerQueue


async def test_deadlines_fire_in_order_and_cancelled_ones_never(autojump_clock: Any) -> None:
    timers = TimerQueue()
    fired: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        start = trio.current_time()
        timers.call_at(start + 3, lambda: fired.append(("c", trio.current_time() - start)))
        timers.call_at_with(start + 1, lambda name: fired.append((name, trio.current_time() - start)), "a")
        dropped = timers.call_at(start + 2, lambda: fired.append(("never", 0.0)))
        timers.cancel(dropped)
        assert dropped.cancelled
        await trio.sleep(5)
        assert fired == [("a", 1.0), ("c", 3.0)]
        nursery.cancel_scope.cancel()


async def test_equal_deadlines_all_fire(autojump_clock: Any) -> None:
    timers = TimerQueue()
    fired: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        deadline = trio.current_time() + 1
        for i in range(50):
            timers.call_at_with(deadline, fired.append, i)
        await trio.sleep(2)
        assert sorted(fired) == list(range(50)) and len(timers) == 0
        nursery.cancel_scope.cancel()
