"""The supervisor: the nursery of this node's session actors, and the public API to them.

Owns: ``Supervisor``. It hands out ``ActorRef`` handles (``ref``), delivers messages without ever losing one
across passivation races, ends incarnations (``finalize``: what was left in the mailbox goes to the next
incarnation or is answered), passivates everything on ``shutdown``, and answers cheap introspection. It
composes the node's pieces: ``actors.registry`` (who is live, single-flight), ``actors.incarnation`` (each
incarnation's task: lease, load, crashes and restarts), ``actors.eviction`` (idle clock, live-session and
per-user caps), ``actors.leases`` over an ``actors.placement.Placement``, ``actors.fanout`` (connections
and replay) and ``actors.timers``.

Knows nothing of transports (never imports ``server``).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
import trio

from actors.actor import ERROR, STOPPED, SessionActor
from actors.agent import AgentFactory
from actors.config import SupervisorConfig
from actors.errors import (
    ActorError,
    MailboxClosed,
    MailboxFull,
    SessionFailed,
    SessionForbidden,
    SessionNotFound,
    SupervisorClosed,
)
from actors.events import OutboundEvent
from actors.eviction import TOO_MANY_CONVERSATIONS, Eviction
from actors.fanout import FanOut
from actors.incarnation import Incarnations
from actors.introspection import SessionInfo, session_info
from actors.leases import LOST_LEASE, Leases
from actors.lifecycle import ActorState, Trigger
from actors.lifespan import SessionAgentFactory
from actors.messages import Act, Inspect, Join, Leave, Message, Passivate, Stop
from actors.placement import Lease, LocalPlacement, Placement
from actors.ref import ActorRef
from actors.registry import Registry
from actors.restart import RestartBudget, RestartPolicy
from actors.stores.base import Store
from actors.timers import TimerQueue

__all__ = ["TOO_MANY_CONVERSATIONS", "SessionInfo", "Supervisor"]

log = structlog.get_logger(__name__)

EventHook = Callable[[str, int, dict[str, str]], None]
"""``on_event(kind, n, labels)``: called for every counter increment (metrics without importing them)."""

ObserveHook = Callable[[str, float, dict[str, str]], None]
"""``on_observe(kind, seconds, labels)``: durations (``rehydrate_seconds``, ``turn_seconds``)."""

CheckpointHook = Callable[[str, str], Awaitable[None]]
"""Test hook awaited at named points of the load and passivation paths: ``hook(point, session_id)``."""

S = ActorState


class RemoteSessions(Protocol):
    """What a cluster node does with a message for a session this node does not host (yet)."""

    async def deliver(self, session_id: str, msg: Message, *, user_id: str | None) -> bool:
        """True: handled (another node owns the session); False: host it here as usual."""
        ...

    def adopt(self, session_id: str, conn_ids: list[str], head: int) -> None:
        """Keep serving these connections from the shared log (their incarnation stood down)."""
        ...

    async def announce_closed(self, session_id: str, status: OutboundEvent, fence: int) -> None:
        """The session's connections here were closed with ``status`` by its owner under lease ``fence``:
        close those on other nodes too."""
        ...


class Supervisor(Incarnations):
    def __init__(
        self,
        store: Store,
        agent_factory: AgentFactory | SessionAgentFactory | None,
        config: SupervisorConfig | None = None,
        *,
        on_event: EventHook | None = None,
        on_observe: ObserveHook | None = None,
        hooks: CheckpointHook | None = None,
        rng: random.Random | None = None,
        placement: Placement | None = None,
        fanout: FanOut | None = None,
        timers: TimerQueue | None = None,
    ) -> None:
        """``placement`` defaults to a ``LocalPlacement``. ``fanout`` and ``timers``, when given, are the
        node's and run by their owner; otherwise the supervisor makes its own and runs them in ``run``."""
        self.store = store
        self.agent_factory = agent_factory
        self.config = cfg = config or SupervisorConfig()
        self.hooks = hooks
        self.counters: dict[str, int] = {}
        self._on_event = on_event
        self._on_observe = on_observe
        self.placement: Placement = placement or LocalPlacement()
        self._leases = Leases(self.placement)
        self._owns_fanout = fanout is None
        self.fanout = fanout or FanOut(
            store, page_size=cfg.replay_page_size, lag_limit=cfg.connection_lag_limit
        )
        self.fanout.set_detach_hook(self._connection_dropped)
        self._owns_timers = timers is None
        self.registry = Registry()
        self.eviction = Eviction(self, self.registry, cfg, timers or TimerQueue(), rng or random.Random())
        self._budgets: dict[str, RestartBudget] = {}
        self._limiter = trio.CapacityLimiter(cfg.max_concurrent_rehydrations)
        self._nursery: trio.Nursery | None = None
        self._closing = False
        self.remote: RemoteSessions | None = None
        """Cluster mode: serves the messages of sessions another node owns (``actors.cluster.remote``)."""

    # ---- running -----------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Own the actors' nursery until ``shutdown`` (or cancellation, which ends actors unpersisted;
        their logs are durable anyway)."""
        async with trio.open_nursery() as nursery:
            if self._owns_timers:
                await nursery.start(self.eviction.timers.run)
            if self._owns_fanout:
                await nursery.start(self.fanout.run)
            if self.placement.renew_interval is not None:
                nursery.start_soon(self._leases.renew_forever, lambda: self.registry, self._lease_lost)
            self._nursery = nursery
            task_status.started()
        self._nursery = None

    async def shutdown(self, budget: float) -> int:
        """Passivate every actor within ``budget`` seconds, then end ``run``. Returns how many actors were
        still live at the deadline (cancelled without a snapshot)."""
        self._closing = True
        for actor in self.registry:
            if actor.state in (S.FAILED, S.CRASHED):
                self.drop(actor, OutboundEvent.status(STOPPED, "server shutting down"), SupervisorClosed())
            else:
                self.tell(actor, Passivate("shutdown", hard=True), force=True)
        with trio.move_on_after(budget):
            await self.registry.wait_empty()
        remaining = len(self.registry)
        if remaining:
            log.warning("shutdown.budget_exceeded", remaining=remaining)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        return remaining

    # ---- the public API ----------------------------------------------------------------------------

    def ref(self, session_id: str, *, user_id: str | None = None) -> ActorRef:
        """The handle to ``session_id`` (acting for ``user_id``); valid whatever the session's state."""
        return ActorRef(self, session_id, user_id)

    async def deliver(self, session_id: str, msg: Message, *, user_id: str | None = None,
                      create: bool = True, live_only: bool = False) -> None:
        """Ensure the session is live and put ``msg`` in its mailbox. Never loses the message across
        passivation races. Raises SessionFailed, TooManySessions, SessionForbidden, MailboxFull,
        SessionNotFound (create=False), SupervisorClosed.

        ``live_only``: only to the incarnation live now, never spawning or rehydrating one (SessionNotFound
        if there is none, or it ends first). For messages about state that lives and dies with an
        incarnation, such as the Leave of a connection it holds."""
        remote = self.remote
        # A Leave may be of a connection fed from the shared log even while the session is hosted here.
        if remote is not None and (self.registry.get(session_id) is None or isinstance(msg, Leave)) and (
            await remote.deliver(session_id, msg, user_id=user_id)
        ):
            return  # another node owns the session: served from the shared log, routed to its owner
        if live_only:
            actor = self.registry.get(session_id)
            if actor is None or actor.state is S.FAILED:
                raise SessionNotFound(f"session {session_id} is not live")
            try:
                # A Leave passes a full mailbox: it only frees resources, one per connection at most.
                self.tell(actor, msg, force=isinstance(msg, Leave))
            except MailboxClosed:
                raise SessionNotFound(f"session {session_id} ended") from None
            except MailboxFull:
                self.count("mailbox_full")
                raise
            await trio.lowlevel.checkpoint()
            return
        must_wait = user_id is not None or not create
        while True:
            actor = await self._resolve(session_id, user_id, create, wait=must_wait)
            try:
                self.tell(actor, msg)
            except MailboxClosed:
                continue  # ended between lookup and tell: the next lookup finds the next incarnation
            except MailboxFull:
                self.count("mailbox_full")
                raise
            break
        await trio.lowlevel.checkpoint()

    def tell_nowait(self, session_id: str, msg: Message, *, user_id: str | None = None) -> bool:
        """``deliver`` (create=True) without its await, for a session that is live and loaded (a joined
        connection's hot path): the same checks and errors. False when ``deliver`` is needed instead (not
        live, still loading, or it just ended); the message was not queued then."""
        if self._closing or self._nursery is None:
            raise SupervisorClosed("the supervisor is not accepting work")
        actor = self.registry.get(session_id)
        if actor is None or not actor.loaded_once:
            return False
        if actor.state is S.FAILED:
            raise SessionFailed(f"session {session_id} failed")
        if user_id is not None and actor.owner is not None and actor.owner != user_id:
            raise SessionForbidden(f"session {session_id} belongs to another user")
        try:
            self.tell(actor, msg)
        except MailboxClosed:
            return False
        except MailboxFull:
            self.count("mailbox_full")
            raise
        return True

    def try_tell(self, session_id: str, msg: Message) -> bool:
        """Fast path with no await: put ``msg`` in a live, loaded session's mailbox. False if the session is
        not live (use ``deliver``). Raises MailboxFull."""
        actor = self.registry.get(session_id)
        if actor is None or actor.state is S.FAILED or not actor.loaded_once:
            return False
        try:
            self.tell(actor, msg)
        except MailboxClosed:
            return False
        return True

    async def ensure(
        self, session_id: str, *, user_id: str | None = None, create: bool = True
    ) -> SessionInfo:
        """Spawn or rehydrate the session and wait until it is loaded."""
        actor = await self._resolve(session_id, user_id, create, wait=True)
        await trio.lowlevel.checkpoint()
        return session_info(actor)

    def info(self, session_id: str) -> SessionInfo | None:
        actor = self.registry.get(session_id)
        return None if actor is None else session_info(actor)

    def sessions(self) -> list[SessionInfo]:
        return [session_info(a) for a in self.registry]

    @property
    def live_count(self) -> int:
        return len(self.registry)

    def state_counts(self) -> dict[str, int]:
        return self.registry.live_states()

    async def passivate(self, session_id: str, reason: str = "operator") -> str | None:
        """Persist and end the session now (its connections get STATUS$STOPPED). Returns the state it
        reached (``passivated``; ``failed``/``crashed`` if it broke meanwhile), None if it was not live."""
        actor = self.registry.get(session_id)
        if actor is None:
            return None
        if actor.state not in (S.FAILED, S.CRASHED):
            self.tell(actor, Passivate(reason, hard=True), force=True)
        while actor.state not in (S.PASSIVATED, S.FAILED, S.CRASHED):
            await actor.wait_changed()
        return actor.state.value

    async def kill(self, session_id: str) -> bool:
        """Stop the session without a snapshot (it rehydrates from the log next time). Clears FAILED."""
        actor = self.registry.get(session_id)
        if actor is None:
            return False
        actor.killed = True
        if actor.state in (S.FAILED, S.CRASHED):
            self.drop(actor, OutboundEvent.status(STOPPED, "session killed"), SupervisorClosed())
        else:
            self.tell(actor, Stop("kill"), force=True)
            while actor.state is not S.PASSIVATED:
                if actor.state is S.FAILED:  # gave up meanwhile: end it here
                    self.drop(actor, OutboundEvent.status(STOPPED, "session killed"), SupervisorClosed())
                    break
                await actor.wait_changed()
        await trio.lowlevel.checkpoint()
        return True

    async def announce_closed(self, session_id: str, status: OutboundEvent, lease: Lease | None) -> None:
        """``ActorHost``: a session closed its connections with ``status`` (passivated by an operator or
        for its user's cap, killed, failed); in cluster mode other nodes' connections to it are closed with
        the same status, if ``lease`` still stands for the session."""
        if self.remote is not None and lease is not None and lease is not LOST_LEASE:
            await self.remote.announce_closed(session_id, status, lease.fence)

    def announce_closed_soon(self, session_id: str, status: OutboundEvent, lease: Lease | None) -> None:
        """``announce_closed`` in a task (from code that cannot wait)."""
        if self.remote is not None and self._nursery is not None:
            self._nursery.start_soon(self.announce_closed, session_id, status, lease)

    # ---- counters ----------------------------------------------------------------------------------

    def count(self, kind: str, n: int = 1, **labels: str) -> None:
        key = kind if not labels else kind + "." + ".".join(labels.values())
        self.counters[key] = self.counters.get(key, 0) + n
        if self._on_event is not None:
            try:
                self._on_event(kind, n, labels)
            except Exception:
                log.exception("on_event.failed", kind=kind)

    def observe(self, kind: str, seconds: float, **labels: str) -> None:
        if self._on_observe is not None:
            try:
                self._on_observe(kind, seconds, labels)
            except Exception:
                log.exception("on_observe.failed", kind=kind)

    # ---- resolution, spawning, telling --------------------------------------------------------------

    async def _resolve(
        self, session_id: str, user_id: str | None, create: bool, *, wait: bool
    ) -> SessionActor:
        return await self.registry.resolve(session_id, user_id, create, self._make, wait=wait)

    def _make(self, session_id: str, user_id: str | None, create: bool) -> SessionActor:
        """A new incarnation (the registry registers it): room made first, spawned at once."""
        if self._closing or self._nursery is None:
            raise SupervisorClosed("the supervisor is not accepting work")
        self.eviction.make_room()
        actor = SessionActor(self, session_id, owner=user_id, create=create)
        self._spawn(actor)
        return actor

    def tell(self, actor: SessionActor, msg: Message, *, force: bool = False) -> None:
        actor.mailbox.put(msg, force=force)
        if not actor.running:
            self._spawn(actor)

    # ---- connections ---------------------------------------------------------------------------------

    def _connection_dropped(self, session_id: str, conn_id: str) -> None:
        """The fan-out closed a connection (slow, lagging): the live actor no longer counts it."""
        actor = self.registry.get(session_id)
        if actor is not None:
            actor.connection_gone(conn_id)

    # ---- crashes and endings ---------------------------------------------------------------------------

    def drop(self, actor: SessionActor, status: OutboundEvent, error: ActorError) -> None:
        """End an actor that has no running loop (CRASHED or FAILED) at once."""
        actor.close_connections(status, "session ended")
        leftovers = [] if actor.mailbox.closed else actor.mailbox.close()
        actor.fire(Trigger.STOPPED)
        self._remove(actor)
        self._reject(leftovers, error)

    def finalize(self, actor: SessionActor, leftovers: list[Message], *, normal_exit: bool) -> None:
        """Called by the actor, synchronously, when its incarnation ends (mailbox already closed)."""
        self._remove(actor)
        restart = False
        if normal_exit and self.config.restart.policy is RestartPolicy.PERMANENT and not self._closing:
            budget = RestartBudget(self.config.restart)
            restart = budget.on_crash(trio.current_time(), normal_exit=True) is not None
        if self._closing:
            self._reject(leftovers, SupervisorClosed("the server is shutting down"))
            return
        # Only work for the session (a Join, an Act) justifies a new incarnation. A Leave of a connection
        # the ended incarnation held is moot (the handle went with it): rehydrating for it would also count
        # against the user's cap and could evict the session that caused this passivation.
        joining = {msg.conn.id for msg in leftovers if isinstance(msg, Join)}
        work = [
            msg for msg in leftovers
            if isinstance(msg, Join | Act) or (isinstance(msg, Leave) and msg.conn_id in joining)
        ]
        self._reject(
            [msg for msg in leftovers if isinstance(msg, Inspect)],
            SessionNotFound(f"session {actor.session_id} was passivated"),
        )
        if work or restart:
            # Stashed for the next incarnation, which rehydrates from what was just persisted.
            successor = SessionActor(self, actor.session_id, owner=actor.owner, create=True)
            for msg in work:
                successor.mailbox.put(msg, force=True)
            self.registry.add(successor)
            self._spawn(successor)

    def _remove(self, actor: SessionActor) -> None:
        if self.registry.remove(actor):
            self._budgets.pop(actor.session_id, None)
        self.eviction.forget(actor)
        self._leases.release(actor, self._nursery)

    def _reject(self, msgs: list[Message], error: ActorError) -> None:
        closing = isinstance(error, SupervisorClosed)
        for msg in msgs:
            if isinstance(msg, Act):
                if msg.reply is not None:
                    msg.reply.fail(error)
            elif isinstance(msg, Join):
                msg.conn.send(OutboundEvent.status(STOPPED if closing else ERROR, str(error),
                                                   type_="info" if closing else "error"))
                msg.conn.close(str(error))
            elif isinstance(msg, Inspect):
                msg.reply.fail(error)

    # ---- state bookkeeping -------------------------------------------------------------------------

    def state_changed(self, actor: SessionActor, old: ActorState, new: ActorState) -> None:
        self.registry.count_state(old, new)
        self.eviction.state_changed(actor, old, new)
