"""One Engine.IO socket's heartbeat: its next deadline as one entry in the server's ``TimerQueue``.

Owns: ``Heartbeat``, which keeps the entry in step with ``SocketProtocol.next_deadline()`` (ping due, pong
overdue, a polling close linger), runs ``on_timer`` when it fires, and holds back a ping-timeout verdict
while the websocket reader is inside a message handler (its pong may be waiting unread: the answer counts
if it comes within half the ping timeout once the reader reads again). Polling and websocket sockets alike;
a message costs no cancel scope. Knows nothing of transports or the application: the socket tells it when
its reader is ``busy`` and is called back (``on_due``) after every timer run.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from actors.timers import Timer, TimerQueue
from server.engineio.protocol import SocketProtocol

__all__ = ["Heartbeat"]


class Heartbeat:
    __slots__ = ("_grace", "_grace_until", "_on_due", "_proto", "_timer", "_timers", "busy")

    def __init__(
        self, proto: SocketProtocol, timers: TimerQueue, ping_timeout: float, on_due: Callable[[], None]
    ) -> None:
        self._proto = proto
        self._timers = timers
        self._grace = ping_timeout / 2
        self._on_due = on_due  # after each run of the protocol's timer: make the I/O match its state
        self._timer: Timer | None = None
        self._grace_until = -math.inf  # no ping-timeout verdict before this
        self.busy = False  # the websocket reader is inside a message handler

    def schedule(self) -> None:
        """Make the timer queue hold the socket's next deadline (called after every protocol change)."""
        deadline = max(self._proto.next_deadline(), self._grace_until)
        timer = self._timer
        if timer is not None:
            if timer.deadline == deadline:
                return
            self._timers.cancel(timer)
            self._timer = None
        if deadline != math.inf:
            self._timer = self._timers.call_at(deadline, self._fire)

    def run_if_due(self) -> None:
        """Run a deadline that passed before its timer fired (a polling request sees its outcome)."""
        if trio.current_time() >= self._proto.next_deadline():
            self.cancel()
            self._fire()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timers.cancel(self._timer)
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        now = trio.current_time()
        if self.busy and self._proto.awaiting_pong:
            self._grace_until = now + self._grace
            self.schedule()
            return
        self._proto.on_timer(now)
        self._on_due()
