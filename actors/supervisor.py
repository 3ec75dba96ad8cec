"""The supervisor: the nursery and registry of session actors.

Owns: ``Supervisor`` and the idle timer (``SessionInfo`` lives in ``actors.introspection``). It spawns or
rehydrates actors on demand (single-flight per session id, a global limit on concurrent rehydrations), tells
them messages without ever losing one across passivation races, restarts crashed actors within their budget
(``actors.restart``), marks the ones beyond it FAILED, caps live actors (evicting the coldest IDLE ones only)
and per-user sessions, passivates everything on ``shutdown``, and answers cheap introspection. An IDLE actor
has no task: its deadline lives in one heap served by one timer task (a cancel scope whose deadline is the
earliest one). Every actor task is spawned in a fresh ``contextvars.Context`` so the spawner's log context
(connection ids) never leaks into actor logs. Knows nothing of transports (never imports ``server``).
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

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
    TooManySessions,
)
from actors.events import OutboundEvent
from actors.introspection import SessionInfo, session_info
from actors.lifecycle import ActorState, Trigger
from actors.messages import Act, Inspect, Join, Leave, Message, Passivate, Stop
from actors.restart import RestartBudget, RestartPolicy
from actors.stores.base import Store

__all__ = ["SessionInfo", "Supervisor"]

log = structlog.get_logger(__name__)

TOO_MANY_CONVERSATIONS = "AGENT_ERROR$TOO_MANY_CONVERSATIONS"

EventHook = Callable[[str, int, dict[str, str]], None]
"""``on_event(kind, n, labels)``: called for every counter increment (metrics without importing them)."""

ObserveHook = Callable[[str, float, dict[str, str]], None]
"""``on_observe(kind, seconds, labels)``: durations (``rehydrate_seconds``, ``turn_seconds``)."""

CheckpointHook = Callable[[str, str], Awaitable[None]]
"""Test hook awaited at named points of the load and passivation paths: ``hook(point, session_id)``."""

S = ActorState


class Supervisor:
    def __init__(
        self,
        store: Store,
        agent_factory: AgentFactory | None,
        config: SupervisorConfig | None = None,
        *,
        on_event: EventHook | None = None,
        on_observe: ObserveHook | None = None,
        hooks: CheckpointHook | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.agent_factory = agent_factory
        self.config = config or SupervisorConfig()
        self.hooks = hooks
        self.counters: dict[str, int] = {}
        self._on_event = on_event
        self._on_observe = on_observe
        self._rng = rng or random.Random()
        self._registry: dict[str, SessionActor] = {}
        self._idle: dict[str, SessionActor] = {}  # IDLE actors, the coldest first
        self._failed: dict[str, SessionActor] = {}
        self._heap: list[tuple[float, int, int, SessionActor]] = []  # (deadline, seq, token, actor)
        self._heap_seq = itertools.count()
        self._by_user: dict[str, set[str]] = {}
        self._budgets: dict[str, RestartBudget] = {}
        self._state_counts: dict[ActorState, int] = dict.fromkeys(ActorState, 0)
        self._pending_evictions = 0
        self._limiter = trio.CapacityLimiter(self.config.max_concurrent_rehydrations)
        self._nursery: trio.Nursery | None = None
        self._timer_scope: trio.CancelScope | None = None
        self._closing = False
        self._emptied: trio.Event | None = None

    # ---- running -----------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Own the actors' nursery until ``shutdown`` (or cancellation, which ends actors unpersisted;
        their logs are durable anyway)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._idle_timer)
            task_status.started()
        self._nursery = None

    async def shutdown(self, budget: float) -> int:
        """Passivate every actor within ``budget`` seconds, then end ``run``. Returns how many actors were
        still live at the deadline (cancelled without a snapshot)."""
        self._closing = True
        for actor in list(self._registry.values()):
            if actor.state in (S.FAILED, S.CRASHED):
                self._drop(actor, OutboundEvent.status(STOPPED, "server shutting down"), SupervisorClosed())
            else:
                self._tell(actor, Passivate("shutdown", hard=True), force=True)
        with trio.move_on_after(budget):
            while self._registry:
                if self._emptied is None:
                    self._emptied = trio.Event()
                await self._emptied.wait()
        remaining = len(self._registry)
        if remaining:
            log.warning("shutdown.budget_exceeded", remaining=remaining)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        return remaining

    # ---- the public API ----------------------------------------------------------------------------

    async def deliver(self, session_id: str, msg: Message, *, user_id: str | None = None,
                      create: bool = True, live_only: bool = False) -> None:
        """Ensure the session is live and put ``msg`` in its mailbox. Never loses the message across
        passivation races. Raises SessionFailed, TooManySessions, SessionForbidden, MailboxFull,
        SessionNotFound (create=False), SupervisorClosed.

        ``live_only``: only to the incarnation live now, never spawning or rehydrating one (SessionNotFound
        if there is none, or it ends first). For messages about state that lives and dies with an
        incarnation, such as the Leave of a connection it holds."""
        if live_only:
            actor = self._registry.get(session_id)
            if actor is None or actor.state is S.FAILED:
                raise SessionNotFound(f"session {session_id} is not live")
            try:
                # A Leave passes a full mailbox: it only frees resources, one per connection at most.
                self._tell(actor, msg, force=isinstance(msg, Leave))
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
                self._tell(actor, msg)
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
        actor = self._registry.get(session_id)
        if actor is None or not actor.loaded_once:
            return False
        if actor.state is S.FAILED:
            raise SessionFailed(f"session {session_id} failed")
        if user_id is not None and actor.owner is not None and actor.owner != user_id:
            raise SessionForbidden(f"session {session_id} belongs to another user")
        try:
            self._tell(actor, msg)
        except MailboxClosed:
            return False
        except MailboxFull:
            self.count("mailbox_full")
            raise
        return True

    def try_tell(self, session_id: str, msg: Message) -> bool:
        """Fast path with no await: put ``msg`` in a live, loaded session's mailbox. False if the session is
        not live (use ``deliver``). Raises MailboxFull."""
        actor = self._registry.get(session_id)
        if actor is None or actor.state is S.FAILED or not actor.loaded_once:
            return False
        try:
            self._tell(actor, msg)
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
        actor = self._registry.get(session_id)
        return None if actor is None else session_info(actor)

    def sessions(self) -> list[SessionInfo]:
        return [session_info(a) for a in self._registry.values()]

    @property
    def live_count(self) -> int:
        return len(self._registry)

    def state_counts(self) -> dict[str, int]:
        return {state.value: n for state, n in self._state_counts.items() if state is not S.PASSIVATED}

    async def passivate(self, session_id: str, reason: str = "operator") -> str | None:
        """Persist and end the session now (its connections get STATUS$STOPPED). Returns the state it
        reached (``passivated``; ``failed``/``crashed`` if it broke meanwhile), None if it was not live."""
        actor = self._registry.get(session_id)
        if actor is None:
            return None
        if actor.state not in (S.FAILED, S.CRASHED):
            self._tell(actor, Passivate(reason, hard=True), force=True)
        while actor.state not in (S.PASSIVATED, S.FAILED, S.CRASHED):
            await actor.wait_changed()
        return actor.state.value

    async def kill(self, session_id: str) -> bool:
        """Stop the session without a snapshot (it rehydrates from the log next time). Clears FAILED."""
        actor = self._registry.get(session_id)
        if actor is None:
            return False
        actor.killed = True
        if actor.state in (S.FAILED, S.CRASHED):
            self._drop(actor, OutboundEvent.status(STOPPED, "session killed"), SupervisorClosed())
        else:
            self._tell(actor, Stop("kill"), force=True)
            while actor.state is not S.PASSIVATED:
                if actor.state is S.FAILED:  # gave up meanwhile: end it here
                    self._drop(actor, OutboundEvent.status(STOPPED, "session killed"), SupervisorClosed())
                    break
                await actor.wait_changed()
        await trio.lowlevel.checkpoint()
        return True

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
        while True:
            actor = self._get_or_spawn(session_id, user_id, create)
            if actor.state is S.FAILED:
                raise SessionFailed(f"session {session_id} failed")
            if not actor.loaded_once:
                if not wait:
                    return actor  # messages queue while it loads
                await actor.wait_changed()
                if actor.not_found and not create:
                    raise SessionNotFound(f"no session {session_id}")
                continue
            if user_id is not None and actor.owner is not None and actor.owner != user_id:
                raise SessionForbidden(f"session {session_id} belongs to another user")
            return actor

    def _get_or_spawn(self, session_id: str, user_id: str | None, create: bool) -> SessionActor:
        if self._closing or self._nursery is None:
            raise SupervisorClosed("the supervisor is not accepting work")
        actor = self._registry.get(session_id)
        if actor is not None:
            return actor
        self._make_room()
        actor = SessionActor(self, session_id, owner=user_id, create=create)
        self._registry[session_id] = actor
        self._state_counts[S.LOADING] += 1
        self._spawn(actor)
        return actor

    def _tell(self, actor: SessionActor, msg: Message, *, force: bool = False) -> None:
        actor.mailbox.put(msg, force=force)
        if not actor.running:
            self._spawn(actor)

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
            record = await self.store.load(sid)
            reason = "restart" if actor.restarts else "store"
            if record is None:
                if not actor.create:
                    actor.not_found = True
                    leftovers = actor.mailbox.close()
                    actor.fire(Trigger.STOPPED)
                    self._remove(actor)
                    self._reject(leftovers, SessionNotFound(f"no session {sid}"))
                    return False
                record = await self.store.create(sid, actor.owner)
                reason = "new"
            agent = self.agent_factory() if self.agent_factory is not None else None
            await actor.restore(record, agent)
        finally:
            self._limiter.release_on_behalf_of(actor)
        self.count("rehydrations", reason=reason)
        self.observe("rehydrate_seconds", time.perf_counter() - started)
        self._account_user(actor)
        return True

    # ---- crashes and endings ---------------------------------------------------------------------------

    def _crashed(self, actor: SessionActor, exc: BaseException) -> float | None:
        """Sync crash handling: CRASHED, then a restart delay, or FAILED/removed (None)."""
        if actor.state is S.PASSIVATED:
            log.error("actor.error_after_end", exc_info=exc)
            return None
        log.error("actor.crashed", state=actor.state.value, exc_info=exc)
        self.count("crashes")
        actor.crashed()
        if actor.killed or self._closing:
            # Being killed, or the server is shutting down: no restart (the log is durable; a kill skips the
            # snapshot anyway, and shutdown would otherwise wait its whole budget for a passivation the
            # restarted incarnation no longer has).
            self._drop(actor, OutboundEvent.status(STOPPED, "session stopped"), SupervisorClosed())
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
        if self.config.restart.policy is RestartPolicy.TEMPORARY:
            self._drop(actor, status, SessionFailed(f"session {actor.session_id} crashed"))
            return None
        actor.fire(Trigger.GIVE_UP)
        self._failed[actor.session_id] = actor
        actor.conns.close_all(status, "session failed")
        self._reject(actor.mailbox.close(), SessionFailed(f"session {actor.session_id} failed"))
        self.count("failures")
        return None

    def _drop(self, actor: SessionActor, status: OutboundEvent, error: ActorError) -> None:
        """End an actor that has no running loop (CRASHED or FAILED) at once."""
        actor.conns.close_all(status, "session ended")
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
            self._registry[actor.session_id] = successor
            self._state_counts[S.LOADING] += 1
            self._spawn(successor)

    def _remove(self, actor: SessionActor) -> None:
        sid = actor.session_id
        if self._registry.get(sid) is actor:
            del self._registry[sid]
            self._budgets.pop(sid, None)
        if self._idle.get(sid) is actor:
            del self._idle[sid]
        if self._failed.get(sid) is actor:
            del self._failed[sid]
        actor.idle_token += 1
        if actor.owner is not None:
            owned = self._by_user.get(actor.owner)
            if owned is not None and self._registry.get(sid) is None:
                owned.discard(sid)
                if not owned:
                    del self._by_user[actor.owner]
        if not self._registry and self._emptied is not None:
            self._emptied.set()
            self._emptied = None

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

    # ---- state bookkeeping, idle clock, capacity ---------------------------------------------------

    def state_changed(self, actor: SessionActor, old: ActorState, new: ActorState) -> None:
        counts = self._state_counts
        counts[old] -= 1
        counts[new] += 1
        if old is S.IDLE:
            self._idle_ended(actor)
            if actor.evicting == "capacity":
                self._pending_evictions -= 1
            actor.evicting = None
        if new is S.IDLE:
            self._idle_started(actor)

    def _idle_started(self, actor: SessionActor) -> None:
        self._idle[actor.session_id] = actor
        delay = self.config.close_delay
        if delay is None:
            actor.idle_deadline = None
            return
        jitter = self.config.close_delay_jitter
        deadline = trio.current_time() + delay + (self._rng.uniform(0.0, jitter) if jitter else 0.0)
        actor.idle_deadline = deadline
        actor.idle_token += 1
        heap = self._heap
        heapq.heappush(heap, (deadline, next(self._heap_seq), actor.idle_token, actor))
        if len(heap) > 2 * len(self._idle) + 1024:
            heap[:] = [e for e in heap if e[2] == e[3].idle_token and e[3].state is S.IDLE]
            heapq.heapify(heap)
        scope = self._timer_scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline

    def _idle_ended(self, actor: SessionActor) -> None:
        if self._idle.get(actor.session_id) is actor:
            del self._idle[actor.session_id]
        actor.idle_token += 1
        actor.idle_deadline = None

    async def _idle_timer(self) -> None:
        heap = self._heap
        while True:
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, _, token, actor = heapq.heappop(heap)
                if (token == actor.idle_token and actor.state is S.IDLE
                        and self._registry.get(actor.session_id) is actor):
                    self._tell(actor, Passivate("idle"), force=True)

    def _make_room(self) -> None:
        cap = self.config.max_live_sessions
        if cap is None:
            return
        counts = self._state_counts
        live = len(self._registry) - counts[S.PASSIVATING] - self._pending_evictions
        if live < cap:
            return
        if self._failed:
            victim = next(iter(self._failed.values()))
            self._drop(victim, OutboundEvent.status(STOPPED, "evicted"), SupervisorClosed())
            self.count("evictions", reason="failed")
            return
        for victim in self._idle.values():
            if victim.evicting is None:
                break
        else:
            self.count("refused", reason="capacity")
            raise TooManySessions(f"{cap} sessions are live and none is idle")
        victim.evicting = "capacity"
        self._pending_evictions += 1
        del self._idle[victim.session_id]
        self.count("evictions", reason="capacity")
        self._tell(victim, Passivate("evicted"), force=True)

    def _account_user(self, actor: SessionActor) -> None:
        owner = actor.owner
        if owner is None:
            return
        owned = self._by_user.setdefault(owner, set())
        owned.add(actor.session_id)
        cap = self.config.max_sessions_per_user
        if cap is None:
            return
        live: list[SessionActor] = []
        for sid in owned:
            other = self._registry.get(sid)
            if other is not None and other.evicting is None and other.state in (S.ACTIVE, S.IDLE, S.LOADING):
                live.append(other)
        if len(live) <= cap:
            return
        candidates = [a for a in live if a is not actor and a.state is not S.LOADING]
        if not candidates:
            return
        victim = min(candidates, key=lambda a: a.last_activity)
        if victim.state is S.IDLE:
            del self._idle[victim.session_id]
        victim.evicting = "user_cap"
        self.count("evictions", reason="user_cap")
        self._tell(victim, Passivate("user_cap", hard=True, status=TOO_MANY_CONVERSATIONS), force=True)

    # ---- introspection -------------------------------------------------------------------------------


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
