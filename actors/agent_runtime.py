"""An incarnation whose agent owns a runtime: the task that holds its lifespan, its turns and its ending.

Owns: ``RuntimeSpan`` (what one incarnation of a lifespan agent tracks: its snapshot to enter with, when
its runtime started, the ending it deferred), ``AgentTurns`` (a mixin of ``actors.actor.SessionActor``
through ``actors.actions.ActionPath``: the agent's turns task, ``intercept``, ``agent_state_changed``
observations, and ``_end``, which ends an incarnation at once or after the runtime's exit) and
``run_with_runtime`` (the incarnation's task body for such an agent).

Theory of operation. An agent with a ``lifespan`` (``actors.lifespan.LifespanAgent``: the shell runtime, an
exec agent) owns processes, and an ``async with`` cannot span tasks, so its incarnation keeps one task from
load to end, IDLE included: ``open_nursery`` (an agent task's error crashes this actor only) ->
``STATUS$STARTING_RUNTIME`` -> ``async with agent_lifespan(...)`` -> ``STATUS$RUNTIME_STARTED`` -> the
actor's loop, parked on its mailbox while IDLE. An ending (passivation once the snapshot is saved, a stop,
a kill, shutdown) is deferred: the loop returns, the lifespan exits (processes ended: grace, then kill), and
only then is the mailbox closed and the actor finalized (registry removal), so what arrived during the exit
is stashed for the next incarnation. A crash leaves the block with the exception, so the runtime is gone
before the supervisor's restart backoff. Agents without a lifespan (echo, custom ones) never get a span:
their IDLE actor has no task and ``_end`` finalizes at once, as before.

Knows nothing of the registry, of stores' internals or of transports.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

import structlog
import trio

from actors.events import OutboundEvent, StoredEvent
from actors.lifecycle import ActorState, Trigger
from actors.lifespan import AnyAgent, agent_lifespan
from actors.messages import Join, Message
from actors.runtimes.status import (
    AgentState,
    agent_state_changed,
    runtime_started_status,
    starting_runtime_status,
)

if TYPE_CHECKING:
    from actors.actor import ActorHost, SessionActor
    from actors.mailbox import Mailbox

log = structlog.get_logger(__name__)

TURN_TIMEOUT = "AGENT_ERROR$TURN_TIMEOUT"


def has_lifespan(agent: object) -> bool:
    """True for agents that own resources for an incarnation (they get a ``RuntimeSpan``)."""
    return getattr(agent, "lifespan", None) is not None


class RuntimeSpan:
    """One incarnation of a lifespan agent, as the actor tracks it."""

    __slots__ = ("ending", "entered", "snapshot", "started_at")

    def __init__(self, snapshot: dict[str, Any] | None) -> None:
        self.snapshot = snapshot  # the agent's part of the stored snapshot, to enter with
        self.entered = False
        self.started_at: float | None = None  # unix time the runtime finished starting
        self.ending: tuple[list[Message], Trigger, bool] | None = None  # (leftovers, trigger, normal_exit)


def state_event(state: AgentState, reason: str = "") -> OutboundEvent:
    """An ``agent_state_changed`` observation sent to connections without being stored (lifecycle ones:
    ``loading``, ``stopped``, ``error``, when the actor may have nothing to append through)."""
    return OutboundEvent(agent_state_changed(state, reason))


class AgentTurns:
    # The state the turns write; initialised by the actor's __init__.
    __slots__ = ("_backlog", "_turn_done", "dirty", "runtime")

    runtime: RuntimeSpan | None  # set for the incarnation of a lifespan agent only
    _backlog: deque[StoredEvent] | None  # user events waiting for the agent
    _turn_done: trio.Event | None  # set when the running turns task ends; None: no turn running
    dirty: bool  # events appended since the last snapshot

    if TYPE_CHECKING:
        host: ActorHost
        agent: AnyAgent | None
        session_id: str
        state: ActorState
        mailbox: Mailbox[Message]

        def fire(self, trigger: Trigger) -> ActorState: ...

        def mailbox_poke(self) -> None: ...

        async def _emit(self, payload: dict[str, Any]) -> StoredEvent: ...

    def _intercepted(self, events: list[StoredEvent]) -> list[StoredEvent]:
        """While a turn runs, offer each new user event to ``agent.intercept`` (``C-c`` for the running
        command); those it takes get no turn."""
        intercept = getattr(self.agent, "intercept", None)
        if intercept is None or self._turn_done is None:
            return events
        return [event for event in events if not intercept(event)]

    async def _turns(self) -> None:
        """The agent's child task: one turn per queued user event, each bounded by the watchdog."""
        agent, backlog, done = self.agent, self._backlog, self._turn_done
        assert agent is not None and backlog is not None and done is not None
        watchdog = self.host.config.turn_watchdog
        report = self.runtime is not None  # agent states are reported for runtimes only (log size)
        try:
            if report:
                await self._emit(agent_state_changed(AgentState.RUNNING))
            while backlog:
                event = backlog.popleft()
                started = time.perf_counter()
                with trio.move_on_after(watchdog if watchdog is not None else float("inf")) as scope:
                    await agent.handle(event, self._emit)
                self.host.observe("turn_seconds", time.perf_counter() - started)
                self.dirty = True
                if scope.cancelled_caught:
                    log.warning("turn.watchdog", event_id=event.id, seconds=watchdog)
                    self.host.count("turns_timed_out")
                    self.host.fanout.broadcast(
                        self.session_id,
                        OutboundEvent.status(TURN_TIMEOUT, "the agent took too long and was stopped",
                                             type_="error")
                    )
                    if report:
                        await self._emit(agent_state_changed(AgentState.ERROR, "turn timed out"))
            if report:
                await self._emit(agent_state_changed(AgentState.AWAITING_USER_INPUT))
        finally:
            if self._turn_done is done:
                self._turn_done = None
                if not backlog:
                    self._backlog = None
            done.set()
            self.mailbox_poke()

    def _end(self, rest: list[Message], trigger: Trigger, *, normal_exit: bool) -> None:
        """End the incarnation: at once, or (a runtime) once the lifespan has exited (``finish_end``)."""
        span = self.runtime
        if span is not None and span.entered:
            span.ending = (rest, trigger, normal_exit)
            return
        self.finish_end(rest, trigger, normal_exit=normal_exit)

    def finish_end(self, rest: list[Message], trigger: Trigger, *, normal_exit: bool) -> None:
        leftovers = rest + self.mailbox.close()
        self.fire(trigger)
        self.host.finalize(self, leftovers, normal_exit=normal_exit)  # type: ignore[arg-type]

    def runtime_info(self) -> dict[str, Any] | None:
        """What the admin API shows of the live runtime (pid, started_at...), None without one."""
        span = self.runtime
        info = getattr(self.agent, "runtime_info", None)
        if span is None or info is None:
            return None
        found = info()
        if found is None:
            return None
        return {**found, "started_at": span.started_at}


