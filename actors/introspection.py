"""Cheap introspection of a session actor: what operators, the admin API and metrics see.

Owns: ``SessionInfo`` and ``session_info`` (a consistent, await-free reading of one actor). Knows nothing of
how actors are scheduled or stored, and nothing of transports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from actors.lifecycle import ActorState

if TYPE_CHECKING:
    from actors.actor import SessionActor


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str
    state: str  # loading, active, idle, passivating, passivated, crashed, failed
    owner: str | None
    connections: int
    mailbox_depth: int
    last_activity: float  # unix time of the last Join/Act/Leave/event
    event_count: int
    last_event_id: int
    restarts: int
    turn_running: bool
    idle_deadline_in: float | None  # seconds until idle passivation (IDLE only; None: never)
    runtime: dict[str, Any] | None = None  # the agent's live runtime (pid, started_at unix time...), if any


def session_info(actor: SessionActor) -> SessionInfo:
    try:
        now = trio.current_time()
    except RuntimeError:  # outside trio (a test or a script reading a stopped supervisor)
        now = actor.last_activity
    deadline = actor.idle_deadline
    if deadline is not None and actor.state is not ActorState.IDLE:
        deadline = None
    return SessionInfo(
        session_id=actor.session_id,
        state=actor.state.value,
        owner=actor.owner,
        connections=len(actor.conns),
        mailbox_depth=len(actor.mailbox),
        last_activity=time.time() - (now - actor.last_activity),
        event_count=actor.head + 1,
        last_event_id=actor.head,
        restarts=actor.restarts,
        turn_running=actor.turn_running,
        idle_deadline_in=None if deadline is None else max(0.0, deadline - now),
        runtime=actor.runtime_info() if actor.runtime is not None else None,
    )
