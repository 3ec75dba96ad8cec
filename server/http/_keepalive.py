"""The keep-alive timeout of every idle connection of a listener, in one task.

Owns: ``KeepAliveTimer``: connections waiting for their next request announce ``idle(conn, deadline)``
and ``busy(conn)``; one task calls ``keepalive_expired()`` on a connection still idle at its deadline
(which wakes its wait and ends it). Knows nothing of HTTP or sockets: a connection is an ``Idler``.

Why not a cancel scope around each wait: a long-polling client makes a request per message, and a cancel
scope per request (create, enter, register its deadline, exit) was a tenth of the server's time. Here a
request costs two attribute writes: the deadline and the idle flag. The heap holds at most one entry per
connection, pushed when the connection first goes idle; every keep-alive deadline is "now + the same
timeout", so a new entry is never earlier than the ones already there, and the task only has to be woken
when the heap was empty. When an entry comes due, a connection that was busy in between (its deadline
moved) is pushed back with its current deadline; one that is busy now leaves the heap until it next goes
idle. Each close happens exactly at the connection's own deadline, not at a sweep.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Protocol

import trio


class Idler(Protocol):
    keepalive_deadline: float  # when it must be closed if it is still idle
    keepalive_idle: bool  # waiting for its next request now
    keepalive_queued: bool  # has an entry in the heap

    def keepalive_expired(self) -> None:
        """Idle past its deadline: end the wait (and so the connection). Must not block."""


class KeepAliveTimer:
    __slots__ = ("_heap", "_order", "_wake")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Idler]] = []
        self._order = itertools.count()  # ties between equal deadlines: first come, first closed
        self._wake: trio.Event | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def idle(self, conn: Idler, deadline: float) -> None:
        """``conn`` waits for its next request; close it at ``deadline`` unless ``busy`` comes first.
        ``deadline`` must be now plus the listener's one keep-alive timeout."""
        conn.keepalive_deadline = deadline
        conn.keepalive_idle = True
        if not conn.keepalive_queued:
            conn.keepalive_queued = True
            heapq.heappush(self._heap, (deadline, next(self._order), conn))
            if self._wake is not None:
                self._wake.set()

    @staticmethod
    def busy(conn: Idler) -> None:
        """``conn`` received something (or ended): no keep-alive timeout until it is ``idle`` again."""
        conn.keepalive_idle = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        heap = self._heap
        while True:
            if not heap:
                self._wake = trio.Event()
                await self._wake.wait()
                self._wake = None
                continue
            await trio.sleep_until(heap[0][0])
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, _, conn = heapq.heappop(heap)
                if not conn.keepalive_idle:
                    conn.keepalive_queued = False
                elif conn.keepalive_deadline <= now:
                    conn.keepalive_queued = False
                    conn.keepalive_idle = False
                    conn.keepalive_expired()
                else:
                    heapq.heappush(heap, (conn.keepalive_deadline, next(self._order), conn))
