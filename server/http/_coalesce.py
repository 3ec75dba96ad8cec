"""Write coalescing for the WebSockets of one listener: one ``send`` per socket per scheduler pass.

Owns: ``WriteCoalescer``, the listener-wide list of sockets holding frames written during the current
scheduler pass, and the task that hands each socket's frames to the kernel in one ``send``. Knows nothing
of WebSocket framing or state: a socket registers itself and gets ``flush_pending()`` called back.

Why. One action of a session typically produces several frames for one connection in the same pass (its
events fanned out by one actor batch, then the ack); one syscall each is the largest single cost of a busy
server. Frames go out once the producers of the current pass and of the next one (the tasks those woke,
such as the handler sending the ack) have run: the flusher, woken by the first registration, yields once
more before flushing. A socket's pending bytes are bounded (the socket flushes inline past its low-water
mark), so coalescing never holds more than that per connection.

Tasks: ``run``, in the listener's nursery for the listener's lifetime. Once it has ended (the listener is
going away), ``register`` refuses and sockets write directly, as without a coalescer.
"""

from __future__ import annotations

from typing import Protocol

import structlog
import trio

log = structlog.get_logger(__name__)


class Flushable(Protocol):
    """A socket with frames to hand to the kernel at the end of the pass (``WebSocket``)."""

    def flush_pending(self) -> object: ...


class WriteCoalescer:
    """Batches the writes of one scheduler pass; ``register`` never awaits."""

    __slots__ = ("_dirty", "_parked", "_stopped")

    def __init__(self) -> None:
        self._dirty: list[Flushable] = []
        self._parked: trio.lowlevel.Task | None = None  # the flusher task while it waits for work
        self._stopped = True  # until ``run`` starts, and again once it ended

    def register(self, sock: Flushable) -> bool:
        """Have ``sock.flush_pending()`` called at the end of this pass (once per registration: a socket
        registers when its first pending frame arrives). False when no flusher runs: write directly."""
        if self._stopped:
            return False
        self._dirty.append(sock)
        task = self._parked
        if task is not None:
            self._parked = None
            trio.lowlevel.reschedule(task)
        return True

    async def run(self) -> None:
        """The flusher task (until cancelled). Whatever is pending when it ends is flushed at once."""
        self._stopped = False
        try:
            while True:
                if not self._dirty:
                    self._parked = trio.lowlevel.current_task()
                    await trio.lowlevel.wait_task_rescheduled(self._abort_wait)
                # One more pass: the tasks woken by this pass's producers add their frames too.
                await trio.lowlevel.cancel_shielded_checkpoint()
                self._flush_all()
        finally:
            self._stopped = True
            self._parked = None
            self._flush_all()

    def _abort_wait(self, raise_cancel: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        self._parked = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _flush_all(self) -> None:
        dirty, self._dirty = self._dirty, []
        for sock in dirty:
            try:
                sock.flush_pending()
            except Exception:  # a bug in one socket must not stop the others' output
                log.exception("websocket flush failed")
