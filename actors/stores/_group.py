"""Group execution of blocking store operations: many callers, one worker thread hop per batch.

Owns: ``GroupRunner`` (the combiner behind SQLite group commit and batched reads) and ``Op`` (one caller's
request with its result slot). Knows nothing of SQL or sessions: a batch function receives a list of ops and
completes each one.

Theory of operation. A caller puts its op on the pending list and, if no batch is running, becomes the
*leader*: it takes the whole pending list and runs the batch function on it in a worker thread
(``trio.to_thread.run_sync`` with the runner's own ``CapacityLimiter(1)``). Callers that arrive meanwhile
wait; when the batch ends, the first waiter whose op is still pending leads the next batch with everything
that accumulated. So under load one thread hop (and, for writes, one commit and one fsync) serves many ops,
and nobody runs a batch for others forever: a leader returns as soon as its own op is complete. No
background task exists, so there is nothing to own or to cancel.

Inline batches. A thread hop costs about 120 us of wall time even for a no-op, far more than a small SQLite
commit that does not fsync (~20-50 us). With ``run_inline`` the leader first yields once (so every caller
that runs in the same scheduler pass joins the batch), then offers the batch to ``run_inline(ops)`` on the
trio thread; it returns False to decline (too big, or work that may block), and the batch goes to the worker
thread as before. Either way batches never overlap.

Cancellation. A caller cancelled while its op is still pending withdraws it (it never runs). A caller
cancelled while its op is in a running batch cannot stop it: the batch finishes (worker threads are never
abandoned) and the outcome is not reported to that caller. The leader's wait on the thread is not
cancellable either, so a batch is never half-delivered.

Bound. At most ``max_pending`` ops are queued or running; further callers wait for a slot (backpressure),
so memory stays bounded whatever the arrival rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import trio

__all__ = ["GroupRunner", "Op"]


class Op:
    """One request. The batch function sets ``result`` or ``error`` and then ``done``."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def complete(self, result: Any = None) -> None:
        self.result = result
        self.error = None
        self.done = True

    def fail(self, error: BaseException) -> None:
        self.result = None
        self.error = error
        self.done = True


OpT = TypeVar("OpT", bound=Op)


class GroupRunner(Generic[OpT]):
    """Runs ``run_batch(ops)`` in a worker thread for whatever ops accumulated while the last batch ran.

    ``run_batch`` must complete every op it is given (``complete`` or ``fail``); an op it leaves undone, or
    every op of a batch whose function raised, fails with ``make_error(exc)``.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[OpT]], None],
        *,
        max_pending: int,
        make_error: Callable[[BaseException | None], BaseException],
        run_inline: Callable[[Sequence[OpT]], bool] | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self._run_batch = run_batch
        self._run_inline = run_inline
        self._make_error = make_error
        self._limiter = trio.CapacityLimiter(1)
        self._slots = trio.Semaphore(max_pending)
        self._pending: list[OpT] = []
        self._running = False
        self._batch_done = trio.Event()
        self.batches = 0  # batches run so far (for tests and stats)
        self.inline_batches = 0  # of which on the trio thread
        self.ops = 0  # ops handed to a batch so far

    @property
    def busy(self) -> bool:
        return self._running or bool(self._pending)

    async def submit(self, op: OpT) -> OpT:
        """Queue ``op``, wait until a batch completed it, and return it (its ``error`` is not raised)."""
        async with self._slots:
            self._pending.append(op)
            try:
                while not op.done:
                    if self._running:
                        await self._batch_done.wait()
                    else:
                        await self._lead()
            except BaseException:
                if not op.done and op in self._pending:
                    self._pending.remove(op)
                raise
        return op

    async def run_alone(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in a worker thread, never at the same time as a batch (same limiter)."""
        return await trio.to_thread.run_sync(fn, limiter=self._limiter, abandon_on_cancel=False)

    async def run_exclusive(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in a worker thread while no batch runs and none starts (writes wait meanwhile)."""
        while self._running:
            await self._batch_done.wait()
        self._running = True
        try:
            return await trio.to_thread.run_sync(fn, limiter=self._limiter, abandon_on_cancel=False)
        finally:
            self._end_batch(None)

    async def drain(self) -> None:
        """Wait until nothing is pending or running (leading a batch itself if nobody else does)."""
        while self.busy:
            if self._running:
                await self._batch_done.wait()
            else:
                await self._lead()

    async def _lead(self) -> None:
        self._running = True
        if self._run_inline is not None:
            # Let the other callers of this scheduler pass queue their ops first (never raises).
            await trio.lowlevel.cancel_shielded_checkpoint()
        batch, self._pending = self._pending, []
        if self._run_inline is not None and self._lead_inline(batch):
            return
        started = False

        def run() -> None:
            nonlocal started
            started = True
            self._run_batch(batch)

        try:
            await trio.to_thread.run_sync(run, limiter=self._limiter, abandon_on_cancel=False)
        except BaseException as exc:
            if not started:
                # Cancelled while waiting for the limiter: the batch never ran, give it back intact.
                self._pending[:0] = batch
                raise
            # The batch function itself broke: every op it left undone fails, the leader included, and
            # only a non-Exception (KeyboardInterrupt...) keeps propagating.
            self._fail_undone(batch, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._end_batch(batch if started else None)
        self._fail_undone(batch, None)

    def _lead_inline(self, batch: list[OpT]) -> bool:
        """Offer ``batch`` to ``run_inline``; False if it declined (nothing ran, the caller goes on)."""
        assert self._run_inline is not None
        ran = False
        try:
            ran = self._run_inline(batch)
        except BaseException as exc:  # the batch function broke: as in a thread, its undone ops fail
            ran = True
            self._fail_undone(batch, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            if ran:
                self._end_batch(batch, inline=True)
        if ran:
            self._fail_undone(batch, None)
        return ran

    def _end_batch(self, batch: list[OpT] | None, *, inline: bool = False) -> None:
        """The runner is free again (``batch`` None: nothing ran); wake the waiters."""
        if batch is not None:
            self.batches += 1
            self.inline_batches += inline
            self.ops += len(batch)
        self._running = False
        done, self._batch_done = self._batch_done, trio.Event()
        done.set()

    def _fail_undone(self, batch: list[OpT], exc: BaseException | None) -> None:
        error: BaseException | None = None
        for op in batch:
            if not op.done:
                error = error or self._make_error(exc)
                op.fail(error)
