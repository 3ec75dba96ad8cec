"""The session actor's lifecycle: every state and every transition, in one table.

Owns: ``ActorState``, ``Trigger``, ``TRANSITIONS`` and ``next_state``. Everything that moves an actor from one
state to another goes through ``next_state``; a pair that is not in the table is a bug and raises
``InvalidTransition``. Knows nothing of trio, stores or connections (pure data, unit-tested exhaustively).

Theory of operation (see DESIGN.md "The actor"):

- LOADING: the store record is being read and the agent started. Messages queue in the mailbox meanwhile.
- ACTIVE: the actor has a trio task; it has connections, queued messages or a turn in flight.
- IDLE: zero connections, empty mailbox, no turn. The actor has *no task*; its idle deadline sits in the
  supervisor's timer heap. A Join or Act wakes it (ACTIVE, deadline cancelled).
- PASSIVATING: persisting the snapshot. A message that arrives before the registry entry is removed aborts a
  soft passivation (ACTIVE) or is stashed for the next incarnation (hard passivation).
- PASSIVATED: the entry is gone from the registry; the mailbox is closed. Terminal for this incarnation.
- CRASHED: the agent or the store raised. The supervisor restarts it from the store (LOADING), after a
  backoff, or gives up (FAILED) when the restart budget is spent. Connections and mailbox are kept meanwhile.
- FAILED: the session is refused (its connections were told so) until an operator kills it.
"""

from __future__ import annotations

import enum


class ActorState(enum.Enum):
    LOADING = "loading"
    ACTIVE = "active"
    IDLE = "idle"
    PASSIVATING = "passivating"
    PASSIVATED = "passivated"
    CRASHED = "crashed"
    FAILED = "failed"


class Trigger(enum.Enum):
    LOADED_BUSY = "loaded_busy"  # store loaded; connections, messages or work pending
    LOADED_IDLE = "loaded_idle"  # store loaded; nothing to do
    QUIESCED = "quiesced"  # last connection gone, mailbox empty, no turn in flight
    WOKEN = "woken"  # Join or Act (or any work) arrived
    PASSIVATE = "passivate"  # idle deadline, eviction, operator, shutdown
    ABORT = "abort"  # a message arrived during a soft passivation
    PERSISTED = "persisted"  # snapshot durable and registry entry removed
    STOPPED = "stopped"  # Stop / kill: ended without snapshot
    CRASH = "crash"  # the agent or the store raised
    RESTART = "restart"  # restart budget allows: reload from the store
    GIVE_UP = "give_up"  # restart budget exceeded


S = ActorState
T = Trigger

TRANSITIONS: dict[tuple[ActorState, Trigger], ActorState] = {
    (S.LOADING, T.LOADED_BUSY): S.ACTIVE,
    (S.LOADING, T.LOADED_IDLE): S.IDLE,
    (S.LOADING, T.CRASH): S.CRASHED,
    (S.LOADING, T.STOPPED): S.PASSIVATED,
    (S.ACTIVE, T.QUIESCED): S.IDLE,
    (S.ACTIVE, T.PASSIVATE): S.PASSIVATING,
    (S.ACTIVE, T.STOPPED): S.PASSIVATED,
    (S.ACTIVE, T.CRASH): S.CRASHED,
    (S.IDLE, T.WOKEN): S.ACTIVE,
    (S.IDLE, T.PASSIVATE): S.PASSIVATING,
    (S.IDLE, T.STOPPED): S.PASSIVATED,
    (S.IDLE, T.CRASH): S.CRASHED,
    (S.PASSIVATING, T.ABORT): S.ACTIVE,
    (S.PASSIVATING, T.PERSISTED): S.PASSIVATED,
    (S.PASSIVATING, T.STOPPED): S.PASSIVATED,
    (S.PASSIVATING, T.CRASH): S.CRASHED,
    (S.CRASHED, T.RESTART): S.LOADING,
    (S.CRASHED, T.GIVE_UP): S.FAILED,
    (S.CRASHED, T.STOPPED): S.PASSIVATED,
    (S.FAILED, T.STOPPED): S.PASSIVATED,
}


class InvalidTransition(RuntimeError):
    """A trigger that the table does not allow in the current state (a runtime bug, never user input)."""


def next_state(state: ActorState, trigger: Trigger) -> ActorState:
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise InvalidTransition(f"{trigger.value} is not allowed in state {state.value}") from None


# States in which the actor object is in the supervisor's registry and may receive messages.
LIVE_STATES = frozenset({S.LOADING, S.ACTIVE, S.IDLE, S.PASSIVATING, S.CRASHED})