def _send_joining(actor: SessionActor, event: OutboundEvent, told: set[str] | None = None,
                  before: tuple[OutboundEvent, ...] = ()) -> None:
    """``event`` to the session's attached connections and to those still waiting in the mailbox to join
    (the first connection's Join is what loads the session: it must hear the runtime start too). A waiting
    connection not in ``told`` gets ``before`` first (it joined after those were sent), so every client
    sees the statuses in order."""
    actor.host.fanout.broadcast(actor.session_id, event, live_only=False)
    for msg in actor.mailbox.peek_all():
        if isinstance(msg, Join):
            conn = msg.conn
            if told is not None and conn.id not in told:
                told.add(conn.id)
                for earlier in before:
                    conn.send(earlier)
            conn.send(event)


async def run_with_runtime(actor: SessionActor) -> None:
    """The rest of a loaded lifespan agent's incarnation, in its one task: enter the runtime, run the
    loop (IDLE included), exit the runtime, then end the actor. A crash propagates after the exit."""
    span = actor.runtime
    agent = actor.agent
    assert span is not None and agent is not None
    host = actor.host
    told: set[str] = set()
    loading = (state_event(AgentState.LOADING), starting_runtime_status())
    for event in loading:
        _send_joining(actor, event, told)
    started = time.perf_counter()
    try:
        async with trio.open_nursery() as incarnation, agent_lifespan(agent, span.snapshot, incarnation):
                span.entered = True
                span.started_at = time.time()
                host.observe("runtime_start_seconds", time.perf_counter() - started)
                host.count("runtimes_started")
                _send_joining(actor, runtime_started_status(), told, loading)
                _send_joining(actor, state_event(AgentState.AWAITING_USER_INPUT))
                try:
                    while await actor.run():
                        await actor.mailbox.wait()  # IDLE, the runtime alive: the next message wakes us
                finally:
                    host.count("runtimes_stopped")
    except BaseException as exc:
        ending = span.ending
        crash, rest = exc.split(Exception) if isinstance(exc, BaseExceptionGroup) else (
            (exc, None) if isinstance(exc, Exception) else (None, exc))
        if ending is None or rest is not None:
            if actor.state is not ActorState.PASSIVATED:
                host.fanout.broadcast(actor.session_id, state_event(AgentState.ERROR, "runtime ended"))
            actor.runtime = None
            raise
        # The ending was decided (the snapshot, if any, is saved): an error of the runtime's exit is logged.
        log.error("runtime.exit_failed", exc_info=crash)
    ending = span.ending
    actor.runtime = None
    assert ending is not None, "the loop of a runtime ends only through _end"
    leftovers, trigger, normal_exit = ending
    host.fanout.broadcast(actor.session_id, state_event(AgentState.STOPPED))
    actor.finish_end(leftovers, trigger, normal_exit=normal_exit)
