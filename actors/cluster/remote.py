"""Sessions another node owns, served on this node: connections fed from the shared log, actions routed.

Owns: ``RemoteSessions`` (the supervisor's ``remote`` hook; ``Answers``, the routed actions waiting for
the event that answers them, lives in ``actors.cluster.answers``). For a session with no live incarnation
here:

- ``Join``: if another node holds the lease, the connection is attached to this node's ``FanOut`` and a
  tail of the session's Stream (subscribe first, then replay, then live: ``actors.cluster.tail``) publishes
  every event to it; the fan-out's cursors make that gap- and duplicate-free. Otherwise (no owner, or a
  stale lease of this node's previous process) the supervisor hosts the session as usual.
- ``Act``: routed through the session's inbox (``route``) and acked with the id of the event that answers
  it (the tail, or this node's own inbox reader, reports it to ``Answers``). If no node owns the session,
  or its owner does not listen (``receivers == 0``: it may be dead), this node hosts it: the supervisor
  acquires the lease (polling until a dead owner's lease expires) and the inbox reader applies the action.
- ``Leave`` of a connection attached here: detached; the tail ends with the last connection.

While it tails a session for connections, this node is one of its watchers (``actors.cluster.watchers``):
the owner does not passivate it for being idle. When the owner closes the session's connections with a
status (``closed`` notice) the tail closes them here too; when the owner releases the lease while
connections are attached here (``released``: a shutdown, or an idle passivation that raced a join), this
node hosts the session, as the routed path does when nobody owns it.

Tails do not poll Redis by themselves while idle: the node's ``IdlePolls`` checks all of them at once.

Knows nothing of transports; talks to the supervisor through ``ensure`` and its fan-out only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
import trio

from actors.cluster.answers import ANSWER_TIMEOUT, Answers
from actors.cluster.context import ClusterContext
from actors.cluster.inbox import route
from actors.cluster.tail import open_tail
from actors.cluster.watchers import Watchers
from actors.errors import ActorError, SessionForbidden, SessionNotFound, StoreUnavailableError
from actors.events import OutboundEvent, canonical_json
from actors.leases import EXPIRY_SLACK
from actors.messages import Act, ActResult, Join, Leave, Message
from actors.reply import Reply
from actors.stores.base import StoreError

__all__ = ["ANSWER_TIMEOUT", "Answers", "RemoteSessions"]

log = structlog.get_logger(__name__)

@dataclass
class _Tailed:
    conns: set[str] = field(default_factory=set)
    scope: trio.CancelScope | None = None
    ready: trio.Event = field(default_factory=trio.Event)


class RemoteSessions:
    def __init__(self, ctx: ClusterContext, kick: Callable[[str], None], watchers: Watchers) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.placement = ctx.placement
        self.host = ctx.host
        self.answers = ctx.answers
        self.kick = kick  # wake this node's inbox reader for a session it now hosts
        self.watchers = watchers
        self._tailed: dict[str, _Tailed] = {}
        self._watched: dict[str, set[str]] = {}  # session id -> routed actions waiting on a foreign owner
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.answers.expire_forever)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    @property
    def tailed_sessions(self) -> int:
        return len(self._tailed)

    async def deliver(self, session_id: str, msg: Message, *, user_id: str | None) -> bool:
        try:
            if isinstance(msg, Join):
                return await self._join(session_id, msg, user_id)
            if isinstance(msg, Act) and msg.inbox_id is None:  # a routed one is never routed again
                return await self._act(session_id, msg)
            if isinstance(msg, Leave):
                return self._leave(session_id, msg.conn_id)
        except StoreError as exc:
            raise StoreUnavailableError(f"session {session_id}: the store is unavailable: {exc}") from exc
        return False

    def _foreign(self, owner: str | None) -> bool:
        return owner is not None and owner != self.placement.node_id

    async def _join(self, session_id: str, msg: Join, user_id: str | None) -> bool:
        if not self._foreign(await self.placement.owner_of(session_id)):
            return False
        record = await self.store.load(session_id)
        if record is not None and user_id is not None and record.owner not in (None, user_id):
            raise SessionForbidden(f"session {session_id} belongs to another user")
        tailed = self._tailed.get(session_id)
        if tailed is None:
            tailed = self._tailed[session_id] = _Tailed()
            head = record.last_event_id if record is not None else -1
            assert self._nursery is not None
            self._nursery.start_soon(self._tail, session_id, tailed, head)
        tailed.conns.add(msg.conn.id)
        with trio.fail_after(self.store.timeout + 1):
            await tailed.ready.wait()  # subscribed: nothing appended from here on can be missed
        self.host.fanout.attach(session_id, msg.conn, msg.latest_event_id)
        return True

    def adopt(self, session_id: str, conn_ids: list[str], head: int) -> None:
        """Connections of an incarnation that had to stand down (lease lost, store unreachable): they stay
        attached to the fan-out and are fed from the log by a tail, whoever owns the session next."""
        tailed = self._tailed.get(session_id)
        if tailed is None:
            tailed = self._tailed[session_id] = _Tailed()
            if self._nursery is None:
                return
            self._nursery.start_soon(self._tail, session_id, tailed, head)
        tailed.conns.update(conn_ids)

    async def announce_closed(self, session_id: str, status: OutboundEvent, fence: int) -> None:
        await self.watchers.announce_closed(session_id, status.payload, fence)

    def _leave(self, session_id: str, conn_id: str) -> bool:
        tailed = self._tailed.get(session_id)
        if tailed is None or conn_id not in tailed.conns:
            return False
        tailed.conns.discard(conn_id)
        self.host.fanout.detach(session_id, conn_id)
        if not tailed.conns:
            del self._tailed[session_id]
            self.watchers.unwatch(session_id)
            if tailed.scope is not None:
                tailed.scope.cancel()
        return True

    async def _act(self, session_id: str, act: Act) -> bool:
        text = act.action_json or canonical_json(act.action)
        result = await route(self.store, session_id, text)
        self.answers.routed += 1
        reply = act.reply if act.reply is not None else Reply[ActResult]()
        self.answers.expect(session_id, result.inbox_id, reply)
        assert self._nursery is not None
        if not self._foreign(result.owner) or result.receivers == 0:
            # Nobody (alive) owns it: host it here; the inbox reader applies the routed action.
            self._nursery.start_soon(self._host_here, session_id, result.inbox_id)
            return True
        watched = self._watched.get(session_id)
        if watched is not None:
            watched.add(result.inbox_id)
        else:
            self._watched[session_id] = {result.inbox_id}
            self._nursery.start_soon(self._watch_owner, session_id)
        return True

    async def _watch_owner(self, session_id: str) -> None:
        """While routed actions wait, check now and then that their owner still holds the lease: a paused
        or partitioned owner still counts as a receiver, and its lease expires without anyone releasing."""
        pending = self._watched[session_id]
        every = self.placement.lease_ttl / 4
        wait = every
        try:
            while self.answers.waiting(session_id, pending):
                await trio.sleep(wait)
                pending.intersection_update(i for i in list(pending) if self.answers.waiting(session_id, {i}))
                if not pending:
                    break
                wait = every
                try:
                    found = await self.placement.holder(session_id)
                except StoreError:
                    continue
                if found is None or not self._foreign(found[0]):
                    await self._host_here(session_id, next(iter(pending)))
                    break
                # Look again as the holder's lease expires if that comes first: a dead owner's session is
                # taken over at its lease's expiry, not up to a quarter TTL later.
                wait = min(every, found[2] + EXPIRY_SLACK)
        finally:
            del self._watched[session_id]

    async def _host_here(self, session_id: str, inbox_id: str | None, create: bool = True) -> None:
        try:
            await self.host.ensure(session_id, create=create)
        except SessionNotFound:
            return  # another node holds it after all: it answers from its inbox
        except (ActorError, StoreError) as exc:
            if inbox_id is not None:
                error = exc if isinstance(exc, ActorError) else StoreUnavailableError(str(exc))
                self.answers.resolve(session_id, inbox_id, error)
            else:
                log.warning("cluster.rehost_failed", session_id=session_id, error=str(exc))
            return
        self.kick(session_id)

    def _released(self, session_id: str, tailed: _Tailed) -> None:
        """The owner released the lease while connections here watch: host the session (someone is here)."""
        if self._tailed.get(session_id) is tailed and tailed.conns and self._nursery is not None:
            self._nursery.start_soon(self._host_here, session_id, None, False)

    async def _closed(self, session_id: str, tailed: _Tailed, fence: int, status: dict[str, object]) -> bool:
        """The owner under lease ``fence`` closed the session's connections with ``status``: the same for
        those attached here (True), unless a newer lease holds the session (False: an owner that lost its
        lease speaks late; keep tailing)."""
        try:
            found = await self.placement.holder(session_id)
        except StoreError:
            found = None  # cannot tell: the owner said so
        if found is not None and found[1] != fence:
            return False
        conns = list(tailed.conns)
        if self._tailed.get(session_id) is tailed:
            del self._tailed[session_id]
            self.watchers.unwatch(session_id, closed=True)
        event = OutboundEvent(dict(status)) if status else None
        self.host.fanout.close(session_id, conns, event, "closed by its owner")
        return True

    async def _tail(self, session_id: str, tailed: _Tailed, head: int) -> None:
        with trio.CancelScope() as scope:
            tailed.scope = scope
            after = head
            while self._tailed.get(session_id) is tailed:
                try:
                    async with open_tail(
                        self.store, self.ctx.doorbells, session_id, after, polls=self.ctx.polls,
                        on_released=lambda: self._released(session_id, tailed),
                    ) as tail:
                        tailed.ready.set()
                        if self._tailed.get(session_id) is not tailed:
                            return  # its last connection left meanwhile: nothing to watch
                        await self.watchers.watch(session_id)
                        async for batch in tail:
                            after = batch[-1].event.id
                            self.host.fanout.publish(session_id, [entry.event for entry in batch])
                            answers = self.answers
                            for entry in batch:
                                if entry.inbox_id:
                                    answers.resolve(session_id, entry.inbox_id, ActResult(entry.event.id))
                        if tail.closed is not None and await self._closed(session_id, tailed, *tail.closed):
                            return
                except StoreError as exc:
                    log.warning("cluster.tail_failed", session_id=session_id, error=str(exc))
                    tailed.ready.set()
                    await trio.sleep(0.5)
