"""The owner's side of routing: actions other nodes put in the inbox of a session this node hosts.

Owns: ``InboxReader``. For every session whose lease this node holds, it reads the inbox after the last action
it handed over (starting, for each new lease, from ``RedisStore.inbox_position``: the last routed action the
log answers, so a new owner after a failover resumes exactly there) and gives each one to the session's actor
as an ``Act`` carrying its ``inbox_id``; the actor appends the event with it. It wakes on the node's doorbell
(``node:{nid}:ring``), which carries the routed entry and the inbox id before it: when that is the entry last
handed over, the entry is handed over as it came, without reading the Stream (one Redis round trip less per
routed action); otherwise (a gap, a new lease) the inbox is read. Lost doorbells (Redis restarts) are covered
by the node's batched idle polls (``IdlePolls``: one call per interval for every inbox of the node, reading
only the inboxes that moved). The act's reply reports the event id (or the error) to ``Answers``, for a sender
on this node. One task reads, in order, so an action is never handed over twice by one incarnation. Requests
to the owner itself (``actors.cluster.inbox.request``) go to ``on_request`` if they name the lease held.

Knows nothing of connections or transports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import structlog
import trio

from actors.cluster.answers import Answers
from actors.cluster.context import ClusterContext
from actors.cluster.inbox import InboxEntry, Ring, inbox_order, parse_ring, read_inbox
from actors.cluster.polling import Watched
from actors.errors import ActorError
from actors.messages import Act, ActResult
from actors.reply import Reply
from actors.stores._redis_keys import SessionKeys, node_ring
from actors.stores.base import StoreError

__all__ = ["InboxReader"]

log = structlog.get_logger(__name__)

MAX_POSITIONS = 100_000  # sessions whose last handed-over inbox id this node remembers


class _Relay(Reply[ActResult]):
    """The reply of a routed act: also reported to ``Answers`` under its session and inbox id."""

    __slots__ = ("answers", "inbox_id", "session_id")

    def __init__(self, answers: Answers, session_id: str, inbox_id: str) -> None:
        super().__init__()
        self.answers = answers
        self.session_id = session_id
        self.inbox_id = inbox_id

    def set(self, value: ActResult) -> bool:
        done = super().set(value)
        if done:
            self.answers.resolve(self.session_id, self.inbox_id, value)
        return done

    def fail(self, error: BaseException) -> bool:
        done = super().fail(error)
        if done:
            self.answers.resolve(self.session_id, self.inbox_id, error)
        return done


RequestHandler = Callable[[str, int, str], None]
"""``on_request(session_id, fence, text)``: a request routed to this node for the session it holds under
lease ``fence`` (the request names that fence)."""


class InboxReader:
    def __init__(self, ctx: ClusterContext, *, on_request: RequestHandler | None = None) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.placement = ctx.placement
        self.host = ctx.host
        self.answers = ctx.answers
        self.on_request = on_request
        self.positions: dict[str, tuple[int, str]] = {}  # session id -> (lease fence, last handed over)
        self.handed_over = 0
        self.taken_from_ring = 0  # of those, taken as their ring carried them (no inbox read)
        # Session ids to read (a kick), or rings to take as they came; one task handles both, in order.
        self._wake_send, self._wake_receive = trio.open_memory_channel[str | Ring](4096)
        self._pending: set[str] = set()
        ctx.polls.add_source(self._idle_inboxes)

    def kick(self, session_id: str) -> None:
        """Read ``session_id``'s inbox soon (it may have just become ours)."""
        if session_id in self._pending:
            return
        try:
            self._wake_send.send_nowait(session_id)
            self._pending.add(session_id)
        except trio.WouldBlock:
            pass  # the next poll reads it

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._listen)
            for session_id in list(self.placement.states):
                self.kick(session_id)  # held before this started: read their inboxes now
            task_status.started()
            async for wake in self._wake_receive:
                if isinstance(wake, Ring):
                    session_id = wake.session_id
                    if await self.take(wake) is not False:
                        continue
                else:
                    session_id = wake
                    self._pending.discard(session_id)
                try:
                    await self._pull(session_id)
                except (StoreError, ActorError) as exc:
                    log.warning("cluster.inbox_read_failed", session_id=session_id, error=str(exc))

    async def _listen(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            try:
                async with self.ctx.doorbells.listen(node_ring(self.placement.node_id)) as bell:
                    if not started:
                        started = True
                        task_status.started()
                    async for data in bell:
                        if not data:
                            continue  # a nudge: rings name their session, this names none
                        try:
                            ring = parse_ring(data)
                        except ValueError:
                            log.warning("cluster.ring_malformed", data=data[:80])
                            continue
                        self._ring(ring)
            except StoreError as exc:
                log.warning("cluster.ring_failed", error=str(exc))
                if not started:
                    started = True
                    task_status.started()
                await trio.sleep(self.ctx.polls.interval)

    def _ring(self, ring: Ring) -> None:
        try:
            self._wake_send.send_nowait(ring)
        except trio.WouldBlock:
            self.kick(ring.session_id)  # full: the inbox is read (now or at the next idle poll)

    async def take(self, ring: Ring) -> bool | None:
        """Hand over a ring's entry if it follows what was handed over under the current lease (True);
        None if there is nothing to do (not ours, or already handed over); False: read the inbox."""
        state = self.placement.states.get(ring.session_id)
        if state is None:
            return None
        known = self.positions.get(ring.session_id)
        if known is None or known[0] != state.lease.fence:
            return False
        if known[1] == ring.prev_id:
            self.taken_from_ring += 1
            await self._deliver(ring.session_id, state.lease.fence, ring.entry)
            return True
        if inbox_order(ring.entry.inbox_id) <= inbox_order(known[1]):
            return None
        return False

    def _idle_inboxes(self) -> Iterator[Watched]:
        """For the node's idle polls: the inbox of every session held here, after what was handed over
        under its current lease; a session read under no lease yet is read now (its start is unknown)."""
        # Positions outlive leases (see _pull); the oldest go first beyond the bound.
        while len(self.positions) > MAX_POSITIONS:
            del self.positions[next(iter(self.positions))]
        positions = self.positions
        for session_id, state in list(self.placement.states.items()):
            known = positions.get(session_id)
            if known is None or known[0] != state.lease.fence:
                self.kick(session_id)
                continue
            yield SessionKeys(session_id).inbox, known[1], partial(self.kick, session_id)

    async def _pull(self, session_id: str) -> None:
        state = self.placement.states.get(session_id)
        if state is None:
            return  # not ours (any more)
        fence = state.lease.fence
        known = self.positions.get(session_id)
        # Under a new lease, resume after what the log answers: acts handed over under an earlier lease
        # and not appended are dropped by whichever incarnation gets them (Act.inbox_fence).
        if known is not None and known[0] == fence:
            after = known[1]
        else:
            after = await self.store.inbox_position(session_id)
            self._moved(session_id, fence, after)
        while True:
            entries = await read_inbox(self.store, session_id, after)
            if not entries:
                break
            for entry in entries:
                await self._deliver(session_id, fence, entry)
                after = entry.inbox_id
            if len(entries) < 512:
                break

    async def _deliver(self, session_id: str, fence: int, entry: InboxEntry) -> None:
        """Give one inbox entry to the session's actor (or, a request, to ``on_request``); then it counts
        as handed over under ``fence``."""
        if entry.request is not None:
            self._moved(session_id, fence, entry.inbox_id)
            self._obey(session_id, fence, entry.request)
            return
        action: Any = json.loads(entry.action)
        act = Act(None, action, _Relay(self.answers, session_id, entry.inbox_id), None,
                  action_json=entry.action, inbox_id=entry.inbox_id, inbox_fence=fence)
        try:
            await self.host.deliver(session_id, act, create=False)
        except ActorError as exc:
            self.answers.resolve(session_id, entry.inbox_id, exc)
        self._moved(session_id, fence, entry.inbox_id)
        self.handed_over += 1

    def _moved(self, session_id: str, fence: int, after: str) -> None:
        self.positions.pop(session_id, None)  # re-inserted last: the bound drops the oldest
        self.positions[session_id] = (fence, after)

    def _obey(self, session_id: str, fence: int, text: str) -> None:
        word, _, rest = text.partition(" ")
        named, _, body = rest.partition(" ")
        if not named.isdigit() or int(named) != fence:
            return  # meant for another lease (an earlier owner, read again after a failover): moot
        if self.on_request is not None:
            self.on_request(session_id, fence, f"{word} {body}".strip())
