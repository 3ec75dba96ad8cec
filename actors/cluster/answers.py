"""Routed actions waiting for the event that answers them, on the node that routed them.

Owns: ``Answers`` and ``ANSWER_TIMEOUT``. Whoever sees the answering event (this node's tail of the
session's log, or this node's own inbox reader when it hosts the session) resolves the waiting reply by
(session id, inbox id). Knows nothing of Redis, transports or actors beyond ``ActResult``.
"""

from __future__ import annotations

from collections import OrderedDict

import trio

from actors.errors import ActorError
from actors.messages import ActResult
from actors.reply import Reply

__all__ = ["ANSWER_TIMEOUT", "Answers"]

ANSWER_TIMEOUT = 30.0  # seconds a routed action waits for its event before its ack is an error
_DONE_KEPT = 4096  # answers seen before their waiter registered (bounded)


class Answers:
    """Routed actions' replies by (session id, inbox id), answered by whoever sees the event (tail or
    local append). Inbox ids are Stream ids of each session's own inbox: two sessions' actions routed in
    the same millisecond get the same id, so an id alone never names a routed action."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], tuple[Reply[ActResult], float]] = {}
        self._done: OrderedDict[tuple[str, str], ActResult | BaseException] = OrderedDict()
        self.routed = 0

    def expect(self, session_id: str, inbox_id: str, reply: Reply[ActResult],
               timeout: float = ANSWER_TIMEOUT) -> None:
        key = (session_id, inbox_id)
        early = self._done.pop(key, None)
        if early is None:
            self._waiting[key] = (reply, trio.current_time() + timeout)
        elif isinstance(early, BaseException):
            reply.fail(early)
        else:
            reply.set(early)

    def waiting(self, session_id: str, inbox_ids: set[str]) -> bool:
        return any((session_id, inbox_id) in self._waiting for inbox_id in inbox_ids)

    def resolve(self, session_id: str, inbox_id: str, result: ActResult | BaseException) -> None:
        key = (session_id, inbox_id)
        found = self._waiting.pop(key, None)
        if found is None:
            self._done[key] = result
            while len(self._done) > _DONE_KEPT:
                self._done.popitem(last=False)
        elif isinstance(result, BaseException):
            found[0].fail(result)
        else:
            found[0].set(result)

    async def expire_forever(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(1.0)
            now = trio.current_time()
            for key in [k for k, (_, deadline) in self._waiting.items() if deadline <= now]:
                reply, _ = self._waiting.pop(key)
                reply.fail(ActorError("the session's owner did not answer the routed action in time"))
