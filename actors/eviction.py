"""Capacity and eviction: who leaves memory, and when.

Owns: ``Eviction``: the idle clock (an IDLE actor has no task: its deadline, ``close_delay`` plus jitter,
is a timer in the node's ``actors.timers.TimerQueue``), the cap on live sessions (``max_live_sessions``:
the coldest IDLE session is evicted, never one with a connection; FAILED ones go first; if none is IDLE the
new session is refused with ``TooManySessions``) and the per-user cap (``max_sessions_per_user``: the user's
least recently active other session is passivated with AGENT_ERROR$TOO_MANY_CONVERSATIONS). In cluster mode
``user_caps`` (``actors.cluster.users``) counts the user's sessions on every node instead, and calls
``evict_for_user`` for the victims that live here; and ``idle_guard`` (``actors.cluster.watchers``) is asked
when an idle deadline passes, since other nodes may serve connections of the session: it answers with
``passivate_idle`` or ``rearm_idle``.

Evicting is only ever telling an actor ``Passivate`` (or dropping a FAILED one) through its host; knows
nothing of stores, placement, restarts or transports.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Protocol

import trio

from actors.config import SupervisorConfig
from actors.errors import ActorError, SupervisorClosed, TooManySessions
from actors.events import OutboundEvent
from actors.lifecycle import ActorState
from actors.messages import Message, Passivate
from actors.registry import Registry
from actors.timers import TimerQueue

if TYPE_CHECKING:
    from actors.actor import SessionActor

S = ActorState

TOO_MANY_CONVERSATIONS = "AGENT_ERROR$TOO_MANY_CONVERSATIONS"
STOPPED = "STATUS$STOPPED"


class EvictionHost(Protocol):
    def count(self, kind: str, n: int = 1, **labels: str) -> None: ...

    def tell(self, actor: SessionActor, msg: Message, *, force: bool = False) -> None: ...

    def drop(self, actor: SessionActor, status: OutboundEvent, error: ActorError) -> None: ...


class UserCaps(Protocol):
    """Counts a user's sessions across the nodes of a cluster (replaces this node's count)."""

    def loaded(self, actor: SessionActor, cap: int) -> None: ...


class IdleGuard(Protocol):
    """Decides, when its idle deadline passes, whether a session may be passivated (cluster mode: no
    other node serves its connections); answers with ``Eviction.passivate_idle`` or ``rearm_idle``."""

    def idle_expired(self, actor: SessionActor) -> None: ...


class Eviction:
    __slots__ = (
        "_config", "_host", "_on_expired", "_pending", "_registry", "_rng", "idle_guard", "timers",
        "user_caps",
    )

    def __init__(
        self,
        host: EvictionHost,
        registry: Registry,
        config: SupervisorConfig,
        timers: TimerQueue,
        rng: random.Random,
    ) -> None:
        self._host = host
        self._registry = registry
        self._config = config
        self.timers = timers
        self._rng = rng
        self._pending = 0  # capacity evictions chosen whose actor has not left IDLE yet
        self._on_expired = self._expired  # one bound method for every idle timer
        self.user_caps: UserCaps | None = None
        self.idle_guard: IdleGuard | None = None

    # ---- the idle clock ------------------------------------------------------------------------------

    def state_changed(self, actor: SessionActor, old: ActorState, new: ActorState) -> None:
        if old is S.IDLE:
            self._idle_ended(actor)
            if actor.evicting == "capacity":
                self._pending -= 1
            actor.evicting = None
        if new is S.IDLE:
            self._idle_started(actor)

    def _idle_started(self, actor: SessionActor) -> None:
        self._registry.idle[actor.session_id] = actor
        delay = self._config.close_delay
        if delay is None:
            return
        jitter = self._config.close_delay_jitter
        deadline = trio.current_time() + delay + (self._rng.uniform(0.0, jitter) if jitter else 0.0)
        if actor.idle_timer is not None:
            self.timers.cancel(actor.idle_timer)
        actor.idle_timer = self.timers.call_at_with(deadline, self._on_expired, actor)

    def _idle_ended(self, actor: SessionActor) -> None:
        idle = self._registry.idle
        if idle.get(actor.session_id) is actor:
            del idle[actor.session_id]
        self.forget(actor)

    def forget(self, actor: SessionActor) -> None:
        """Cancel the actor's idle deadline (it left IDLE or the registry)."""
        timer = actor.idle_timer
        if timer is not None:
            actor.idle_timer = None
            self.timers.cancel(timer)

    def _expired(self, actor: SessionActor) -> None:
        actor.idle_timer = None
        if actor.state is S.IDLE and self._registry.get(actor.session_id) is actor:
            if self.idle_guard is not None:
                self.idle_guard.idle_expired(actor)
            else:
                self._host.tell(actor, Passivate("idle"), force=True)

    def _still_expired(self, actor: SessionActor) -> bool:
        # Still IDLE since its deadline passed: had it left IDLE and come back, a new deadline would be set.
        return (actor.idle_timer is None and actor.state is S.IDLE
                and self._registry.get(actor.session_id) is actor)

    def passivate_idle(self, actor: SessionActor) -> None:
        """The guard's answer: passivate ``actor`` as its deadline asked (unless it has moved on since)."""
        if self._still_expired(actor):
            self._host.tell(actor, Passivate("idle"), force=True)

    def rearm_idle(self, actor: SessionActor, delay: float) -> None:
        """The guard's answer: look again in ``delay`` seconds (unless it has moved on since)."""
        if self._still_expired(actor):
            actor.idle_timer = self.timers.call_at_with(trio.current_time() + delay, self._on_expired, actor)

    # ---- caps ----------------------------------------------------------------------------------------

    def make_room(self) -> None:
        """Before a new incarnation: evict one session if the node is at ``max_live_sessions``."""
        cap = self._config.max_live_sessions
        if cap is None:
            return
        registry = self._registry
        live = len(registry) - registry.state_counts[S.PASSIVATING] - self._pending
        if live < cap:
            return
        host = self._host
        if registry.failed:
            victim = next(iter(registry.failed.values()))
            host.drop(victim, OutboundEvent.status(STOPPED, "evicted"), SupervisorClosed())
            host.count("evictions", reason="failed")
            return
        for victim in registry.idle.values():
            if victim.evicting is None:
                break
        else:
            host.count("refused", reason="capacity")
            raise TooManySessions(f"{cap} sessions are live and none is idle")
        victim.evicting = "capacity"
        self._pending += 1
        del registry.idle[victim.session_id]
        host.count("evictions", reason="capacity")
        host.tell(victim, Passivate("evicted"), force=True)

    def account_user(self, actor: SessionActor) -> None:
        """After a load: record the owner's session; beyond ``max_sessions_per_user`` passivate their
        least recently active other one."""
        if actor.owner is None:
            return
        registry = self._registry
        owned = registry.own(actor)
        cap = self._config.max_sessions_per_user
        if cap is None:
            return
        if self.user_caps is not None:
            self.user_caps.loaded(actor, cap)
            return
        live: list[SessionActor] = []
        for sid in owned:
            other = registry.get(sid)
            if other is not None and other.evicting is None and other.state in (S.ACTIVE, S.IDLE, S.LOADING):
                live.append(other)
        if len(live) <= cap:
            return
        candidates = [a for a in live if a is not actor and a.state is not S.LOADING]
        if not candidates:
            return
        self.evict_for_user(min(candidates, key=lambda a: a.last_activity))

    def evict_for_user(self, victim: SessionActor) -> bool:
        """Passivate ``victim``, its user being over their cap (its connections get
        AGENT_ERROR$TOO_MANY_CONVERSATIONS). False if it is not ACTIVE or IDLE, or already leaving."""
        if victim.evicting is not None or victim.state not in (S.ACTIVE, S.IDLE):
            return False
        if victim.state is S.IDLE:
            del self._registry.idle[victim.session_id]
        victim.evicting = "user_cap"
        self._host.count("evictions", reason="user_cap")
        self._host.tell(victim, Passivate("user_cap", hard=True, status=TOO_MANY_CONVERSATIONS), force=True)
        return True
