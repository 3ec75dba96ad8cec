"""How one incarnation of a session runs: its task, its lease, its load, its crashes and restarts.

Owns: ``Incarnations``, a mixin of ``actors.supervisor.Supervisor`` (no object of its own). An incarnation
is spawned in a fresh ``contextvars.Context`` (the spawner's log context never leaks into the actor's),
takes its placement lease (``actors.leases``) and loads from the store (throttled by the supervisor's
rehydration limiter), then runs the actor's loop. A crash is sorted out here, synchronously: CRASHED, then
a restart after the backoff the budget of ``actors.restart`` allows, or FAILED (the session refuses
connects until killed or evicted), or ended at once (TEMPORARY policy, a kill, shutdown). A lost lease ends
the incarnation without a restart here. Cancellation always propagates.

Knows nothing of the public API, eviction rules or transports.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
import trio

from actors.actor import ERROR, STOPPED, SessionActor
from actors.agent import AgentFactory
from actors.agent_runtime import run_with_runtime
from actors.config import SupervisorConfig
from actors.errors import ActorError, SessionFailed, SessionNotFound, SupervisorClosed
from actors.events import OutboundEvent
from actors.eviction import Eviction
from actors.leases import LOST_LEASE, Leases
from actors.lifecycle import ActorState, Trigger
from actors.lifespan import SessionAgentFactory, create_agent
from actors.messages import Message, Stop
from actors.placement import Lease, Placement
from actors.registry import Registry
from actors.restart import RestartBudget, RestartPolicy
from actors.stores.base import FencedOut, Store, StoreUnavailable

if TYPE_CHECKING:
    from actors.supervisor import RemoteSessions

log = structlog.get_logger(__name__)

S = ActorState


class Incarnations:
    __slots__ = ()

    if TYPE_CHECKING:
        store: Store
        agent_factory: AgentFactory | SessionAgentFactory | None
        config: SupervisorConfig
        hooks: Callable[[str, str], Awaitable[None]] | None
        placement: Placement
        registry: Registry
        eviction: Eviction
        _leases: Leases
        remote: RemoteSessions | None
        _budgets: dict[str, RestartBudget]
        _limiter: trio.CapacityLimiter
        _nursery: trio.Nursery | None
        _closing: bool

        def count(self, kind: str, n: int = 1, **labels: str) -> None: ...

        def observe(self, kind: str, seconds: float, **labels: str) -> None: ...

        def tell(self, actor: SessionActor, msg: Message, *, force: bool = False) -> None: ...

        def drop(self, actor: SessionActor, status: OutboundEvent, error: ActorError) -> None: ...

        def announce_closed_soon(
            self, session_id: str, status: OutboundEvent, lease: Lease | None
        ) -> None: ...

        def _remove(self, actor: SessionActor) -> None: ...

        def _reject(self, msgs: list[Message], error: ActorError) -> None: ...

    def _spawn(self, actor: SessionActor) -> None:
        if self._nursery is None:
            raise SupervisorClosed("the supervisor is not running")
        actor.running = True
        # A fresh context: the spawner's contextvars (its conn_id) must not leak into the actor's logs.
        contextvars.Context().run(self._nursery.start_soon, self._actor_task, actor)

    async def _actor_task(self, actor: SessionActor) -> None:
        structlog.contextvars.bind_contextvars(session_id=actor.session_id)
        while True:
            try:
                if actor.state is S.LOADING and not await self._load(actor):
                    break
                if actor.runtime is not None:  # a lifespan agent: this task holds it until the end
                    await run_with_runtime(actor)
                    break
                parked = await actor.run()
            except BaseException as exc:
                crash = _crash_of(exc)  # re-raises cancellation (with the crash logged, if any)
                delay = self._crashed(actor, crash)
                if delay is None:
                    break
                await trio.sleep(delay)
                if actor.state is not S.CRASHED:
                    break  # killed or dropped during the backoff
                actor.fire(Trigger.RESTART)
                continue
            if parked and actor.mailbox:
                continue
            break
        actor.running = False

    async def _load(self, actor: SessionActor) -> bool:
        sid = actor.session_id
        started = time.perf_counter()
        try:
            self._limiter.acquire_on_behalf_of_nowait(actor)
        except trio.WouldBlock:
            await self._limiter.acquire_on_behalf_of(actor)
        try:
            if self.hooks is not None:
                await self.hooks("load:begin", sid)
            if actor.lease is None and not await self._leases.acquire(actor):
                actor.not_found = True
                owner = await self.placement.owner_of(sid)
                self.count("refused", reason="placement")
                if self.remote is not None and self._nursery is not None:
                    # Cluster mode: another node won the session; its messages go there instead.
                    leftovers = actor.mailbox.close()
                    actor.fire(Trigger.STOPPED)
                    self._remove(actor)
                    for msg in leftovers:
                        self._nursery.start_soon(self._reroute, sid, msg)
                    return False
                self._end_unloaded(actor, SessionNotFound(f"session {sid} is hosted by {owner}"))
                return False
            record = await self.store.load(sid)
            reason = "restart" if actor.restarts else "store"
            if record is None:
                if not actor.create:
                    actor.not_found = True
                    self._end_unloaded(actor, SessionNotFound(f"no session {sid}"))
                    return False
                record = await self.store.create(sid, actor.owner)
                reason = "new"
            factory = self.agent_factory
            agent = create_agent(factory, sid) if factory is not None else None
            await actor.restore(record, agent)
        finally:
            self._limiter.release_on_behalf_of(actor)
        self.count("rehydrations", reason=reason)
        self.observe("rehydrate_seconds", time.perf_counter() - started)
        self.eviction.account_user(actor)
        return True

    async def _reroute(self, session_id: str, msg: Message) -> None:
        remote = self.remote
        try:
            if remote is not None and await remote.deliver(session_id, msg, user_id=None):
                return
            error: ActorError = SessionNotFound(f"session {session_id} is hosted by another node")
        except ActorError as exc:
            error = exc
        self._reject([msg], error)

    def _end_unloaded(self, actor: SessionActor, error: ActorError) -> None:
        leftovers = actor.mailbox.close()
        actor.fire(Trigger.STOPPED)
        self._remove(actor)
        self._reject(leftovers, error)

    def _lease_lost(self, actor: SessionActor) -> None:
        """Another node may own the session now: never append again, and end the incarnation. In cluster
        mode its connections stay up, fed from the shared log (``remote.adopt``), and the lease is given up
        as soon as Redis answers (it may still be ours: a failed renewal, a store outage)."""
        log.warning("lease.lost", session_id=actor.session_id)
        self.count("leases_lost")
        lease = actor.lease
        remote = self.remote
        if remote is not None:
            if actor.conns:
                conn_ids, actor.conns = list(actor.conns), {}
                remote.adopt(actor.session_id, conn_ids, actor.head)
            if lease is not None and lease is not LOST_LEASE and self._nursery is not None:
                self._nursery.start_soon(self._leases.release_when_possible, lease)
        actor.lose_lease()
        actor.killed = True  # no restart here; the next message rehydrates wherever placement says
        if actor.state in (S.FAILED, S.CRASHED):
            self.drop(actor, OutboundEvent.status(STOPPED, "session moved"), SupervisorClosed())
        elif actor.state is not S.PASSIVATED:
            self.tell(actor, Stop("lease lost"), force=True)

    def _crashed(self, actor: SessionActor, exc: BaseException) -> float | None:
        """Sync crash handling: CRASHED, then a restart delay, or FAILED/removed (None)."""
        if actor.state is S.PASSIVATED:
            log.error("actor.error_after_end", exc_info=exc)
            return None
        log.error("actor.crashed", state=actor.state.value, exc_info=exc)
        self.count("crashes")
        actor.crashed()
        if isinstance(exc, FencedOut):
            self.count("fenced_refusals")
        if self.remote is not None and isinstance(exc, StoreUnavailable | FencedOut):
            # Cluster mode: the append's outcome is unknown (or another node owns the session): stand down;
            # the next incarnation, here or elsewhere, rehydrates from what the store really holds.
            self._lease_lost(actor)
            return None
        if actor.killed or self._closing:
            # Being killed, or the server is shutting down: no restart (the log is durable; a kill skips the
            # snapshot anyway, and shutdown would otherwise wait its whole budget for a passivation the
            # restarted incarnation no longer has).
            self.drop(actor, OutboundEvent.status(STOPPED, "session stopped"), SupervisorClosed())
            return None
        budget = self._budgets.get(actor.session_id)
        if budget is None:
            budget = self._budgets[actor.session_id] = RestartBudget(self.config.restart)
        delay = budget.on_crash(trio.current_time())
        if delay is not None:
            actor.restarts += 1
            self.count("restarts")
            return delay
        status = OutboundEvent.status(ERROR, "the session failed and was stopped", type_="error")
        self.announce_closed_soon(actor.session_id, status, actor.lease)  # other nodes' connections too
        if self.config.restart.policy is RestartPolicy.TEMPORARY:
            self.drop(actor, status, SessionFailed(f"session {actor.session_id} crashed"))
            return None
        actor.fire(Trigger.GIVE_UP)
        self.registry.mark_failed(actor)
        actor.close_connections(status, "session failed")
        self._reject(actor.mailbox.close(), SessionFailed(f"session {actor.session_id} failed"))
        self.count("failures")
        return None


def _crash_of(exc: BaseException) -> Exception:
    """The crash inside ``exc``; cancellation (alone or mixed with a crash) propagates instead."""
    if isinstance(exc, Exception):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        crash, rest = exc.split(Exception)
        if rest is None and crash is not None:
            return crash
        if crash is not None:
            log.error("actor.crashed_while_cancelled", exc_info=crash)
        if rest is not None:
            raise rest from None
    raise exc
