"""What clients are told about a runtime's start and an agent's state, in OpenHands' shapes.

Owns: the runtime status ids (``STATUS$STARTING_RUNTIME``, ``STATUS$RUNTIME_STARTED``), ``AgentState`` and
the ``agent_state_changed`` observation payload. Pure functions returning payloads; the actor decides when to
send them (status updates are broadcast, not stored; an ``agent_state_changed`` observation goes through
``emit`` like any agent event). Knows nothing of actors or connections.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from actors.events import OutboundEvent

STARTING_RUNTIME = "STATUS$STARTING_RUNTIME"
RUNTIME_STARTED = "STATUS$RUNTIME_STARTED"


class AgentState(StrEnum):
    """The subset of OpenHands' ``AgentState`` values this server reports."""

    LOADING = "loading"
    AWAITING_USER_INPUT = "awaiting_user_input"
    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"


def starting_runtime_status() -> OutboundEvent:
    """Broadcast when an incarnation begins entering an agent that owns a runtime."""
    return OutboundEvent.status(STARTING_RUNTIME, "Starting runtime...")


def runtime_started_status() -> OutboundEvent:
    """Broadcast once the agent's lifespan is entered (then the actor sends ``STATUS$READY`` as today)."""
    return OutboundEvent.status(RUNTIME_STARTED, "Runtime started")


def agent_state_changed(state: AgentState | str, reason: str = "") -> dict[str, Any]:
    """The ``agent_state_changed`` observation payload (the actor adds id, timestamp; source is agent)."""
    value = AgentState(state).value
    return {
        "observation": "agent_state_changed",
        "source": "agent",
        "message": f"Agent state changed to {value}",
        "content": "",
        "extras": {"agent_state": value, "reason": reason},
    }
